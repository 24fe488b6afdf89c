"""Optimizer (Nesterov SGD, no weight decay on BN and bias) and the warmup + cosine LR schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch.optim.lr_scheduler import LambdaLR


def peak_lr(optim_cfg: dict[str, Any], global_batch: int) -> float:
    """Base LR, scaled by max(1, global_batch // lr_scale_batch) when ``scale_lr_by_batch``."""
    lr = optim_cfg["lr"]
    if optim_cfg["scale_lr_by_batch"]:
        lr *= max(1, global_batch // optim_cfg["lr_scale_batch"])
    return lr


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only; none on BN parameters or biases (all 1-D tensors)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, optim_cfg: dict[str, Any], global_batch: int) -> torch.optim.SGD:
    return torch.optim.SGD(
        parameter_groups(model, optim_cfg["weight_decay"]),
        lr=peak_lr(optim_cfg, global_batch),
        momentum=optim_cfg["momentum"],
        nesterov=optim_cfg["nesterov"],
    )


class WarmupCosine:
    """LR factor at iteration i: cosine from 1 to ``min_factor`` over ``total`` iterations, times a
    linear warmup from ``start_factor`` to 1 over the first ``warmup`` iterations (the reference's
    ``warmup_cosine_lr``, evaluated per iteration). A picklable callable so LambdaLR can save it."""

    def __init__(self, total: int, warmup: int, start_factor: float, min_factor: float = 0.0):
        self.total, self.warmup = max(1, total), warmup
        self.start_factor, self.min_factor = start_factor, min_factor

    def __call__(self, iteration: int) -> float:
        progress = min(iteration, self.total) / self.total
        cosine = self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if iteration < self.warmup:
            alpha = iteration / self.warmup
            cosine *= self.start_factor * (1.0 - alpha) + alpha
        return cosine


def build_scheduler(
    optimizer: torch.optim.Optimizer, optim_cfg: dict[str, Any], steps_per_epoch: int, epochs: int
) -> LambdaLR:
    schedule = WarmupCosine(
        total=steps_per_epoch * epochs,
        warmup=int(round(optim_cfg["warmup_epochs"] * steps_per_epoch)),
        start_factor=optim_cfg["warmup_start_factor"],
        min_factor=optim_cfg["min_lr_factor"],
    )
    return LambdaLR(optimizer, schedule)
