"""Write calibrated sub-networks into a zoo directory: ONNX file, reference pair, manifest entry,
and the merged ``manifest.json`` (docs/zoo-contract.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import UserError
from ..models import StaticAlphaNet, complexity
from ..space import SearchSpace
from .manifest import (
    MODEL_NAME_RE,
    ManifestError,
    build_manifest,
    build_model_entry,
    check_model_files,
    write_manifest,
)
from .onnx import DEFAULT_OPSET, export_onnx
from .reference_pair import reference_input, write_reference_pair

MANIFEST_FILE = "manifest.json"


def model_name(prefix: str, label: str) -> str:
    """``prefix + label`` made into a valid model name (lowercase, [a-z0-9._-])."""
    name = re.sub(r"[^a-z0-9._-]+", "-", f"{prefix}{label}".lower()).strip("-.")
    if not MODEL_NAME_RE.match(name):
        raise UserError(f"cannot make a valid model name from '{prefix}{label}' (got '{name}')")
    return name


def export_model(
    static: StaticAlphaNet,
    space: SearchSpace,
    *,
    name: str,
    out_dir: Path,
    labels: Sequence[str],
    accuracy: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """Export one calibrated network; returns its manifest entry.

    Args:
        accuracy: ``{top1, top5, samples}`` measured on the evaluation split.
        evaluation: ``{dataset, split[, runtime]}`` describing where ``accuracy`` was measured.
    """
    if not MODEL_NAME_RE.match(name):
        raise UserError(f"invalid model name '{name}' (expected {MODEL_NAME_RE.pattern})")
    out_dir = Path(out_dir)
    data = space.data
    static = static.to("cpu", memory_format=torch.contiguous_format).eval()
    onnx_path = out_dir / f"{name}.onnx"
    export_onnx(static, onnx_path, channels=space.in_channels, size=int(data["input_size"]), opset=opset)
    reference_file = f"{name}.reference.json"
    inputs = reference_input(space.in_channels, int(data["input_size"]), data["mean"], data["std"])
    write_reference_pair(static, inputs, out_dir / reference_file)
    cx = complexity(space, static.arch, static.num_classes)
    return build_model_entry(
        name=name,
        onnx_file=onnx_path,
        mflops=cx.mflops,
        params=cx.params,
        data=data,
        resolution=static.arch.resolution,
        labels=labels,
        space_name=space.name,
        arch=static.arch,
        opset=opset,
        top1=accuracy["top1"],
        top5=accuracy.get("top5"),
        evaluation={**evaluation, "samples": int(accuracy["samples"])},
        reference_file=reference_file,
    )


def write_zoo(
    out_dir: Path,
    entries: Sequence[Mapping[str, Any]],
    *,
    zoo_name: str,
    description: str,
    source: Mapping[str, Any],
    default_model: str | None = None,
) -> dict[str, Any]:
    """Merge ``entries`` into ``out_dir/manifest.json`` (same-name models are replaced, others
    kept), validate, check every file's sha256, write it; returns the manifest."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_FILE
    models: dict[str, Mapping[str, Any]] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
            models = {m["name"]: m for m in existing["models"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"existing {path} is not a zoo manifest ({exc}); use an empty output directory"
            ) from None
    for entry in entries:
        models[entry["name"]] = entry
    try:
        manifest = build_manifest(
            zoo_name=zoo_name,
            description=description,
            models=list(models.values()),
            source=source,
            default_model=default_model,
        )
    except ManifestError as exc:
        raise UserError(str(exc)) from None
    problems = check_model_files(manifest, out_dir)
    if problems:
        raise UserError(
            "zoo files do not match the manifest: " + "; ".join(f"{k}: {v}" for k, v in problems.items())
        )
    write_manifest(path, manifest)
    return manifest
