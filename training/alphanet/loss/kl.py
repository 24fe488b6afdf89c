"""KL in-place distillation: KL(p || q) with the soft teacher distribution, temperature 1."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def kl_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Batch mean of sum_k p_k (log p_k - log q_k); the gradient flows through the student only."""
    log_q = F.log_softmax(student_logits, dim=1)
    log_p = F.log_softmax(teacher_logits.detach(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


class KLDistillation(nn.Module):
    """Distillation loss ``(student_logits, teacher_logits, target) -> scalar`` (target unused)."""

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, target=None
    ) -> torch.Tensor:
        return kl_distillation(student_logits, teacher_logits)
