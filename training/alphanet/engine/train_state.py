"""What a training run keeps between steps and across restarts: its position (`TrainState`), the
checkpoint it writes and restores (`CheckpointedRun`, the trainers' base), how it ends
(`TrainResult`, `TrainingDiverged`) and how it is asked to stop (`StopFlag`)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (
    CHECKPOINT_DIR,
    FORMAT_VERSION,
    LAST,
    capture_rng_state,
    restore_rng_state,
    save_checkpoint,
)
from ..distributed import DistInfo, barrier
from ..errors import UserError


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the last checkpoint is left untouched."""


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    last_validation: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    status: str  # "completed" | "max_steps" | "time_limit" | "signal"
    step: int
    epoch: int
    checkpoint: Path | None
    validation: dict[str, Any]


class StopFlag:
    """SIGTERM / SIGINT ask the loop to checkpoint and stop at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass

    def _handle(self, signum, frame) -> None:
        if self.requested:  # second signal: give up immediately
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def set_threads(cfg: dict[str, Any], dist_info: DistInfo) -> None:
    if dist_info.device.type != "cpu":
        return
    threads = cfg["runtime"]["threads"]
    if threads == 0:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(dist_info.world_size)))
        threads = max(1, (os.cpu_count() or 1) // max(1, local_world))
    torch.set_num_threads(threads)


class CheckpointedRun:
    """Checkpoint writing and exact restoring for a trainer (which owns ``net``, ``optimizer``,
    ``scheduler``, ``arch_rng``, ``state``, ``cfg``, ``space``, ``classes`` and ``dist``)."""

    def _restore(self, state: dict[str, Any]) -> None:
        if state["space"] != self.space.name:
            raise UserError(
                f"checkpoint was trained on space '{state['space']}', config says '{self.space.name}'"
            )
        if state["num_classes"] != self.num_classes:
            raise UserError(f"checkpoint has {state['num_classes']} classes, the dataset {self.num_classes}")
        self.net.load_state_dict(state["model"])
        self._restore_optimizer_and_schedule(state["optimizer"], state["scheduler"])
        restore_rng_state(state["rng"], self.arch_rng)
        self.state = TrainState(
            step=state["step"],
            epoch=state["epoch"],
            epoch_step=state["epoch_step"],
            last_validation=state.get("validation", {}),
        )
        if self.state.epoch_step > self.steps_per_epoch:
            raise UserError(
                "checkpoint position is beyond the epoch length (batch size or world size changed?)"
            )

    def _restore_optimizer_and_schedule(self, optimizer_state: dict, scheduler_state: dict) -> None:
        """Restore momentum buffers and the schedule position; hyperparameters and the schedule's
        shape come from the current config, so a resumed run may extend ``train.epochs`` or change
        ``optim.*`` (with an unchanged config this reproduces the interrupted run bit for bit)."""
        hyper = ("weight_decay", "momentum", "nesterov", "dampening")
        fresh_groups = [{k: g[k] for k in hyper if k in g} for g in self.optimizer.param_groups]
        schedules = [dict(fn.__dict__) for fn in self.scheduler.lr_lambdas]
        base_lrs = list(self.scheduler.base_lrs)
        self.optimizer.load_state_dict(optimizer_state)
        self._match_optimizer_state_layout()
        self.scheduler.load_state_dict(scheduler_state)
        position = self.scheduler.last_epoch
        for fn, attrs in zip(self.scheduler.lr_lambdas, schedules):
            fn.__dict__.update(attrs)
        self.scheduler.base_lrs = base_lrs
        for group, fresh, base, fn in zip(
            self.optimizer.param_groups, fresh_groups, base_lrs, self.scheduler.lr_lambdas
        ):
            group.update(fresh)
            group["initial_lr"] = base
            group["lr"] = base * fn(position)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _match_optimizer_state_layout(self) -> None:
        # Loaded momentum buffers come back contiguous; give them their parameter's layout so a
        # resumed run computes with the same memory format as an uninterrupted one.
        for param, slots in self.optimizer.state.items():
            for key, value in slots.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.dim() == 4:
                    slots[key] = value.contiguous(memory_format=self.memory_format)

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.state.step,
            "epoch": self.state.epoch,
            "epoch_step": self.state.epoch_step,
            "rng": capture_rng_state(self.arch_rng),
            "config": self.cfg,
            "space": self.space.name,
            "num_classes": self.num_classes,
            "classes": self.classes,
            "world_size": self.dist.world_size,
            "validation": self.state.last_validation,
        }

    def save(self, extra_name: str | None = None) -> Path:
        path = self.run_dir / CHECKPOINT_DIR / LAST
        self._saved_at_step = self.state.step
        if self.is_main:
            state = self.checkpoint_state()
            save_checkpoint(path, state)
            if extra_name:
                save_checkpoint(path.with_name(extra_name), state)
        barrier()
        return path
