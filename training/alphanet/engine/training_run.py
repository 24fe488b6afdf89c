"""What a ``train`` invocation runs: a new run from a config file, or a resumed one from a
checkpoint (its stored config, optionally replaced by a config file, plus overrides), and where.
The ``train`` command and tests call `plan_training_run`; `engine.trainer.train` then runs it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..checkpoint import CHECKPOINT_DIR, LAST, load_checkpoint
from ..config import apply_overrides, config_from_dict, load_config
from ..errors import UserError
from ..settings import read_yaml


@dataclass
class TrainingRun:
    cfg: dict[str, Any]
    run_dir: Path
    resume_state: dict[str, Any] | None = None
    changed_keys: list[str] = field(default_factory=list)  # resumed: config keys that differ


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def run_dir_of_checkpoint(path: Path) -> Path:
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent


def load_baseline(spec: str) -> dict[str, Any]:
    """``FILE:NAME`` -> that entry of the file's ``baselines`` mapping, with its name."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise UserError(f"--baseline must be FILE:NAME, got '{spec}'")
    if not Path(path).is_file():
        raise UserError(f"--baseline: no such file {path}")
    document = read_yaml(Path(path), "baselines")
    entries = document.get("baselines") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise UserError(f"--baseline: {path} has no 'baselines' mapping")
    if name not in entries:
        raise UserError(f"--baseline: {path} has no baseline '{name}' (known: {', '.join(entries)})")
    return {"name": name, **entries[name]}


def plan_training_run(
    config: str | Path | None,
    run_dir: str | Path | None,
    resume: str | Path | None,
    overrides: Iterable[str] = (),
    baseline: dict[str, Any] | None = None,
) -> TrainingRun:
    """The config, run directory and checkpoint state of a ``train`` invocation.

    ``resume``: a checkpoint file or run directory, ``"auto"`` (the run directory's checkpoint if
    there is one, else a new run from ``config``) or None (a new run; ``run_dir`` must not hold one).
    A resumed run keeps its stored config (and baseline) unless ``config``/``baseline`` replace it.
    """
    overrides = list(overrides)
    if resume == "auto":
        if not run_dir:
            raise UserError("--resume auto needs --run-dir")
        candidate = Path(run_dir) / CHECKPOINT_DIR / LAST
        resume = str(candidate) if candidate.is_file() else None
        if resume is None and not config:
            raise UserError(f"--resume auto: no checkpoint in {run_dir} and no --config to start from")
    if resume is not None:
        state = load_checkpoint(resume)
        stored = config_from_dict(state["config"])
        cfg = apply_overrides(load_config(config) if config else stored, overrides)
        if baseline or stored.get("baseline"):
            cfg["baseline"] = baseline or stored["baseline"]
        directory = Path(run_dir) if run_dir else run_dir_of_checkpoint(Path(resume))
        return TrainingRun(cfg, directory, state, changed_keys(stored, cfg))
    if not config:
        raise UserError("--config is required (or --resume a checkpoint / run directory)")
    cfg = load_config(config, overrides)
    if baseline:
        cfg["baseline"] = baseline
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = Path(run_dir) if run_dir else Path("runs") / f"{Path(config).stem}-{stamp}"
    if (directory / CHECKPOINT_DIR / LAST).exists():
        raise UserError(f"{directory} already holds a run; use --resume {directory} or another --run-dir")
    return TrainingRun(cfg, directory)
