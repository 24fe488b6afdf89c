"""Search configuration: defaults, YAML file, ``KEY=VALUE`` overrides, validation.

Search configs live in ``training/configs/search/*.yaml`` (every key commented there). They are
separate from training configs: the data settings come from the supernet checkpoint's own
training config, adjusted by ``data_overrides`` (training-config ``KEY=VALUE`` strings).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..config import flatten
from ..errors import UserError
from .search import SearchSettings
from .subnet_eval import CalibrationSettings

DEFAULTS: dict[str, Any] = {
    "checkpoint": None,
    "official_checkpoint": None,
    "space": None,
    "training_config": None,
    "data_overrides": [],
    "output": "search_results.json",
    "seed": 0,
    "constraints": {
        "min_mflops": 0.0,
        "max_mflops": 1.0e9,
        "flops_step": 10.0,
        "max_latency_ms": None,
        "latency_table": None,
    },
    "evolution": {
        "population_size": 512,
        "mutate_size": 128,
        "crossover_size": 128,
        "mutate_prob": 0.2,
        "crossover_prob": 0.5,
        "iterations": 20,
        "max_sampling_attempts": 10000,
    },
    "fitness": {
        "holdout_size": 10000,
        "holdout_seed": 0,
        "calib_batches": 32,
        "calib_batch_size": 256,
        "calib_seed": 5,
        "eval_batch_size": 500,
        "max_eval_batches": None,
    },
    "targets_mflops": [],
}
# Keys whose default is null, with the type they take when set.
NULLABLE_TYPES = {
    "checkpoint": str,
    "official_checkpoint": str,
    "space": str,
    "training_config": str,
    "constraints.max_latency_ms": float,
    "constraints.latency_table": str,
    "fitness.max_eval_batches": int,
}


FLAT_DEFAULTS = flatten(DEFAULTS)


def _coerce(key: str, value: Any) -> Any:
    default = FLAT_DEFAULTS[key]
    if value is None:
        if key in NULLABLE_TYPES:
            return None
        raise UserError(f"search config: {key} must not be null")
    expected = NULLABLE_TYPES.get(key, type(default))
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if expected is str and isinstance(value, (str, Path)):
        return str(value)
    if expected is list and isinstance(value, list):
        return value
    raise UserError(f"search config: {key} must be {expected.__name__}, got {value!r}")


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    if key not in FLAT_DEFAULTS:
        raise UserError(f"search config: unknown key '{key}'")
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = _coerce(key, value)


def load_search_config(path: Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file <- ``KEY=VALUE`` overrides (values parsed as YAML); validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"search config not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot parse search config {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise UserError(f"search config {path}: top level must be a mapping")
        for key, value in raw.items():
            if isinstance(DEFAULTS.get(key), dict) and not isinstance(value, dict):
                raise UserError(f"search config: '{key}' must be a mapping")
        for key, value in flatten(raw).items():
            _set(cfg, key, value)
    for text in overrides:
        if "=" not in text:
            raise UserError(f"override '{text}' is not KEY=VALUE")
        key, raw_value = text.split("=", 1)
        try:
            value = yaml.safe_load(raw_value) if raw_value.strip() else ""
        except yaml.YAMLError:
            value = raw_value
        _set(cfg, key.strip(), value)
    validate_search_config(cfg)
    return cfg


def validate_search_config(cfg: dict[str, Any]) -> None:
    if (cfg["checkpoint"] is None) == (cfg["official_checkpoint"] is None):
        raise UserError("search config: set exactly one of checkpoint and official_checkpoint")
    if cfg["checkpoint"] is not None and (cfg["space"] or cfg["training_config"]):
        raise UserError("search config: space and training_config only apply with official_checkpoint")
    if not all(isinstance(x, str) and "=" in x for x in cfg["data_overrides"]):
        raise UserError("search config: data_overrides must be a list of KEY=VALUE strings")
    targets = cfg["targets_mflops"]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in targets):
        raise UserError("search config: targets_mflops must be a list of positive numbers")
    fitness = cfg["fitness"]
    for key in ("holdout_size", "calib_batches", "calib_batch_size", "eval_batch_size"):
        if fitness[key] < 1:
            raise UserError(f"search config: fitness.{key} must be >= 1")
    if fitness["max_eval_batches"] is not None and fitness["max_eval_batches"] < 1:
        raise UserError("search config: fitness.max_eval_batches must be >= 1")
    if cfg["constraints"]["max_latency_ms"] is not None and not cfg["constraints"]["latency_table"]:
        raise UserError("search config: constraints.max_latency_ms needs constraints.latency_table")
    search_settings(cfg).validate()


def search_settings(cfg: dict[str, Any]) -> SearchSettings:
    constraints, evolution = cfg["constraints"], cfg["evolution"]
    return SearchSettings(
        min_mflops=constraints["min_mflops"],
        max_mflops=constraints["max_mflops"],
        population_size=evolution["population_size"],
        mutate_size=evolution["mutate_size"],
        crossover_size=evolution["crossover_size"],
        mutate_prob=evolution["mutate_prob"],
        crossover_prob=evolution["crossover_prob"],
        iterations=evolution["iterations"],
        flops_step=constraints["flops_step"],
        max_latency_ms=constraints["max_latency_ms"],
        seed=cfg["seed"],
        max_sampling_attempts=evolution["max_sampling_attempts"],
    )


def calibration_settings(cfg: dict[str, Any]) -> CalibrationSettings:
    fitness = cfg["fitness"]
    return CalibrationSettings(fitness["calib_batches"], fitness["calib_batch_size"], fitness["calib_seed"])
