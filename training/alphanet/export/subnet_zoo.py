"""Sub-networks of a supernet (or one calibrated sub-network) into a zoo directory, as a library
call: recalibrate, evaluate on the evaluation split, export ONNX + reference pair, merge the
manifest. The ``export`` command parses its options into `ZooSettings` and calls `export_subnets`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..engine.evaluate import evaluate
from ..engine.subnet_data import evaluation_loader
from ..engine.subnet_eval import CalibrationSettings, subnet_for, uses_channels_last
from ..errors import UserError
from ..paths import git_commit, repo_path
from ..space import ArchConfig
from .manifest import default_description
from .onnx import DEFAULT_OPSET, MIN_OPSET
from .sources import SubnetSource, resolve_labels
from .zoo_writer import export_model, model_name, write_zoo

Selection = list[tuple[str, ArchConfig | None]]  # (label, arch); arch None = the static checkpoint's


@dataclass
class ZooSettings:
    out_dir: Path
    name_prefix: str | None = None  # default: "<space>-"
    zoo_name: str | None = None  # default: "alphanet-<space>"
    description: str | None = None
    default_model: str | None = None
    labels_file: Path | None = None
    opset: int = DEFAULT_OPSET
    eval_batch_size: int | None = None  # default: data.eval_batch_size
    max_batches: int | None = None  # evaluate only the first N batches


def export_subnets(
    source: SubnetSource,
    selection: Selection,
    calibration: CalibrationSettings,
    device: torch.device,
    settings: ZooSettings,
    on_model: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Export every selected sub-network into ``settings.out_dir``; returns the merged manifest.
    ``on_model(entry, accuracy)`` is called after each model."""
    if settings.opset < MIN_OPSET:
        raise UserError(f"--opset must be >= {MIN_OPSET}")
    space = source.space
    slug = space.name.replace("_", "-")
    prefix = settings.name_prefix if settings.name_prefix is not None else slug + "-"
    names = [model_name(prefix, label) for label, _ in selection]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"duplicate model names {duplicates}; the same arch was selected twice")
    loader, split = evaluation_loader(source.cfg, settings.eval_batch_size)
    labels = resolve_labels(source, settings.labels_file, list(getattr(loader.dataset, "classes", []) or []))
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (_, arch) in zip(names, selection):
        static, _ = subnet_for(source, arch, calibration, device)
        accuracy = evaluate(static, loader, settings.max_batches, uses_channels_last(source.cfg))
        entry = export_model(
            static,
            space,
            name=name,
            out_dir=settings.out_dir,
            labels=labels,
            accuracy=accuracy,
            evaluation={"dataset": split.dataset, "split": split.split, "runtime": "pytorch"},
            opset=settings.opset,
        )
        entries.append(entry)
        if on_model is not None:
            on_model(entry, {**accuracy, "split": split.split})
    zoo_source = {"space": space.name, "checkpoint": repo_path(source.origin)}
    commit = git_commit()
    if commit:
        zoo_source["gitCommit"] = commit
    return write_zoo(
        settings.out_dir,
        entries,
        zoo_name=settings.zoo_name or f"alphanet-{slug}",
        description=settings.description or default_description(space.name, None),
        source=zoo_source,
        default_model=settings.default_model,
    )
