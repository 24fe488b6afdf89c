"""Training configuration: defaults, YAML loading, ``KEY=VALUE`` overrides, validation, dumping.

A config file (``training/configs/*.yaml``) is merged onto `DEFAULTS`; dotted ``KEY=VALUE``
overrides (values parsed as YAML: ``0.1``, ``true``, ``null``, ``[min, max]``) are applied last.
Unknown keys and values of the wrong type are `UserError`s that name the key. The resolved config
is a plain nested dict; `dump_config` writes it as YAML into the run directory.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import UserError
from .loss import DISTILL_CHOICES

# Every key with its default. The YAML files under training/configs/ document each key.
DEFAULTS: dict[str, Any] = {
    "space": "fashion_mnist",
    "seed": 0,
    # A fixed network trained alone instead of the supernet (`train --baseline`), else null.
    "baseline": None,
    "data": {
        "dataset": "fashion_mnist",
        "root": "/usr/share/datasets/fashion-mnist",
        "train_dir": "train",
        "val_dir": "val",
        "batch_size": 128,
        "eval_batch_size": 500,
        "num_workers": 0,
        "max_train_samples": None,
        "max_val_samples": None,
        "holdout_size": 0,
        "holdout_seed": 0,
    },
    "model": {"bn_eps": 1.0e-5, "bn_momentum": 0.0},
    "train": {
        "epochs": 10,
        "num_random_subnets": 2,
        "dropout": 0.2,
        "drop_connect": 0.2,
        "drop_connect_only_last_two_stages": True,
        "grad_clip_value": 1.0,
    },
    "loss": {
        "distill": "alpha_divergence",
        "alpha_min": -1.0,
        "alpha_max": 1.0,
        "iw_clip": 5.0,
        "label_smoothing": 0.1,
        "distill_start_epochs": 0.0,
    },
    "optim": {
        "lr": 0.1,
        "scale_lr_by_batch": True,
        "lr_scale_batch": 256,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1.0e-5,
        "warmup_epochs": 5.0,
        "warmup_start_factor": 0.001,
        "min_lr_factor": 0.0,
    },
    "validation": {
        "every_epochs": 1,
        "subnets": ["min", "max"],
        "calib_batches": 64,
        "calib_batch_size": 128,
        "max_batches": None,
    },
    "checkpoint": {"every_steps": 500, "keep_every_epochs": 0},
    "log": {"every_steps": 20},
    "runtime": {"device": "auto", "threads": 0, "channels_last": True},
}

# Keys whose value may be null (their default), with the type of a non-null value.
NULLABLE: dict[str, type] = {
    "validation.max_batches": int,
    "data.max_train_samples": int,
    "data.max_val_samples": int,
    "baseline": dict,
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _check_value(key: str, default: Any, value: Any) -> Any:
    if value is None:
        if key in NULLABLE:
            return None
        raise UserError(f"config: {key} must not be null")
    if default is None:
        default = NULLABLE[key]()
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"config: {key} must be a boolean, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config: {key} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"config: {key} must be an integer, got {value!r}")
        return value
    if not isinstance(value, type(default)):
        raise UserError(f"config: {key} must be {_type_name(default)}, got {value!r}")
    return value


def _merge(base: dict[str, Any], update: dict[str, Any], prefix: str = "") -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise UserError(f"config: unknown key '{dotted}'")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config: '{dotted}' must be a mapping, got {value!r}")
            _merge(base[key], value, dotted + ".")
        else:
            base[key] = _check_value(dotted, DEFAULTS_FLAT.get(dotted), value)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections -> ``{"section.key": value}`` (shared by every config loader)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


DEFAULTS_FLAT = flatten(DEFAULTS)


def parse_override(text: str) -> tuple[str, Any]:
    """``a.b=value`` -> (``a.b``, YAML-parsed value)."""
    if "=" not in text:
        raise UserError(f"override '{text}' is not KEY=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key not in DEFAULTS_FLAT:
        raise UserError(f"config: unknown key '{key}' in override '{text}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        key, value = parse_override(text)
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = _check_value(key, DEFAULTS_FLAT[key], value)
    validate_config(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- YAML file (optional) <- overrides; validated."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot parse config {path}: {exc}") from None
        if raw is not None:
            if not isinstance(raw, dict):
                raise UserError(f"config {path}: top level must be a mapping")
            _merge(cfg, raw)
    return apply_overrides(cfg, overrides)


def config_from_dict(raw: dict[str, Any]) -> dict[str, Any]:
    """Resolve a stored config (e.g. from a checkpoint) onto the current defaults, validated."""
    cfg = copy.deepcopy(DEFAULTS)
    _merge(cfg, raw)
    validate_config(cfg)
    return cfg


def _positive(cfg: dict[str, Any], key: str, allow_zero: bool = False) -> None:
    node = _get(cfg, key)
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
        "validation.every_epochs",
        "checkpoint.keep_every_epochs",
        "runtime.threads",
        "model.bn_momentum",
    ):
        _positive(cfg, key, allow_zero=True)
    for key in ("train.dropout", "train.drop_connect", "loss.label_smoothing", "optim.min_lr_factor"):
        value = _get(cfg, key)
        if not 0.0 <= value < 1.0:
            raise UserError(f"config: {key} must be in [0, 1), got {value}")
    if not 0.0 < cfg["optim"]["warmup_start_factor"] <= 1.0:
        raise UserError("config: optim.warmup_start_factor must be in (0, 1]")
    if cfg["loss"]["distill"] not in DISTILL_CHOICES:
        raise UserError(f"config: loss.distill must be one of {', '.join(DISTILL_CHOICES)}")
    if cfg["loss"]["alpha_min"] > cfg["loss"]["alpha_max"]:
        raise UserError("config: loss.alpha_min must not exceed loss.alpha_max")
    if cfg["runtime"]["device"] not in ("auto", "cpu", "cuda"):
        raise UserError("config: runtime.device must be auto, cpu or cuda")
    if not cfg["validation"]["subnets"] or not all(isinstance(s, str) for s in cfg["validation"]["subnets"]):
        raise UserError("config: validation.subnets must be a non-empty list of arch names")


def _get(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def dump_config(cfg: dict[str, Any], path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    tmp.replace(path)
