"""Zoo manifest entries: build them from an export, validate them against the zoo contract.

``docs/zoo-contract.md`` is the contract between training (which writes zoos) and serving (which
reads them). This module is the Python side of it:

* `build_model_entry` / `build_manifest` produce the JSON (camelCase keys, fractions, MFLOPs);
* `validate_manifest` checks the structure the contract describes *and* the invariants listed
  below its schema (unique names, ``defaultModel`` names a model, mean/std lengths equal
  ``channels``, std > 0, ``resizeShortSide >= size``); when the generated JSON Schema
  ``models/manifest.schema.json`` exists it is applied as well, so both sides agree;
* `check_model_files` checks that each model's file exists and matches its sha256 (a mismatch
  makes only that model not ready, never the whole zoo, hence a separate per-model report).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..space import NUM_STAGES, NUM_WIDTHS, ArchConfig

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "models" / "manifest.schema.json"
ZOO_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# The schema accepts any opset from 7; this project's exporter (export/onnx.py) writes 17 or later.
MIN_OPSET = 7


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


class _Checker:
    """Collects violations with JSON-pointer-like locations."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def obj(self, value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> bool:
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
            return False
        for key in required:
            if key not in value:
                self.fail(where, f"missing '{key}'")
        for key in sorted(set(value) - set(required) - set(optional)):
            self.fail(where, f"unknown key '{key}'")
        return True

    def string(self, value: Any, where: str, pattern: re.Pattern | None = None) -> bool:
        if not isinstance(value, str) or not value:
            self.fail(where, "must be a non-empty string")
            return False
        if pattern is not None and not pattern.match(value):
            self.fail(where, f"'{value}' does not match {pattern.pattern}")
            return False
        return True

    def integer(self, value: Any, where: str, minimum: int | None = None) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(where, "must be an integer")
            return False
        if minimum is not None and value < minimum:
            self.fail(where, f"must be >= {minimum}")
            return False
        return True

    def number(
        self, value: Any, where: str, low: float | None = None, high: float | None = None, positive=False
    ):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            self.fail(where, "must be a finite number")
            return False
        if positive and value <= 0:
            self.fail(where, "must be > 0")
            return False
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(where, f"must be in [{low}, {high}]")
            return False
        return True

    def int_list(self, value: Any, where: str, length: int) -> None:
        if not isinstance(value, list) or len(value) != length:
            self.fail(where, f"must be a list of {length} integers")
            return
        for i, item in enumerate(value):
            self.integer(item, f"{where}/{i}", minimum=1)


def _check_file_name(check: _Checker, value: Any, where: str) -> None:
    if check.string(value, where) and ("/" in value or "\\" in value or value in (".", "..")):
        check.fail(where, "must be a plain file name inside the zoo directory")


def _check_input(check: _Checker, value: Any, where: str) -> None:
    keys = (
        "name",
        "size",
        "channels",
        "mean",
        "std",
        "resizeShortSide",
        "crop",
        "interpolation",
        "layout",
        "dtype",
    )
    if not check.obj(value, where, keys):
        return
    check.string(value.get("name"), f"{where}/name")
    size_ok = check.integer(value.get("size"), f"{where}/size", minimum=1)
    channels = value.get("channels")
    if channels not in (1, 3) or isinstance(channels, bool):
        check.fail(f"{where}/channels", "must be 1 (grayscale) or 3 (RGB)")
        channels = None
    for key in ("mean", "std"):
        values = value.get(key)
        if not isinstance(values, list) or not values:
            check.fail(f"{where}/{key}", "must be a non-empty list of numbers")
            continue
        for i, item in enumerate(values):
            check.number(item, f"{where}/{key}/{i}", positive=key == "std")
        if channels is not None and len(values) != channels:
            check.fail(f"{where}/{key}", f"has {len(values)} values for {channels} channel(s)")
    resize = value.get("resizeShortSide")
    if check.integer(resize, f"{where}/resizeShortSide", minimum=1) and size_ok and resize < value["size"]:
        check.fail(f"{where}/resizeShortSide", f"{resize} is smaller than size {value['size']}")
    if value.get("crop") != "center":
        check.fail(f"{where}/crop", "must be 'center'")
    if value.get("interpolation") not in INTERPOLATIONS:
        check.fail(f"{where}/interpolation", f"must be one of {', '.join(INTERPOLATIONS)}")
    if value.get("layout") != "NCHW":
        check.fail(f"{where}/layout", "must be 'NCHW'")
    if value.get("dtype") != "float32":
        check.fail(f"{where}/dtype", "must be 'float32'")


def _check_model(check: _Checker, model: Any, where: str) -> None:
    required = (
        "name",
        "file",
        "sha256",
        "mflops",
        "params",
        "top1",
        "evaluation",
        "input",
        "resolution",
        "labels",
        "arch",
        "opset",
    )
    optional = ("top5", "latencyMs", "reference")
    if not check.obj(model, where, required, optional):
        return
    check.string(model.get("name"), f"{where}/name", MODEL_NAME_RE)
    _check_file_name(check, model.get("file"), f"{where}/file")
    check.string(model.get("sha256"), f"{where}/sha256", SHA256_RE)
    check.number(model.get("mflops"), f"{where}/mflops", positive=True)
    check.integer(model.get("params"), f"{where}/params", minimum=1)
    check.number(model.get("top1"), f"{where}/top1", 0.0, 1.0)
    if "top5" in model:
        check.number(model["top5"], f"{where}/top5", 0.0, 1.0)
    if "evaluation" in model:  # required: its absence is reported by obj() above
        evaluation = model["evaluation"]
        if check.obj(evaluation, f"{where}/evaluation", ("dataset", "split", "samples"), ("runtime",)):
            check.string(evaluation.get("dataset"), f"{where}/evaluation/dataset")
            check.string(evaluation.get("split"), f"{where}/evaluation/split")
            check.integer(evaluation.get("samples"), f"{where}/evaluation/samples", minimum=1)
            if "runtime" in evaluation:
                check.string(evaluation["runtime"], f"{where}/evaluation/runtime")
    if "latencyMs" in model:
        latency = model["latencyMs"]
        if check.obj(latency, f"{where}/latencyMs", ("p50", "p95", "batchSize", "host")):
            check.number(latency.get("p50"), f"{where}/latencyMs/p50", low=0.0)
            check.number(latency.get("p95"), f"{where}/latencyMs/p95", low=0.0)
            check.integer(latency.get("batchSize"), f"{where}/latencyMs/batchSize", minimum=1)
            if not isinstance(latency.get("host"), str):
                check.fail(f"{where}/latencyMs/host", "must be a string")
    _check_input(check, model.get("input"), f"{where}/input")
    check.integer(model.get("resolution"), f"{where}/resolution", minimum=1)
    labels = model.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        check.fail(f"{where}/labels", "must be a non-empty list of non-empty strings")
    arch = model.get("arch")
    keys = ("space", "resolution", "width", "depth", "kernelSize", "expandRatio")
    if check.obj(arch, f"{where}/arch", keys):
        check.string(arch.get("space"), f"{where}/arch/space")
        check.integer(arch.get("resolution"), f"{where}/arch/resolution", minimum=1)
        check.int_list(arch.get("width"), f"{where}/arch/width", NUM_WIDTHS)
        for key in ("depth", "kernelSize", "expandRatio"):
            check.int_list(arch.get(key), f"{where}/arch/{key}", NUM_STAGES)
        if arch.get("resolution") != model.get("resolution"):
            check.fail(f"{where}/arch/resolution", "must equal the model's resolution")
    check.integer(model.get("opset"), f"{where}/opset", minimum=MIN_OPSET)
    if "reference" in model and check.obj(model["reference"], f"{where}/reference", ("file",)):
        _check_file_name(check, model["reference"].get("file"), f"{where}/reference/file")


def _check_zoo(check: _Checker, zoo: Any) -> None:
    if not check.obj(zoo, "/zoo", ("name", "description", "createdAt"), ("source",)):
        return
    check.string(zoo.get("name"), "/zoo/name", ZOO_NAME_RE)
    if not isinstance(zoo.get("description"), str):
        check.fail("/zoo/description", "must be a string")
    created = zoo.get("createdAt")
    if check.string(created, "/zoo/createdAt"):
        try:
            datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            check.fail("/zoo/createdAt", f"'{created}' is not an ISO-8601 date-time")
    if "source" in zoo and not isinstance(zoo["source"], dict):
        check.fail("/zoo/source", "must be an object")


def _json_schema_problems(manifest: Mapping[str, Any], schema_path: Path) -> list[str]:
    import jsonschema  # only needed once the server side has generated the schema

    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    problems = []
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path)):
        location = "/" + "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{location}: {error.message} (JSON Schema)")
    return problems


def validate_manifest(manifest: Any, schema_path: Path | None = SCHEMA_PATH) -> None:
    """Raise `ManifestError` listing every contract violation of ``manifest`` (files not checked)."""
    check = _Checker()
    if check.obj(manifest, "", ("schemaVersion", "zoo", "models"), ("defaultModel",)):
        if manifest.get("schemaVersion") != SCHEMA_VERSION or isinstance(manifest.get("schemaVersion"), bool):
            check.fail("/schemaVersion", f"must be {SCHEMA_VERSION}")
        _check_zoo(check, manifest.get("zoo"))
        models = manifest.get("models")
        if not isinstance(models, list) or not models:
            check.fail("/models", "must be a non-empty list")
            models = []
        names = []
        for i, model in enumerate(models):
            _check_model(check, model, f"/models/{i}")
            if isinstance(model, dict) and isinstance(model.get("name"), str):
                names.append(model["name"])
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            check.fail("/models", f"duplicate model names: {', '.join(duplicates)}")
        if "defaultModel" in manifest and manifest["defaultModel"] not in names:
            check.fail("/defaultModel", f"'{manifest['defaultModel']}' names no model")
        if schema_path is not None and Path(schema_path).is_file():
            check.problems += _json_schema_problems(manifest, Path(schema_path))
    if check.problems:
        raise ManifestError(check.problems)


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
