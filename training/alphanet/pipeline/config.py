"""Pipeline configuration: defaults, YAML file, ``KEY=VALUE`` overrides, validation.

Pipeline configs live in ``training/configs/pipeline/*.yaml`` (every key commented there).
Relative paths inside a pipeline config (and in ``KEY=VALUE`` overrides of path keys) are relative
to the repository root, so the same file works whatever the working directory; paths given as
command-line flags (``--run-dir``, ``--zoo-dir``) are relative to the working directory as usual.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..export.onnx import DEFAULT_OPSET, MIN_OPSET
from ..loss import DISTILL_CHOICES
from ..paths import REPO_ROOT
from ..settings import Key, Schema, check_overrides, get

ZOO_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
FAMILY_MODES = ("named", "search")
SEARCH_PICKS = ("targets", "pareto")
EXECUTION_PROVIDERS = ("auto", "cpu", "cuda")
LABEL = "pipeline config"

TREE: dict[str, Any] = {
    "zoo": {
        "name": Key(None, "manifest zoo.name ([a-z0-9][a-z0-9._-]*)", str),
        "description": Key("", "the manifest's zoo description (empty = one naming the space)"),
        "model_prefix": Key(
            "", "model name = prefix + member label (search picks: '<MFLOPs>m', e.g. fmnist-5.12m)"
        ),
        "default_model": Key(
            None, "a member label or name for the manifest's defaultModel (null = none)", str
        ),
        "labels_file": Key(
            None, "label names, one per line or a JSON list (null = checkpoint's / dataset's)", str, True
        ),
    },
    "run_dir": Key(None, "supernet/ (training run), search.json, staging/, validation/, reports", str, True),
    "source": {
        "train": {
            "config": Key(
                None, "training config; trains into <run_dir>/supernet, resumes there on rerun", str, True
            ),
            "overrides": Key([], "training-config KEY=VALUE overrides, e.g. [train.epochs=30]"),
            "time_limit_min": Key(
                None, "stop training cleanly after this many minutes (rerun to resume)", float
            ),
            "nproc_per_node": Key(1, "> 1: train under torchrun with this many processes (one per GPU)"),
        },
        "checkpoint": Key(None, "or: an existing supernet checkpoint (file or run directory)", str, True),
        "official": Key(
            None, "or: the published AlphaNet checkpoint (alphanet_pretrained.pth.tar)", str, True
        ),
        "space": Key("imagenet", "official only: its search space"),
        "training_config": Key(None, "official only: training config providing the data settings", str, True),
    },
    "data_overrides": Key([], "training-config KEY=VALUE applied for calibration and evaluation"),
    "family": {
        "mode": Key("named", "named (family.archs) | search (evolutionary search, then picks)"),
        "archs": Key(
            [], "named mode: the family; search mode: published too (min | max | named | file | {name, arch})"
        ),
        "drop_below_plain_cnns": Key(
            True,
            "search mode: drop a member a plain-CNN baseline (baselines.dir) of equal or lower MFLOPs "
            "beats on the same held-out images",
        ),
        "search": {
            "config": Key(None, "search settings (population, generations, fitness)", str, True),
            "overrides": Key([], "search-config KEY=VALUE overrides, e.g. [evolution.iterations=5]"),
            "targets_mflops": Key([], "the best candidate at or below each (duplicates merged)"),
            "pick": Key(
                "targets", "targets (one pick per target) | pareto (every member of the Pareto front)"
            ),
        },
    },
    "calibration": {
        "batches": Key(64, "BN recalibration batches of training images per member"),
        "batch_size": Key(256, "images per calibration batch"),
        "seed": Key(5, "calibration shuffle seed (the reference uses 5)"),
    },
    "evaluation": {
        "batch_size": Key(500, "PyTorch evaluation batch size"),
    },
    "export": {
        "opset": Key(DEFAULT_OPSET, f"ONNX opset (>= {MIN_OPSET})"),
    },
    "validation": {
        "max_samples": Key(
            None, "evaluation images re-measured in onnxruntime-node (null = the whole split)", int
        ),
        "reference_tolerance": Key(1.0e-4, "max |ONNX - PyTorch| on the reference input, else REFUSED"),
        "top1_tolerance": Key(0.001, "max |top-1 ORT - top-1 PyTorch| on the same images, else REFUSED"),
        "latency_runs": Key(50, "timed batch-1 runs per model (p50/p95 -> manifest latencyMs)"),
        "execution_provider": Key("cpu", "auto | cpu | cuda"),
        "intra_op_threads": Key(None, "onnxruntime intra-op threads (null = all cores)", int),
        "batch_size": Key(64, "batch size of the top-1 re-measurement"),
        "command": Key(
            ["npm", "run", "--silent", "zoo:validate", "--"], "the validator, run from the repository root"
        ),
    },
    "cascades": {
        "count": Key(
            4, "publish at most this many confidence cascades (0 = none), picked on held-out images"
        ),
        "holdout_size": Key(
            5000, "only for supernets trained without data.holdout_size (else theirs is used)"
        ),
        "holdout_seed": Key(0, "which training images are held out (same condition)"),
    },
    "publish": {
        "zoo_dir": Key("models", "the zoo directory the server serves (ZOO_DIR)", path=True),
        "require_all": Key(False, "true: publish nothing unless every member passes validation"),
        "model_card": Key(True, "write README.md (model card) and pareto.png next to the manifest"),
        "reload_pid_file": Key(
            None, "after publishing, SIGHUP the server whose pid is in this file", str, True
        ),
        "reload_url": Key(None, "or POST here (e.g. http://127.0.0.1:8080/admin/reload)", str),
        "reload_timeout_s": Key(300.0, "how long the POST may take (the server warms the new zoo first)"),
    },
    "targets": {
        "largest_top1": Key(
            None, "the largest member's top-1 at least this (fraction; null = no target)", float
        ),
        "cheapest_top1": Key(None, "the cheapest member's top-1 at least this (fraction)", float),
        "min_members": Key(None, "at least this many members", int),
        "min_mflops_span": Key(
            None, "the largest member's MFLOPs at least this many times the cheapest's", float
        ),
        "plain_cnn_bar": Key(
            False, "every member at least as accurate as every plain-CNN baseline of equal or lower MFLOPs"
        ),
        "monotone": Key(False, "no member more than 0.2 points below a cheaper one"),
        "enforce": Key(False, "true: publish nothing when a target is missed or cannot be checked"),
    },
    "baselines": {
        "dir": Key(
            None,
            "runs of `alphanet train --baseline` (one directory each) for the card (null = none)",
            str,
            True,
        ),
    },
    "ablation": {
        "dir": Key(None, "results and run directories (null = <run_dir>/ablation)", str, True),
        "arms": Key(list(DISTILL_CHOICES), "loss.distill per arm (default of --arms)"),
        "seeds": Key([0], "seeds per arm (default of --seeds)"),
        "middle": Key(
            "mid", "the fixed middle sub-network: mid (median choice of every gene) or an arch spec"
        ),
    },
}


def load_pipeline_config(
    path: str | Path | None, overrides: Iterable[str] = (), values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults <- YAML file <- ``KEY=VALUE`` overrides <- typed ``values``; paths made absolute;
    validated."""
    return PIPELINE.load(path, overrides, values)


def source_kind(cfg: dict[str, Any]) -> str:
    """``train`` | ``checkpoint`` | ``official``."""
    source = cfg["source"]
    if source["train"]["config"] is not None:
        return "train"
    return "checkpoint" if source["checkpoint"] is not None else "official"


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
    check_overrides(source["train"]["overrides"], "source.train.overrides", LABEL)
    check_overrides(cfg["data_overrides"], "data_overrides", LABEL)
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
        check_overrides(search["overrides"], "family.search.overrides", LABEL)
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
    if cfg["export"]["opset"] < MIN_OPSET:
        raise UserError(f"pipeline config: export.opset must be >= {MIN_OPSET}")
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
    targets = cfg["targets"]
    for key in ("largest_top1", "cheapest_top1"):
        if targets[key] is not None and not 0.0 <= targets[key] <= 1.0:
            raise UserError(f"pipeline config: targets.{key} is a fraction in [0, 1], got {targets[key]}")
    if targets["min_members"] is not None and targets["min_members"] < 1:
        raise UserError("pipeline config: targets.min_members must be >= 1")
    if targets["min_mflops_span"] is not None and targets["min_mflops_span"] < 1:
        raise UserError("pipeline config: targets.min_mflops_span must be >= 1 (largest / cheapest MFLOPs)")
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


PIPELINE = Schema(LABEL, TREE, check=validate_pipeline_config, path_base=REPO_ROOT)
