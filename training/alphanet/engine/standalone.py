"""Standalone training of one fixed network: the baselines a published family is compared with.

Same data, augmentation, optimizer, LR schedule, label smoothing, gradient clipping, epochs,
checkpoints, exact resume and held-out validation as the supernet (it *is* the sandwich trainer
with the sandwich replaced by one ordinary step), so a family member and a baseline of the same
cost differ only in how their weights were obtained. ``cfg["baseline"]`` names the network:

* ``{kind: arch, arch: min | max | <named arch> | <arch file>}`` -- that sub-network of the space,
  trained alone from scratch (initialised as the supernet is: last BN of every block zeroed);
  with ``init: <supernet checkpoint>`` it starts instead from the weights the sub-network inherits
  from that supernet (fine-tuning an extracted member; a relative path is taken from the
  repository root, as the pipeline's paths are);
* ``{kind: plain_cnn, stages: [[w, ...], ...], fc: n}`` -- a conv3x3-BN-ReLU / max-pool CNN.

BatchNorm keeps running statistics (momentum 0.1), so evaluation needs no recalibration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data import build_loader
from ..checkpoint import load_supernet
from ..errors import UserError
from ..loss import label_smoothed_cross_entropy
from ..models import StaticAlphaNet, complexity
from ..models.complexity import Complexity
from ..models.plain_cnn import PlainCNN, PlainCNNConfig, plain_cnn_complexity
from ..distributed import all_reduce_mean
from ..paths import REPO_ROOT, repo_path
from ..settings import resolve_path
from .evaluate import evaluate
from .subnet_data import dataset_name, eval_split_name
from .trainer import SandwichTrainer, TrainingDiverged, TrainResult

RESULT_FILE = "baseline.json"

BASELINE_KINDS = ("arch", "plain_cnn")


def baseline_network(cfg: dict[str, Any], space, num_classes: int) -> tuple[nn.Module, Complexity, dict]:
    """(untrained network, its cost, a JSON description) for ``cfg["baseline"]``."""
    spec = cfg.get("baseline") or {}
    kind = spec.get("kind")
    if kind == "arch":
        arch = space.resolve(str(spec.get("arch")))
        description = {"kind": kind, "arch": arch.to_dict()}
        if spec.get("init"):
            checkpoint = resolve_path(str(spec["init"]), REPO_ROOT)
            net = inherited_network(checkpoint, space, arch, num_classes)
            description["init"] = repo_path(checkpoint)
        else:
            net = StaticAlphaNet(space, arch, num_classes)
            for blocks in net.stages:
                for block in blocks:
                    nn.init.zeros_(block.project.bn.weight)
        return net, complexity(space, arch, num_classes), description
    if kind == "plain_cnn":
        size = int(space.data["input_size"])
        config = PlainCNNConfig.from_dict(spec, space.in_channels, num_classes, size)
        return PlainCNN(config), plain_cnn_complexity(config), {"kind": kind, **config.to_dict()}
    raise UserError(f"baseline.kind must be one of {', '.join(BASELINE_KINDS)}, got {kind!r}")


def inherited_network(checkpoint: Path, space, arch, num_classes: int) -> nn.Module:
    """``arch`` with the weights it has inside the supernet of ``checkpoint``.

    The supernet trains with batch statistics only (its running statistics are never updated), so
    every BatchNorm restarts its running statistics and keeps them with momentum 0.1, as a
    network trained from scratch does."""
    supernet, _ = load_supernet(checkpoint)
    if supernet.space.name != space.name or supernet.num_classes != num_classes:
        raise UserError(
            f"baseline init {repo_path(checkpoint)}: supernet of space '{supernet.space.name}' with "
            f"{supernet.num_classes} classes, but this run trains space '{space.name}' with {num_classes}"
        )
    net = supernet.extract(arch)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = 0.1
    return net


class StandaloneTrainer(SandwichTrainer):
    """One network, one label-smoothed cross-entropy step per batch."""

    def build_network(self) -> nn.Module:
        net, self.cost, self.description = baseline_network(self.cfg, self.space, self.num_classes)
        return net

    def cost_record(self) -> dict[str, Any]:
        return {"mflops": self.cost.mflops, "params": self.cost.params, "network": self.description}

    @staticmethod
    def progress_info(values: dict[str, float]) -> str:
        return f"loss {values['loss']:.3f} acc {values['acc']:.3f}"

    def _set_dropout(self, rate: float) -> None:
        if isinstance(self.net, PlainCNN):
            self.net.dropout_rate = rate
        else:
            self.net.dropout.p = rate

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        cfg_train = self.cfg["train"]
        self.model.train()
        self._set_dropout(cfg_train["dropout"])
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(images)
        loss = label_smoothed_cross_entropy(logits, labels, self.cfg["loss"]["label_smoothing"])
        loss.backward()
        if cfg_train["grad_clip_value"] > 0:
            torch.nn.utils.clip_grad_value_(self.net.parameters(), cfg_train["grad_clip_value"])
        self.optimizer.step()
        self.scheduler.step()
        acc = (logits.detach().argmax(1) == labels).float().mean()
        loss_value, acc_value = all_reduce_mean(torch.stack([loss.detach(), acc]).float()).cpu().tolist()
        if not torch.isfinite(torch.tensor(loss_value)):
            raise TrainingDiverged(f"non-finite loss at step {self.state.step + 1} (last checkpoint kept)")
        return {"loss": loss_value, "acc": acc_value}

    def validate(self) -> dict[str, Any]:
        channels_last = self.memory_format == torch.channels_last
        with torch.random.fork_rng(devices=[self.device.index] if self.device.type == "cuda" else []):
            acc = evaluate(self.net, self.val_loader, self.cfg["validation"]["max_batches"], channels_last)
        return {"network": {**acc, "mflops": round(self.cost.mflops, 4), "params": self.cost.params}}

    def train(self) -> TrainResult:
        """Train; once the schedule is complete, also measure the reported evaluation split
        (never looked at during training) and write ``<run_dir>/baseline.json``."""
        result = super().train()
        if result.status == "completed" and self.is_main:
            loader = build_loader(self.cfg, "val", shuffle=False, augment=False, drop_last=False)
            channels_last = self.memory_format == torch.channels_last
            test = evaluate(self.net, loader, None, channels_last)
            report = {
                "name": self.cfg["baseline"].get("name"),
                "network": self.description,
                "mflops": round(self.cost.mflops, 4),
                "params": self.cost.params,
                "epochs": self.epochs,
                "steps": self.state.step,
                # what the space's file said when it trained (a pilot's file may change or go)
                "trainAugment": self.space.data.get("train_augment"),
                "heldOut": result.validation.get("network"),
                "evaluation": {
                    "dataset": dataset_name(self.cfg),
                    "split": eval_split_name(self.cfg),
                    "size": len(loader.dataset),
                    **test,
                },
            }
            (self.run_dir / RESULT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        return result
