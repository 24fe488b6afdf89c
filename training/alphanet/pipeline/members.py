"""Stages 3-5 for every family member: BN recalibration, PyTorch evaluation, ONNX export.

Calibration follows the reference (training images under the training augmentation, cumulative
BN statistics); when the calibration batches fit in memory they are drawn once and shared by
every member (the loaders are deterministic, so this only saves time). Evaluation measures top-1
on the evaluation split; the samples handed to onnxruntime-node (the whole split, or an evenly
spaced subset when ``validation.max_samples`` caps it) are kept in memory so PyTorch and ORT are
compared on exactly the same tensors. Export writes the ONNX file, its reference input/output
pair and a manifest entry into a staging directory that the validator reads.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import build_dataset, build_loader
from ..engine.evaluate import Accuracy, evaluate
from ..data.splits import IndexedSubset
from ..engine.subnet_data import dataset_name, eval_split_name, evaluation_loader
from ..engine.subnet_eval import CalibrationSettings, calibrate_arch, calibration_images, uses_channels_last
from ..export.manifest import build_manifest, write_manifest
from ..export.sources import SubnetSource, resolve_labels
from ..export.zoo_writer import MANIFEST_FILE, export_model
from ..models import StaticAlphaNet
from .dataset_file import EvalTensors
from .family import Member


@dataclass
class MemberResult:
    """Everything the pipeline learns about one member; ``static`` is freed after export."""

    member: Member
    static: StaticAlphaNet | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    pytorch: Accuracy | None = None  # on the whole evaluation split (the published PyTorch figure)
    pytorch_on_validation_set: Accuracy | None = None  # on the samples given to onnxruntime-node
    entry: dict[str, Any] | None = None  # staging manifest entry
    timings: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why it is refused (empty = accepted)

    @property
    def accepted(self) -> bool:
        return self.entry is not None and not self.reasons


def calibrate_members(
    source: SubnetSource,
    results: list[MemberResult],
    settings: CalibrationSettings,
    device: torch.device,
    say,
) -> dict[str, Any]:
    """Extract and recalibrate every member in place (``result.static``, ``result.calibration``)."""
    images = calibration_images(source, settings, device)
    for result in results:
        start = time.monotonic()
        result.static, result.calibration = calibrate_arch(source, result.member.arch, images, device)
        result.timings["calibrate"] = time.monotonic() - start
        used = result.calibration["batches"]
        say(f"calibrated {result.member.name} on {used} x {settings.batch_size} training images")
    return {
        "batches": settings.batches,
        "batchSize": settings.batch_size,
        "seed": settings.seed,
        "shared": images.shared,
    }


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` indices spread over ``range(total)`` (every class of a sorted image tree is hit)."""
    if count >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, count).round()})


def load_eval_tensors(
    cfg: dict[str, Any], max_samples: int | None, batch_size: int, classes: int
) -> EvalTensors:
    """The samples onnxruntime-node will re-measure, through the eval transform, in order."""
    split = build_dataset(cfg, "val")
    total = len(split)
    indices = evenly_spaced(total, max_samples) if max_samples is not None else list(range(total))
    full = len(indices) == total
    subset = split if full else IndexedSubset(split, indices)
    loader = build_loader(
        cfg, "val", batch_size=batch_size, shuffle=False, augment=False, drop_last=False, dataset=subset
    )
    images, labels = [], []
    for x, y in loader:
        images.append(x.contiguous())
        labels.append(y)
    return EvalTensors(
        images=torch.cat(images),
        labels=torch.cat(labels),
        classes=classes,
        class_names=[str(c) for c in getattr(split, "classes", [])],
        dataset=dataset_name(cfg),
        split=eval_split_name(cfg),
        full_split=full,
        split_size=total,
    )


def evaluate_members(
    source: SubnetSource,
    results: list[MemberResult],
    tensors: EvalTensors,
    batch_size: int,
    device: torch.device,
    say,
) -> dict[str, Any]:
    """PyTorch top-1/top-5 of every member on the evaluation split (and on the validation samples)."""
    channels_last = uses_channels_last(source.cfg)
    loader = None if tensors.full_split else evaluation_loader(source.cfg, batch_size)[0]
    for result in results:
        start = time.monotonic()
        on_set = evaluate(result.static, tensors.batches(batch_size), None, channels_last)
        result.pytorch_on_validation_set = on_set
        result.pytorch = on_set if loader is None else evaluate(result.static, loader, None, channels_last)
        result.timings["evaluate"] = time.monotonic() - start
        say(
            f"{result.member.name}: PyTorch top-1 {result.pytorch['top1']:.4f} "
            f"({result.pytorch['samples']} {tensors.split} images)"
        )
    return {
        "dataset": tensors.dataset,
        "split": tensors.split,
        "samples": tensors.split_size,
        "validationSamples": tensors.count,
    }


def manifest_labels(source: SubnetSource, labels_file: str | None, tensors: EvalTensors) -> list[str]:
    """``zoo.labels_file``, else the checkpoint's label names, else the evaluation split's classes."""
    return resolve_labels(source, Path(labels_file) if labels_file else None, tensors.class_names)


def export_members(
    source: SubnetSource,
    results: list[MemberResult],
    staging: Path,
    labels: list[str],
    tensors: EvalTensors,
    opset: int,
    zoo_info: dict[str, Any],
    say,
) -> dict[str, Any]:
    """ONNX + reference pair + entry per member into a fresh ``staging`` zoo; returns its manifest
    (the pipeline's one manifest: `final_manifest` later amends its figures for publishing).

    The staging manifest carries the PyTorch figures measured on the validation samples, so the
    validator's top-1 delta is exactly the ORT-vs-PyTorch difference on the same tensors.
    """
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    entries = []
    for result in results:
        start = time.monotonic()
        entry = export_model(
            result.static,
            source.space,
            name=result.member.name,
            out_dir=staging,
            labels=labels,
            accuracy=result.pytorch_on_validation_set,
            evaluation={"dataset": tensors.dataset, "split": tensors.split, "runtime": "pytorch"},
            opset=opset,
        )
        result.entry = entry
        result.timings["export"] = time.monotonic() - start
        entries.append(entry)
        size = (staging / entry["file"]).stat().st_size
        say(f"exported {result.member.name} -> {entry['file']} ({size / 1e6:.1f} MB)")
        result.static = None  # the weights are in the ONNX file now; free the memory
    manifest = build_manifest(
        zoo_name=zoo_info["name"],
        description=zoo_info["description"],
        models=entries,
        source=zoo_info["source"],
    )
    write_manifest(staging / MANIFEST_FILE, manifest)
    return manifest
