"""Checkpoints: atomic writes, clear errors, run-directory resolution, supernet loading, RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from alphanet.checkpoint import (
    FORMAT_VERSION,
    capture_rng_state,
    load_checkpoint,
    load_supernet,
    resolve_checkpoint_path,
    restore_rng_state,
    save_checkpoint,
)
from alphanet.config import DEFAULTS
from alphanet.errors import UserError
from alphanet.models import AlphaNetSupernet
from alphanet.space import load_space


def _state(model, space_name="fashion_mnist"):
    return {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "config": dict(DEFAULTS, space=space_name),
        "space": space_name,
        "num_classes": 10,
    }


def test_save_is_atomic_and_round_trips(tmp_path):
    model = AlphaNetSupernet(load_space("fashion_mnist"))
    path = save_checkpoint(tmp_path / "checkpoints" / "last.pt", _state(model))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind
    loaded = load_checkpoint(path)
    assert loaded["space"] == "fashion_mnist"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    # Overwriting keeps a complete file at every moment (replace, not truncate-and-write).
    save_checkpoint(path, dict(_state(model), step=5))
    assert load_checkpoint(path)["step"] == 5


def test_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", {"format_version": 1, "model": {}, "step": 1})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"format_version": 1, "model": {}, "step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an alphanet training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"model": {}, "format_version": FORMAT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(UserError, match="newer than supported"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(UserError, match="no checkpoint in run directory"):
        resolve_checkpoint_path(tmp_path)


def test_run_directory_resolves_to_last(tmp_path):
    save_checkpoint(tmp_path / "checkpoints" / "last.pt", {"format_version": 1, "model": {}})
    assert resolve_checkpoint_path(tmp_path) == tmp_path / "checkpoints" / "last.pt"
    assert load_checkpoint(tmp_path)["model"] == {}


def test_load_supernet(tmp_path):
    space = load_space("fashion_mnist")
    torch.manual_seed(3)
    model = AlphaNetSupernet(space)
    save_checkpoint(tmp_path / "last.pt", _state(model))
    loaded, cfg = load_supernet(tmp_path / "last.pt")
    assert isinstance(loaded, AlphaNetSupernet) and cfg["space"] == "fashion_mnist"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_rng_state_capture_and_restore():
    arch_rng = random.Random(7)
    state = capture_rng_state(arch_rng)
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), arch_rng.random())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    arch_rng.seed(123)
    restore_rng_state(state, arch_rng)
    assert (random.random(), np.random.rand(), torch.rand(1).item(), arch_rng.random()) == expected
