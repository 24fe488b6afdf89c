"""Search configuration: defaults, YAML file, ``KEY=VALUE`` overrides, validation.

Search configs live in ``training/configs/search/*.yaml`` (every key commented there). They are
separate from training configs: the data settings come from the supernet checkpoint's own
training config, adjusted by ``data_overrides`` (training-config ``KEY=VALUE`` strings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..settings import Key, Schema, check_overrides
from .search import SearchSettings
from .subnet_eval import CalibrationSettings

LABEL = "search config"
TREE: dict[str, Any] = {
    "checkpoint": Key(
        None, "supernet checkpoint (file or run directory); required unless official_checkpoint", str
    ),
    "official_checkpoint": Key(None, "or the published AlphaNet checkpoint (ImageNet space only)", str),
    "space": Key(None, "official_checkpoint only: its search space (default imagenet)", str),
    "training_config": Key(
        None, "official_checkpoint only: data settings (default configs/imagenet.yaml)", str
    ),
    "data_overrides": Key([], "training-config KEY=VALUE overrides, e.g. [data.root=/path/to/fashion-mnist]"),
    "output": Key("search_results.json", "results: archive, Pareto front, per-target picks (JSON)"),
    "seed": Key(0, "RNG of sampling, mutation and crossover"),
    "constraints": {
        "min_mflops": Key(0.0, "candidates below this are rejected"),
        "max_mflops": Key(1.0e9, "candidates above this are rejected"),
        "flops_step": Key(
            10.0, "Pareto-archive bin width in MFLOPs (the reference's 10 suits ImageNet only)"
        ),
        "max_latency_ms": Key(None, "optional latency constraint (needs latency_table)", float),
        "latency_table": Key(None, "JSON written by `alphanet latency --space <space> --out ...`", str),
    },
    "evolution": {
        "population_size": Key(512, "initial population: the smallest subnet + random ones in range"),
        "mutate_size": Key(128, "mutants per generation (parents drawn from the archive)"),
        "crossover_size": Key(128, "crossover children per generation"),
        "mutate_prob": Key(0.2, "per-gene probability of switching to a different value"),
        "crossover_prob": Key(0.5, "per-gene probability of taking the first parent's value"),
        "iterations": Key(20, "generations (each one is evaluated)"),
        "max_sampling_attempts": Key(10000, "rejection-sampling budget per child before giving up"),
    },
    "fitness": {
        "holdout_size": Key(
            10000, "only for supernets trained without data.holdout_size (else theirs is used)"
        ),
        "holdout_seed": Key(0, "which images are held out (same condition)"),
        "calib_batches": Key(32, "BN recalibration batches per candidate (training augmentation)"),
        "calib_batch_size": Key(256, "images per calibration batch"),
        "calib_seed": Key(5, "calibration shuffle seed (the reference uses 5)"),
        "eval_batch_size": Key(500, "held-out evaluation batch size"),
        "max_eval_batches": Key(None, "cap on held-out batches per candidate (null = all)", int),
    },
    "targets_mflops": Key(
        [], "family selection: the best evaluated candidate at or below each of these MFLOPs"
    ),
}


def load_search_config(
    path: Path | None, overrides: Iterable[str] = (), values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults <- YAML file <- ``KEY=VALUE`` overrides <- typed ``values``; validated."""
    return SEARCH.load(path, overrides, values)


def validate_search_config(cfg: dict[str, Any]) -> None:
    if (cfg["checkpoint"] is None) == (cfg["official_checkpoint"] is None):
        raise UserError("search config: set exactly one of checkpoint and official_checkpoint")
    if cfg["checkpoint"] is not None and (cfg["space"] or cfg["training_config"]):
        raise UserError("search config: space and training_config only apply with official_checkpoint")
    check_overrides(cfg["data_overrides"], "data_overrides", LABEL)
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
    """The evolution's settings: the ``evolution`` section, the constraints but the latency table
    (which `run_search` loads), and the seed; the field names are the config's keys."""
    constraints = {k: v for k, v in cfg["constraints"].items() if k != "latency_table"}
    return SearchSettings(**constraints, **cfg["evolution"], seed=cfg["seed"])


def calibration_settings(cfg: dict[str, Any]) -> CalibrationSettings:
    fitness = cfg["fitness"]
    return CalibrationSettings(fitness["calib_batches"], fitness["calib_batch_size"], fitness["calib_seed"])


SEARCH = Schema(LABEL, TREE, check=validate_search_config)
