"""Pipeline configuration: defaults, YAML file, ``KEY=VALUE`` overrides, validation.

Pipeline configs live in ``training/configs/pipeline/*.yaml`` (every key commented there).
Relative paths inside a pipeline config (and in ``KEY=VALUE`` overrides of path keys) are relative
to the repository root, so the same file works whatever the working directory; paths given as
command-line flags (``--run-dir``, ``--zoo-dir``) are relative to the working directory as usual.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..config import flatten
from ..errors import UserError
from ..loss import DISTILL_CHOICES

REPO_ROOT = Path(__file__).resolve().parents[3]
ZOO_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
FAMILY_MODES = ("named", "search")
SEARCH_PICKS = ("targets", "pareto")
EXECUTION_PROVIDERS = ("auto", "cpu", "cuda")

DEFAULTS: dict[str, Any] = {
    "zoo": {"name": None, "description": "", "model_prefix": "", "default_model": None, "labels_file": None},
    "run_dir": None,
    "source": {
        "train": {"config": None, "overrides": [], "time_limit_min": None, "nproc_per_node": 1},
        "checkpoint": None,
        "official": None,
        "space": "imagenet",
        "training_config": None,
    },
    "data_overrides": [],
    "family": {
        "mode": "named",
        "archs": [],
        "search": {"config": None, "overrides": [], "targets_mflops": [], "pick": "targets"},
    },
    "calibration": {"batches": 64, "batch_size": 256, "seed": 5},
    "evaluation": {"batch_size": 500},
    "export": {"opset": 17},
    "validation": {
        "max_samples": None,
        "reference_tolerance": 1.0e-4,
        "top1_tolerance": 0.001,
        "latency_runs": 50,
        "execution_provider": "cpu",
        "intra_op_threads": None,
        "batch_size": 64,
        "command": ["npm", "run", "--silent", "zoo:validate", "--"],
    },
    "publish": {
        "zoo_dir": "models",
        "require_all": False,
        "model_card": True,
        "reload_pid_file": None,
        "reload_url": None,
        "reload_timeout_s": 300.0,
    },
    "ablation": {
        "dir": None,
        "arms": list(DISTILL_CHOICES),
        "seeds": [0],
        "middle": "mid",
    },
}

# Keys whose default is null, with the type a non-null value must have.
NULLABLE: dict[str, type] = {
    "zoo.name": str,
    "zoo.default_model": str,
    "zoo.labels_file": str,
    "run_dir": str,
    "source.train.config": str,
    "source.train.time_limit_min": float,
    "source.checkpoint": str,
    "source.official": str,
    "source.training_config": str,
    "family.search.config": str,
    "validation.max_samples": int,
    "validation.intra_op_threads": int,
    "publish.reload_pid_file": str,
    "publish.reload_url": str,
    "ablation.dir": str,
}
# Path-valued keys, resolved against the repository root when relative.
PATH_KEYS = (
    "zoo.labels_file",
    "run_dir",
    "source.train.config",
    "source.checkpoint",
    "source.official",
    "source.training_config",
    "family.search.config",
    "publish.zoo_dir",
    "publish.reload_pid_file",
    "ablation.dir",
)


FLAT_DEFAULTS = flatten(DEFAULTS)


def _coerce(key: str, value: Any) -> Any:
    if value is None:
        if key in NULLABLE:
            return None
        raise UserError(f"pipeline config: {key} must not be null")
    expected = NULLABLE.get(key) or type(FLAT_DEFAULTS[key])
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is str:
        if isinstance(value, (str, Path)):
            return str(value)
    elif expected is list:
        if isinstance(value, list):
            return value
    names = {bool: "a boolean", float: "a number", int: "an integer", str: "a string", list: "a list"}
    raise UserError(f"pipeline config: {key} must be {names[expected]}, got {value!r}")


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    if key not in FLAT_DEFAULTS:
        if any(k.startswith(key + ".") for k in FLAT_DEFAULTS):
            raise UserError(f"pipeline config: '{key}' is a section; set its keys ({key}.<key>=...)")
        raise UserError(f"pipeline config: unknown key '{key}'")
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = _coerce(key, value)


def _apply_tree(cfg: dict[str, Any], raw: dict[str, Any], prefix: str = "") -> None:
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        default = FLAT_DEFAULTS.get(dotted, _subtree(dotted))
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise UserError(f"pipeline config: '{dotted}' must be a mapping, got {value!r}")
            _apply_tree(cfg, value, dotted + ".")
        else:
            _set(cfg, dotted, value)


def _subtree(dotted: str) -> Any:
    node: Any = DEFAULTS
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"pipeline config: unknown key '{dotted}'")
        node = node[part]
    return node


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, value parsed as YAML)."""
    if "=" not in text:
        raise UserError(f"override '{text}' is not KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def resolve_path(value: str | Path, base: Path = REPO_ROOT) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load_pipeline_config(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file <- overrides; paths made absolute; validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"pipeline config not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot parse pipeline config {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise UserError(f"pipeline config {path}: top level must be a mapping")
        _apply_tree(cfg, raw)
    for text in overrides:
        key, value = parse_override(text)
        _set(cfg, key, value)
    for key in PATH_KEYS:
        _set_path(cfg, key)
    validate_pipeline_config(cfg)
    return cfg


def _set_path(cfg: dict[str, Any], key: str) -> None:
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    if node[leaf] is not None:
        node[leaf] = str(resolve_path(node[leaf]))


def get(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def source_kind(cfg: dict[str, Any]) -> str:
    """``train`` | ``checkpoint`` | ``official``."""
    source = cfg["source"]
    if source["train"]["config"] is not None:
        return "train"
    return "checkpoint" if source["checkpoint"] is not None else "official"


def _check_overrides(value: Any, key: str) -> None:
    if not all(isinstance(x, str) and "=" in x for x in value):
        raise UserError(f"pipeline config: {key} must be a list of KEY=VALUE strings, got {value!r}")


def validate_pipeline_config(cfg: dict[str, Any]) -> None:
    """Cross-key checks beyond types (files are checked when the stage that needs them runs)."""
    if cfg["zoo"]["name"] is None or not ZOO_NAME_RE.match(cfg["zoo"]["name"]):
        raise UserError(
            f"pipeline config: zoo.name must match {ZOO_NAME_RE.pattern}, got {cfg['zoo']['name']!r}"
        )
    if cfg["run_dir"] is None:
        raise UserError("pipeline config: run_dir is required (where checkpoints, staging and reports go)")
    source = cfg["source"]
    chosen = [
        k
        for k, v in (
            ("source.train.config", source["train"]["config"]),
            ("source.checkpoint", source["checkpoint"]),
            ("source.official", source["official"]),
        )
        if v is not None
    ]
    if len(chosen) != 1:
        raise UserError(
            "pipeline config: set exactly one of source.train.config, source.checkpoint and source.official"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if source["official"] is None and source["training_config"] is not None:
        raise UserError("pipeline config: source.training_config only applies with source.official")
    if source["train"]["nproc_per_node"] < 1:
        raise UserError("pipeline config: source.train.nproc_per_node must be >= 1")
    if source["train"]["time_limit_min"] is not None and source["train"]["time_limit_min"] <= 0:
        raise UserError("pipeline config: source.train.time_limit_min must be > 0")
    _check_overrides(source["train"]["overrides"], "source.train.overrides")
    _check_overrides(cfg["data_overrides"], "data_overrides")
    family = cfg["family"]
    if family["mode"] not in FAMILY_MODES:
        raise UserError(f"pipeline config: family.mode must be one of {', '.join(FAMILY_MODES)}")
    if family["mode"] == "named" and not family["archs"]:
        raise UserError("pipeline config: family.mode 'named' needs a non-empty family.archs list")
    if family["mode"] == "search":
        search = family["search"]
        if search["config"] is None:
            raise UserError("pipeline config: family.mode 'search' needs family.search.config")
        targets = search["targets_mflops"]
        if not targets or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in targets
        ):
            raise UserError("pipeline config: family.search.targets_mflops must list positive MFLOPs")
        _check_overrides(search["overrides"], "family.search.overrides")
        if search["pick"] not in SEARCH_PICKS:
            raise UserError(f"pipeline config: family.search.pick must be one of {', '.join(SEARCH_PICKS)}")
    for entry in family["archs"]:
        if isinstance(entry, str):
            continue
        if not (
            isinstance(entry, dict) and set(entry) == {"name", "arch"} and isinstance(entry["name"], str)
        ):
            raise UserError(
                "pipeline config: each family.archs entry is an arch spec string (min | max | a named "
                f"arch | an arch file) or a mapping {{name, arch}}, got {entry!r}"
            )
    for key in ("calibration.batches", "calibration.batch_size", "evaluation.batch_size"):
        if get(cfg, key) < 1:
            raise UserError(f"pipeline config: {key} must be >= 1")
    if cfg["export"]["opset"] < 17:
        raise UserError("pipeline config: export.opset must be >= 17")
    validation = cfg["validation"]
    for key in ("reference_tolerance", "top1_tolerance"):
        if validation[key] < 0:
            raise UserError(f"pipeline config: validation.{key} must be >= 0")
    for key in ("latency_runs", "batch_size", "max_samples", "intra_op_threads"):
        if validation[key] is not None and validation[key] < 1:
            raise UserError(f"pipeline config: validation.{key} must be >= 1")
    if validation["execution_provider"] not in EXECUTION_PROVIDERS:
        raise UserError(
            f"pipeline config: validation.execution_provider must be one of {', '.join(EXECUTION_PROVIDERS)}"
        )
    if not validation["command"] or not all(isinstance(x, str) and x for x in validation["command"]):
        raise UserError("pipeline config: validation.command must be a non-empty list of strings")
    if cfg["publish"]["reload_timeout_s"] <= 0:
        raise UserError("pipeline config: publish.reload_timeout_s must be > 0")
    url = cfg["publish"]["reload_url"]
    if url is not None and not re.match(r"^https?://", url):
        raise UserError(f"pipeline config: publish.reload_url must be an http(s) URL, got {url!r}")
    ablation = cfg["ablation"]
    unknown = [a for a in ablation["arms"] if a not in DISTILL_CHOICES]
    if not ablation["arms"] or unknown:
        raise UserError(
            f"pipeline config: ablation.arms must be a non-empty list of {', '.join(DISTILL_CHOICES)}"
        )
    if not ablation["seeds"] or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in ablation["seeds"]
    ):
        raise UserError("pipeline config: ablation.seeds must be a non-empty list of integers")
