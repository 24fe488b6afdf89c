"""Training configuration: the training `Schema` (every key, its default and comment), loading,
``KEY=VALUE`` overrides, validation, dumping.

A config file (``training/configs/*.yaml``, the same comments as below) is merged onto the
defaults; dotted ``KEY=VALUE`` overrides are applied last (`alphanet.settings`). Unknown keys and
values of the wrong type are `UserError`s that name the key. The resolved config is a plain nested
dict; `dump_config` writes it as YAML into the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import UserError
from .loss import DISTILL_CHOICES
from .settings import Key, Schema, flatten, get

TREE: dict[str, Any] = {
    "space": Key("fashion_mnist", "search space name (alphanet/spaces/<name>.yaml) or a YAML path"),
    "seed": Key(0, "arch sampling (same on every rank), init, data order, augmentation"),
    "baseline": Key(
        None, "set by `train --baseline FILE:NAME`: train that one network instead of the supernet", dict
    ),
    "data": {
        "dataset": Key(
            "fashion_mnist", "fashion_mnist (IDX files) | image_folder (root/<train_dir|val_dir>/<class>/*)"
        ),
        "root": Key("/usr/share/datasets/fashion-mnist", "directory of the dataset"),
        "train_dir": Key("train", "image_folder only: training sub-directory of root"),
        "val_dir": Key("val", "image_folder only: validation sub-directory of root"),
        "batch_size": Key(128, "per process; every subnet of a step sees this same batch"),
        "eval_batch_size": Key(500, "validation batch size"),
        "num_workers": Key(
            0, "loader worker processes (0 = load in the training process; at most the cores)"
        ),
        "max_train_samples": Key(None, "use only the first N training samples (smoke runs; null = all)", int),
        "max_val_samples": Key(None, "use only the first N validation samples (null = all)", int),
        "holdout_size": Key(
            0, "training images held out: never trained on; validation, search fitness, family picks"
        ),
        "holdout_seed": Key(0, "which training images are held out"),
    },
    "model": {
        "bn_eps": Key(1e-05, "BatchNorm epsilon"),
        "bn_momentum": Key(
            0.0, "0 = batch statistics only, running stats never updated (reference); recalibrate"
        ),
    },
    "train": {
        "epochs": Key(10, "length of the run (and of the cosine schedule)"),
        "num_random_subnets": Key(
            2, "random subnets per step between the largest and the smallest (sandwich rule)"
        ),
        "dropout": Key(0.2, "dropout before the classifier, largest subnet only"),
        "drop_connect": Key(
            0.2, "drop-connect base rate (block i: rate * i / total_blocks), largest subnet only"
        ),
        "drop_connect_only_last_two_stages": Key(True, "apply drop-connect only in mb6 and mb7 (reference)"),
        "grad_clip_value": Key(1.0, "element-wise gradient value clipping (0 = off)"),
    },
    "loss": {
        "distill": Key("alpha_divergence", "loss of the non-largest subnets: alpha_divergence | kl | none"),
        "alpha_min": Key(-1.0, "adaptive alpha-divergence: negative alpha"),
        "alpha_max": Key(1.0, "adaptive alpha-divergence: positive alpha"),
        "iw_clip": Key(5.0, "clip of the importance weights (p/q)^alpha"),
        "label_smoothing": Key(0.1, "label smoothing of the largest subnet's cross-entropy"),
        "distill_start_epochs": Key(
            0.0, "students learn from labels before this epoch (0 = distill from the start)"
        ),
        "distill_ramp_epochs": Key(
            0.0,
            "from distill_start_epochs, the students' loss moves linearly from labels to distillation"
            " over this many epochs (0 = switch at once)",
        ),
        "distill_weight": Key(
            1.0, "the students' share of distillation once ramped in (the rest: labels; 1 = reference)"
        ),
    },
    "optim": {
        "lr": Key(0.1, "base learning rate (Nesterov SGD)"),
        "scale_lr_by_batch": Key(True, "peak lr = lr * max(1, global_batch // lr_scale_batch)"),
        "lr_scale_batch": Key(256, "reference batch for the scaling rule above"),
        "momentum": Key(0.9, "SGD momentum"),
        "nesterov": Key(True, "Nesterov momentum"),
        "weight_decay": Key(1e-05, "on conv/linear weights; never on BN parameters or biases"),
        "warmup_epochs": Key(5.0, "linear warmup length in epochs (fractions allowed)"),
        "warmup_start_factor": Key(0.001, "warmup starts at lr * this"),
        "min_lr_factor": Key(0.0, "cosine decays to lr * this"),
    },
    "validation": {
        "every_epochs": Key(1, "validate every N epochs (and after the last); 0 = never"),
        "subnets": Key(["min", "max"], "arch names (min | max | named | arch file) validated each time"),
        "calib_batches": Key(64, "BN recalibration batches of training images (training augmentation)"),
        "calib_batch_size": Key(128, "BN recalibration batch size"),
        "max_batches": Key(None, "cap on validation batches (null = the whole split)", int),
    },
    "checkpoint": {
        "every_steps": Key(500, "checkpoints/last.pt every N steps (and at every epoch end)"),
        "keep_every_epochs": Key(0, "also keep checkpoints/epoch_XXX.pt every N epochs (0 = never)"),
    },
    "log": {
        "every_steps": Key(20, "metrics.jsonl record and progress line every N steps"),
    },
    "runtime": {
        "device": Key("auto", "auto (cuda if available) | cpu | cuda"),
        "threads": Key(0, "CPU threads per process (0 = cores / local processes)"),
        "channels_last": Key(True, "NHWC activations: ~2x faster depthwise convs on CPU"),
    },
}


def _positive(cfg: dict[str, Any], key: str, allow_zero: bool = False) -> None:
    node = get(cfg, key)
    if node is None:
        return
    if node < 0 or (node == 0 and not allow_zero):
        raise UserError(f"config: {key} must be {'>= 0' if allow_zero else '> 0'}, got {node}")


def validate_config(cfg: dict[str, Any]) -> None:
    """Range and choice checks beyond types (the space name is checked when it is loaded)."""
    for key in (
        "data.batch_size",
        "data.eval_batch_size",
        "train.epochs",
        "optim.lr",
        "optim.lr_scale_batch",
        "loss.iw_clip",
        "validation.calib_batches",
        "validation.calib_batch_size",
        "validation.max_batches",
        "data.max_train_samples",
        "data.max_val_samples",
        "checkpoint.every_steps",
        "log.every_steps",
    ):
        _positive(cfg, key)
    for key in (
        "data.num_workers",
        "train.num_random_subnets",
        "train.grad_clip_value",
        "optim.weight_decay",
        "optim.warmup_epochs",
        "loss.distill_start_epochs",
        "loss.distill_ramp_epochs",
        "validation.every_epochs",
        "checkpoint.keep_every_epochs",
        "runtime.threads",
        "model.bn_momentum",
    ):
        _positive(cfg, key, allow_zero=True)
    for key in ("train.dropout", "train.drop_connect", "loss.label_smoothing", "optim.min_lr_factor"):
        value = get(cfg, key)
        if not 0.0 <= value < 1.0:
            raise UserError(f"config: {key} must be in [0, 1), got {value}")
    if not 0.0 < cfg["optim"]["warmup_start_factor"] <= 1.0:
        raise UserError("config: optim.warmup_start_factor must be in (0, 1]")
    if not 0.0 < cfg["loss"]["distill_weight"] <= 1.0:
        raise UserError("config: loss.distill_weight must be in (0, 1]")
    if cfg["loss"]["distill"] not in DISTILL_CHOICES:
        raise UserError(f"config: loss.distill must be one of {', '.join(DISTILL_CHOICES)}")
    if cfg["loss"]["alpha_min"] > cfg["loss"]["alpha_max"]:
        raise UserError("config: loss.alpha_min must not exceed loss.alpha_max")
    if cfg["runtime"]["device"] not in ("auto", "cpu", "cuda"):
        raise UserError("config: runtime.device must be auto, cpu or cuda")
    if not cfg["validation"]["subnets"] or not all(isinstance(s, str) for s in cfg["validation"]["subnets"]):
        raise UserError("config: validation.subnets must be a non-empty list of arch names")


def dump_config(cfg: dict[str, Any], path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    tmp.replace(path)


TRAINING = Schema("config", TREE, check=validate_config)
DEFAULTS: dict[str, Any] = TRAINING.defaults()
DEFAULTS_FLAT = flatten(DEFAULTS)


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, YAML-parsed value)."""
    return TRAINING.parse_override(text)


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    return TRAINING.apply_overrides(cfg, overrides)


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file (optional) <- overrides; validated."""
    return TRAINING.load(path, overrides)


def config_from_dict(raw: dict[str, Any]) -> dict[str, Any]:
    """Resolve a stored config (e.g. from a checkpoint) onto the current defaults, validated."""
    return TRAINING.from_dict(raw)
