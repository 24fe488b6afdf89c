"""Checkpoints: atomic save, load, RNG state capture/restore, and supernet loading for later stages.

A checkpoint is a dict with keys ``model`` (supernet state_dict), ``optimizer``, ``scheduler``,
``step`` (optimizer steps done), ``epoch`` (current epoch, 0-based), ``epoch_step`` (batches of
that epoch already done), ``rng`` (python/numpy/torch/cuda/arch-sampler states), ``config``
(resolved training config), ``space`` (space name), ``num_classes``, ``classes`` (label names)
and ``format_version``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UserError

FORMAT_VERSION = 1
LAST = "last.pt"
CHECKPOINT_DIR = "checkpoints"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same directory + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (-> ``checkpoints/last.pt``)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / CHECKPOINT_DIR / LAST, path / LAST):
            if candidate.is_file():
                return candidate
        raise UserError(f"no checkpoint in run directory {path} (expected {CHECKPOINT_DIR}/{LAST})")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = resolve_checkpoint_path(path)
    try:
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
        except TypeError:  # torch < 1.13 has no weights_only
            state = torch.load(path, map_location=map_location)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or "model" not in state or "format_version" not in state:
        raise UserError(f"{path} is not an alphanet training checkpoint")
    if state["format_version"] > FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format {state['format_version']} is newer than supported")
    return state


def load_supernet(path: str | Path, map_location: str | torch.device = "cpu"):
    """(AlphaNetSupernet with the checkpoint's weights, resolved training config dict)."""
    from .models import AlphaNetSupernet
    from .space import load_space

    state = load_checkpoint(path, map_location)
    cfg = state["config"]
    # The config holds the space as it was given (a bundled name or a YAML path); "space" is its name.
    space = load_space(cfg.get("space", state["space"]))
    model = AlphaNetSupernet(
        space, state["num_classes"], bn_eps=cfg["model"]["bn_eps"], bn_momentum=cfg["model"]["bn_momentum"]
    )
    model.load_state_dict(state["model"])
    return model.to(map_location), cfg


def capture_rng_state(arch_rng: random.Random | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if arch_rng is not None:
        state["arch_sampler"] = arch_rng.getstate()
    return state


def restore_rng_state(state: dict[str, Any], arch_rng: random.Random | None = None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if arch_rng is not None and "arch_sampler" in state:
        arch_rng.setstate(state["arch_sampler"])
