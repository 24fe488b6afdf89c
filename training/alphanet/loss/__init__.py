"""Training losses: label-smoothed CE, KL and adaptive alpha-divergence in-place distillation."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import UserError
from .alpha_divergence import AdaptiveAlphaDivergence, adaptive_alpha_divergence, f_divergence
from .cross_entropy import LabelSmoothedCrossEntropy, label_smoothed_cross_entropy
from .kl import KLDistillation, kl_distillation

DISTILL_CHOICES = ("alpha_divergence", "kl", "none")


class _HardLabelLoss(nn.Module):
    """``distill: none``: every subnet is trained on the labels (label-smoothed CE)."""

    def __init__(self, smoothing: float):
        super().__init__()
        self.ce = LabelSmoothedCrossEntropy(smoothing)

    def forward(self, student_logits: torch.Tensor, teacher_logits, target: torch.Tensor) -> torch.Tensor:
        return self.ce(student_logits, target)


def build_distill_loss(loss_cfg: dict) -> nn.Module:
    """The loss of the non-largest subnets, ``(student_logits, teacher_logits, target) -> scalar``."""
    kind = loss_cfg["distill"]
    if kind == "alpha_divergence":
        return AdaptiveAlphaDivergence(loss_cfg["alpha_min"], loss_cfg["alpha_max"], loss_cfg["iw_clip"])
    if kind == "kl":
        return KLDistillation()
    if kind == "none":
        return _HardLabelLoss(loss_cfg["label_smoothing"])
    raise UserError(f"loss.distill must be one of {', '.join(DISTILL_CHOICES)}, got '{kind}'")


__all__ = [
    "AdaptiveAlphaDivergence",
    "DISTILL_CHOICES",
    "KLDistillation",
    "LabelSmoothedCrossEntropy",
    "adaptive_alpha_divergence",
    "build_distill_loss",
    "f_divergence",
    "kl_distillation",
    "label_smoothed_cross_entropy",
]
