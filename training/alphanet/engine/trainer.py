"""Sandwich-rule supernet training with in-place distillation (reference §4).

Per step, on one shared batch:
1. the largest subnet, with dropout and drop-connect, is trained on label-smoothed CE;
2. its detached logits become the teacher; dropout and drop-connect are switched off;
3. ``train.num_random_subnets`` uniformly sampled subnets and the smallest subnet are each trained
   with the configured distillation loss (adaptive alpha-divergence, KL, or plain CE);
4. every loss is back-propagated immediately (gradients sum), gradients are clipped element-wise,
   then one Nesterov-SGD step and one per-iteration LR-schedule step.

Every rank samples the same subnets (a dedicated `random.Random` seeded with the run seed).
Checkpoints capture everything needed to resume bit-exactly: model, optimizer, scheduler, all RNG
states, the epoch and the position inside it. Per-epoch validation extracts each configured
subnet, recalibrates its BN statistics on training images and measures top-1/top-5.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from ..config import dump_config
from ..data import build_dataset, build_loader
from ..data.loader import holdout_settings
from ..checkpoint import CHECKPOINT_DIR, LAST
from ..distributed import all_reduce_mean, init_distributed
from ..logging_utils import MetricsWriter, Progress
from ..loss import build_distill_loss, label_smoothed_cross_entropy
from ..meters import MeterGroup
from ..models import AlphaNetSupernet, complexity
from ..optim import build_optimizer, build_scheduler
from ..space import load_space
from .bn_calibration import calibrate_bn
from .train_state import (  # noqa: F401 - TrainingDiverged and TrainResult are part of this API
    CheckpointedRun,
    StopFlag,
    TrainingDiverged,
    TrainResult,
    TrainState,
    set_threads,
)
from .evaluate import evaluate

log = logging.getLogger(__name__)


class SandwichTrainer(CheckpointedRun):
    def __init__(
        self,
        cfg: dict[str, Any],
        run_dir: str | Path,
        *,
        resume_state: dict[str, Any] | None = None,
        max_steps: int | None = None,
        time_limit_min: float | None = None,
        progress: bool = True,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.max_steps = max_steps
        self.time_limit_s = None if time_limit_min is None else time_limit_min * 60.0
        self.dist = init_distributed(cfg["runtime"]["device"])
        self.device = self.dist.device
        set_threads(cfg, self.dist)
        seed = int(cfg["seed"])
        # Same initial weights on every rank; then per-rank streams for dropout / drop-connect.
        torch.manual_seed(seed)
        self.space = load_space(cfg["space"])
        train_set = build_dataset(cfg, "train")
        self.classes = list(train_set.classes)
        self.num_classes = len(self.classes)
        if self.num_classes != self.space.num_classes:
            log.warning(
                "dataset has %d classes, space '%s' declares %d: the classifier uses %d",
                self.num_classes,
                self.space.name,
                self.space.num_classes,
                self.num_classes,
            )
        net = self.build_network()
        self.memory_format = (
            torch.channels_last if cfg["runtime"]["channels_last"] else torch.contiguous_format
        )
        self.net = net.to(self.device, memory_format=self.memory_format)
        self.arch_rng = random.Random(seed)
        torch.manual_seed(seed + self.dist.rank)
        random.seed(seed + self.dist.rank)
        np.random.seed((seed + self.dist.rank) % 2**32)

        data = cfg["data"]
        world, rank = self.dist.world_size, self.dist.rank
        self.train_loader = build_loader(cfg, "train", rank=rank, world_size=world, dataset=train_set)
        self.batch_size = int(data["batch_size"])
        self.steps_per_epoch = self.train_loader.sampler.per_rank // self.batch_size
        self.distill_start_step = round(cfg["loss"]["distill_start_epochs"] * self.steps_per_epoch)
        self.distill_ramp_steps = round(cfg["loss"]["distill_ramp_epochs"] * self.steps_per_epoch)
        self.distill_share = float(cfg["loss"]["distill_weight"])
        # Validation during training reads the held-out training images when there are some: the
        # reported evaluation split must not steer training decisions (epochs, recipe, early stop).
        self.val_split = "holdout" if holdout_settings(cfg)[0] > 0 else "val"
        self.val_loader = build_loader(
            cfg,
            "val",
            rank=rank,
            world_size=world,
            drop_last=False,
            dataset=build_dataset(cfg, self.val_split),
        )
        self.calib_loader = build_loader(
            cfg,
            "train",
            batch_size=cfg["validation"]["calib_batch_size"],
            rank=rank,
            world_size=world,
            dataset=train_set,
            drop_last=False,
        )
        self.epochs = int(cfg["train"]["epochs"])
        self.optimizer = build_optimizer(self.net, cfg["optim"], self.batch_size * world)
        self.scheduler = build_scheduler(self.optimizer, cfg["optim"], self.steps_per_epoch, self.epochs)
        self.distill_loss = build_distill_loss(cfg["loss"])
        # Before loss.distill_start_epochs the students learn from the labels (as distill=none): an
        # untrained teacher's logits carry no signal, and on short schedules distilling from them
        # costs the whole family accuracy. 0 (the default) is the reference: distill from step 0.
        # loss.distill_ramp_epochs then blends the two losses, up to loss.distill_weight: switching
        # at once to distillation alone drops the teacher's own training accuracy through the
        # shared weights (docs/fashion-mnist-recipe.md, the ablation).
        self.label_loss = build_distill_loss({**cfg["loss"], "distill": "none"})
        self.state = TrainState()
        if resume_state is not None:
            self._restore(resume_state)
        # --max-steps counts the steps of this invocation, so chunks of a resumed run add up.
        self.stop_at_step = None if max_steps is None else self.state.step + max_steps
        self.model: nn.Module = self.net
        if self.dist.distributed:
            # Different subnets use different parameters, hence find_unused_parameters. With BN
            # momentum 0 the running statistics never change, so buffers need no broadcast.
            self.model = DistributedDataParallel(
                self.net,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
                broadcast_buffers=cfg["model"]["bn_momentum"] != 0.0,
            )
        self.is_main = self.dist.is_main
        self.metrics = MetricsWriter(self.run_dir / "metrics.jsonl" if self.is_main else None)
        self.progress = Progress(
            self.steps_per_epoch, cfg["log"]["every_steps"], enabled=progress and self.is_main
        )
        self.stop = StopFlag()
        self._saved_at_step: int | None = None

    def build_network(self) -> nn.Module:
        """The network this trainer trains (here the supernet; `StandaloneTrainer` a fixed one)."""
        return AlphaNetSupernet(
            self.space,
            self.num_classes,
            bn_eps=self.cfg["model"]["bn_eps"],
            bn_momentum=self.cfg["model"]["bn_momentum"],
        )

    def cost_record(self) -> dict[str, float]:
        """MFLOPs logged in the run's start record."""
        return {
            "mflops_min": complexity(self.space, self.space.min_arch(), self.num_classes).mflops,
            "mflops_max": complexity(self.space, self.space.max_arch(), self.num_classes).mflops,
        }

    @staticmethod
    def progress_info(values: dict[str, float]) -> str:
        return f"loss_max {values['loss_max']:.3f} loss_min {values['loss_min']:.3f}"

    def distill_weight(self, step: int) -> float:
        """Share of the distillation loss in the students' loss at ``step`` (the rest: labels)."""
        if step < self.distill_start_step:
            return 0.0
        if step >= self.distill_start_step + self.distill_ramp_steps:
            return self.distill_share
        return self.distill_share * (step - self.distill_start_step) / self.distill_ramp_steps

    # ---- one sandwich step -------------------------------------------------------------------
    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        cfg_train = self.cfg["train"]
        net, model = self.net, self.model
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses: dict[str, torch.Tensor] = {}

        net.set_active(self.space.max_arch())
        net.set_dropout(cfg_train["dropout"])
        net.set_drop_connect(cfg_train["drop_connect"], cfg_train["drop_connect_only_last_two_stages"])
        logits = model(images)
        loss = label_smoothed_cross_entropy(logits, labels, self.cfg["loss"]["label_smoothing"])
        loss.backward()
        losses["loss_max"] = loss.detach()
        teacher = logits.detach().clone()
        acc_max = (teacher.argmax(1) == labels).float().mean()
        net.set_dropout(0.0)
        net.set_drop_connect(0.0)

        archs = [self.space.sample(self.arch_rng) for _ in range(cfg_train["num_random_subnets"])]
        names = [f"loss_random_{i + 1}" for i in range(len(archs))]
        archs.append(self.space.min_arch())
        names.append("loss_min")
        weight = self.distill_weight(self.state.step)
        for name, arch in zip(names, archs):
            net.set_active(arch)
            logits = model(images)
            if weight == 0.0:
                loss = self.label_loss(logits, teacher, labels)
            elif weight == 1.0:
                loss = self.distill_loss(logits, teacher, labels)
            else:
                loss = (1.0 - weight) * self.label_loss(logits, teacher, labels) + weight * self.distill_loss(
                    logits, teacher, labels
                )
            loss.backward()
            losses[name] = loss.detach()
        divergence = getattr(self.distill_loss, "last_divergence", None) if weight > 0.0 else None

        if cfg_train["grad_clip_value"] > 0:
            torch.nn.utils.clip_grad_value_(net.parameters(), cfg_train["grad_clip_value"])
        self.optimizer.step()
        self.scheduler.step()
        # Logged figures are the mean over ranks (each rank saw a different shard of the batch).
        values = all_reduce_mean(torch.stack(list(losses.values()) + [acc_max]).float()).cpu().tolist()
        out = dict(zip(list(losses) + ["acc_max"], values))
        if divergence is not None:
            out["divergence_min"] = float(divergence)
        if not all(math.isfinite(v) for v in out.values()):
            raise TrainingDiverged(
                f"non-finite loss at step {self.state.step + 1}: {out} (last checkpoint kept; "
                "try a lower optim.lr, loss.distill=kl, or check the data)"
            )
        return out

    # ---- validation ------------------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        vcfg = self.cfg["validation"]
        results: dict[str, Any] = {}
        devices = [self.device.index] if self.device.type == "cuda" else []
        # Validation must not perturb the training RNG streams (exact resume).
        with torch.random.fork_rng(devices=devices):
            for name in vcfg["subnets"]:
                arch = self.space.resolve(name)
                subnet = self.net.extract(arch).to(memory_format=self.memory_format)
                channels_last = self.memory_format == torch.channels_last
                calibrate_bn(subnet, self.calib_loader, vcfg["calib_batches"], channels_last=channels_last)
                acc = evaluate(subnet, self.val_loader, vcfg["max_batches"], channels_last=channels_last)
                cost = complexity(self.space, arch, self.num_classes)
                results[name] = {**acc, "mflops": round(cost.mflops, 4), "params": cost.params}
                del subnet
        self.net.set_active(self.space.max_arch())
        return results

    # ---- main loop ---------------------------------------------------------------------------
    def _should_stop(self, started: float) -> str | None:
        reason = None
        if self.stop_at_step is not None and self.state.step >= self.stop_at_step:
            reason = "max_steps"
        elif self.time_limit_s is not None and time.monotonic() - started >= self.time_limit_s:
            reason = "time_limit"
        elif self.stop.requested:
            reason = "signal"
        if self.dist.distributed:
            # Ranks must agree (clocks and signals differ); any rank stopping stops all.
            codes = {None: 0, "max_steps": 1, "time_limit": 2, "signal": 3}
            flag = torch.tensor([codes[reason]], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            reason = {v: k for k, v in codes.items()}[int(flag.item())]
        return reason

    def _log_window(self, meters: MeterGroup, window_start: float, window_steps: int) -> None:
        elapsed = time.monotonic() - window_start
        record = {
            "type": "step",
            "step": self.state.step,
            "epoch": self.state.epoch,
            "epoch_step": self.state.epoch_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            **{k: round(v, 6) for k, v in meters.averages().items()},
            "seconds_per_step": round(elapsed / max(1, window_steps), 4),
            "images_per_second": round(
                window_steps * self.batch_size * self.dist.world_size / max(elapsed, 1e-9), 2
            ),
        }
        self.metrics.write(record)

    def train(self) -> TrainResult:
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_config(cfg, self.run_dir / "config.yaml")
            self.metrics.write(
                {
                    "type": "start",
                    "step": self.state.step,
                    "epoch": self.state.epoch,
                    "world_size": self.dist.world_size,
                    "device": str(self.device),
                    "steps_per_epoch": self.steps_per_epoch,
                    "epochs": self.epochs,
                    "global_batch": self.batch_size * self.dist.world_size,
                    "peak_lr": self.scheduler.base_lrs[0],
                    **self.cost_record(),
                }
            )
        self.stop.install()
        started = time.monotonic()
        status = "completed"
        every_ckpt, every_log = cfg["checkpoint"]["every_steps"], cfg["log"]["every_steps"]
        try:
            stop_reason = self._should_stop(started)
            while stop_reason is None and self.state.epoch < self.epochs:
                stop_reason = self._run_epoch(started, every_ckpt, every_log)
            if stop_reason is not None:
                status = stop_reason
        finally:
            self.stop.restore()
            self.progress.close()
        path = self.run_dir / CHECKPOINT_DIR / LAST
        if self._saved_at_step != self.state.step:  # same decision on every rank (save() has a barrier)
            path = self.save()
        summary = {
            "type": "end",
            "status": status,
            "step": self.state.step,
            "epoch": self.state.epoch,
            "validation": self.state.last_validation,
            "seconds": round(time.monotonic() - started, 2),
        }
        self.metrics.write(summary)
        return TrainResult(status, self.state.step, self.state.epoch, path, self.state.last_validation)

    def _run_epoch(self, started: float, every_ckpt: int, every_log: int) -> str | None:
        sampler = self.train_loader.sampler
        sampler.set_epoch(self.state.epoch)
        sampler.skip(self.state.epoch_step * self.batch_size)
        epoch_meters, window = MeterGroup(), MeterGroup()
        epoch_start = window_start = time.monotonic()
        window_steps = 0
        self.progress.begin(self.state.epoch, self.state.epoch_step)
        for images, labels in self.train_loader:
            images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
            labels = labels.to(self.device, non_blocking=True)
            values = self.train_step(images, labels)
            self.state.step += 1
            self.state.epoch_step += 1
            window_steps += 1
            epoch_meters.update(values)
            window.update(values)
            self.progress.update(self.state.epoch_step, self.progress_info(values))
            if self.state.step % every_log == 0:
                self._log_window(window, window_start, window_steps)
                window.reset()
                window_start, window_steps = time.monotonic(), 0
            if self.state.epoch_step >= self.steps_per_epoch:
                break
            if self.state.step % every_ckpt == 0:
                self.save()
            reason = self._should_stop(started)
            if reason is not None:
                return reason
        epoch_time = time.monotonic() - epoch_start
        self.state.epoch += 1
        self.state.epoch_step = 0
        record: dict[str, Any] = {
            "type": "epoch",
            "epoch": self.state.epoch,
            "step": self.state.step,
            "epoch_seconds": round(epoch_time, 2),
            **{f"train_{k}": round(v, 6) for k, v in epoch_meters.averages().items()},
        }
        every_val = self.cfg["validation"]["every_epochs"]
        if every_val and (self.state.epoch % every_val == 0 or self.state.epoch == self.epochs):
            val_start = time.monotonic()
            self.state.last_validation = self.validate()
            record["validation"] = self.state.last_validation
            record["validation_seconds"] = round(time.monotonic() - val_start, 2)
            record["validation_split"] = self.val_split
            if self.is_main:
                summary = ", ".join(
                    f"{k} top1 {v['top1']:.4f}" for k, v in self.state.last_validation.items()
                )
                log.info("epoch %d: %s", self.state.epoch, summary)
        keep = self.cfg["checkpoint"]["keep_every_epochs"]
        extra = f"epoch_{self.state.epoch:03d}.pt" if keep and self.state.epoch % keep == 0 else None
        self.save(extra)
        self.metrics.write(record)
        return self._should_stop(started)


def train(cfg: dict[str, Any], run_dir: str | Path, **options: Any) -> TrainResult:
    """Train a supernet per ``cfg`` into ``run_dir``; with ``cfg["baseline"]`` set, the fixed
    network it names (`StandaloneTrainer`). ``options``: those of `SandwichTrainer` (resume_state,
    max_steps, time_limit_min, progress)."""
    from .standalone import StandaloneTrainer

    trainer_class = StandaloneTrainer if cfg.get("baseline") else SandwichTrainer
    return trainer_class(cfg, run_dir, **options).train()
