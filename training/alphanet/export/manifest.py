"""Zoo manifest entries: build them from an export, validate them against the zoo contract.

``docs/zoo-contract.md`` is the contract between training (which writes zoos) and serving (which
reads them). This module is the Python side of it:

* `build_model_entry` / `build_manifest` produce the JSON (camelCase keys, fractions, MFLOPs);
* `validate_manifest` applies the JSON Schema the server generates from the contract
  (``models/manifest.schema.json``, so both sides agree), then only the invariants listed below
  the schema that it cannot express (unique names, ``defaultModel`` names a model, mean/std
  lengths equal ``channels``, ``resizeShortSide >= size``, ...);
* `check_model_files` checks that each model's file exists and matches its sha256 (a mismatch
  makes only that model not ready, never the whole zoo, hence a separate per-model report).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..space import ArchConfig
from .cascade_manifest import cascade_problems
from .onnx import MIN_OPSET

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "models" / "manifest.schema.json"


class ManifestError(ValueError):
    """A manifest that breaks the zoo contract; ``problems`` lists every violation found."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid zoo manifest: " + "; ".join(self.problems))


# ---- building ----------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_contract(data: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest ``input`` object from a space's data contract (snake_case YAML keys)."""
    return {
        "name": "input",
        "size": int(data["input_size"]),
        "channels": int(data["channels"]),
        "mean": [float(v) for v in data["mean"]],
        "std": [float(v) for v in data["std"]],
        "resizeShortSide": int(data["resize_short_side"]),
        "crop": "center",
        "interpolation": str(data["interpolation"]),
        "layout": "NCHW",
        "dtype": "float32",
    }


def arch_entry(space_name: str, arch: ArchConfig) -> dict[str, Any]:
    """The manifest ``arch`` object (reference layout, camelCase keys)."""
    return {
        "space": space_name,
        "resolution": arch.resolution,
        "width": list(arch.width),
        "depth": list(arch.depth),
        "kernelSize": list(arch.kernel_size),
        "expandRatio": list(arch.expand_ratio),
    }


def arch_from_entry(entry: Mapping[str, Any]) -> ArchConfig:
    """Inverse of `arch_entry` (the ``space`` key is dropped)."""
    return ArchConfig.from_dict(dict(entry))


def build_model_entry(
    *,
    name: str,
    onnx_file: Path,
    mflops: float,
    params: int,
    data: Mapping[str, Any],
    resolution: int,
    labels: Sequence[str],
    space_name: str,
    arch: ArchConfig,
    opset: int,
    top1: float,
    evaluation: Mapping[str, Any],
    top5: float | None = None,
    reference_file: str | None = None,
) -> dict[str, Any]:
    """One ``models[]`` entry; ``onnx_file`` must already be written (its sha256 is computed).

    ``evaluation`` = ``{dataset, split, samples[, runtime]}``: where ``top1``/``top5`` were measured.
    """
    onnx_file = Path(onnx_file)
    entry: dict[str, Any] = {
        "name": name,
        "file": onnx_file.name,
        "sha256": sha256_file(onnx_file),
        "mflops": round(float(mflops), 4),
        "params": int(params),
    }
    entry["top1"] = float(top1)
    if top5 is not None:
        entry["top5"] = float(top5)
    entry["evaluation"] = dict(evaluation)
    entry["input"] = input_contract(data)
    entry["resolution"] = int(resolution)
    entry["labels"] = [str(label) for label in labels]
    entry["arch"] = arch_entry(space_name, arch)
    entry["opset"] = int(opset)
    if reference_file is not None:
        entry["reference"] = {"file": reference_file}
    return entry


_DISTILL_WORDS = {
    "alpha_divergence": "adaptive alpha-divergence distillation",
    "kl": "KL distillation",
    "none": "no distillation",
}


def default_description(space: str, loss: dict[str, Any] | None) -> str:
    """The manifest's zoo description when the pipeline config leaves it empty."""
    text = f"AlphaNet sub-networks of the '{space}' space"
    if loss:
        text += f" (one weight-sharing supernet, sandwich rule, {_DISTILL_WORDS[loss['distill']]})"
    return text


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_manifest(
    *,
    zoo_name: str,
    description: str,
    models: Sequence[Mapping[str, Any]],
    source: Mapping[str, Any] | None = None,
    default_model: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """A whole manifest (validated)."""
    zoo: dict[str, Any] = {
        "name": zoo_name,
        "description": description,
        "createdAt": created_at or utc_now_iso(),
    }
    if source:
        zoo["source"] = dict(source)
    manifest: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "zoo": zoo}
    if default_model is not None:
        manifest["defaultModel"] = default_model
    manifest["models"] = [dict(m) for m in models]
    validate_manifest(manifest)
    return manifest


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Validate, then write atomically (temp file + rename)."""
    validate_manifest(manifest)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(path)


# ---- validation --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _schema_validator(schema_path: str):
    import jsonschema

    try:
        schema = json.loads(Path(schema_path).read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError([f"cannot read the manifest JSON Schema {schema_path}: {exc}"]) from None
    return jsonschema.validators.validator_for(schema)(schema)


def _schema_problems(manifest: Any, schema_path: Path) -> list[str]:
    problems = []
    for error in sorted(
        _schema_validator(str(schema_path)).iter_errors(manifest), key=lambda e: list(e.path)
    ):
        location = "/" + "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{location}: {error.message} (JSON Schema)")
    return problems


def _invariant_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What the JSON Schema cannot say: unique names, the default names a model, per-channel
    mean/std, the resize covers the crop, the arch's resolution is the model's, a real date-time,
    the opset this project's exporter writes, and the cascades' own (`cascade_problems`)."""
    problems = []
    created = manifest["zoo"]["createdAt"]
    try:
        datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"/zoo/createdAt: '{created}' is not an ISO-8601 date-time")
    names = [model["name"] for model in manifest["models"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"/models: duplicate model names: {', '.join(duplicates)}")
    if "defaultModel" in manifest and manifest["defaultModel"] not in names:
        problems.append(f"/defaultModel: '{manifest['defaultModel']}' names no model")
    for i, model in enumerate(manifest["models"]):
        where, contract = f"/models/{i}", model["input"]
        channels, resize, size = contract["channels"], contract["resizeShortSide"], contract["size"]
        for key in ("mean", "std"):
            if len(contract[key]) != channels:
                problems.append(
                    f"{where}/input/{key}: has {len(contract[key])} values for {channels} channel(s)"
                )
        if resize < size:
            problems.append(f"{where}/input/resizeShortSide: {resize} is smaller than size {size}")
        if model["arch"]["resolution"] != model["resolution"]:
            problems.append(f"{where}/arch/resolution: must equal the model's resolution")
        if model["opset"] < MIN_OPSET:
            problems.append(f"{where}/opset: {model['opset']} is below {MIN_OPSET}, the exporter's minimum")
    return problems + cascade_problems(manifest)


def validate_manifest(manifest: Any, schema_path: Path = SCHEMA_PATH) -> None:
    """Raise `ManifestError` listing every contract violation of ``manifest`` (files not checked):
    the JSON Schema (``models/manifest.schema.json``, generated from the server's contract), then
    the invariants it cannot express."""
    problems = _schema_problems(manifest, Path(schema_path))
    if not problems:
        problems = _invariant_problems(manifest)
    if problems:
        raise ManifestError(problems)


def check_model_files(manifest: Mapping[str, Any], zoo_dir: Path) -> dict[str, str]:
    """Per-model readiness problems: the ONNX file is missing or does not match its sha256.

    Returns a mapping model name -> problem; models that are fine are absent.
    """
    problems: dict[str, str] = {}
    for model in manifest["models"]:
        path = Path(zoo_dir) / model["file"]
        if not path.is_file():
            problems[model["name"]] = f"file {model['file']} not found in {zoo_dir}"
        elif sha256_file(path) != model["sha256"]:
            problems[model["name"]] = f"file {model['file']} does not match its sha256"
    return problems
