"""Label-smoothed cross-entropy (the largest subnet's loss, and every subnet's without distillation)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def label_smoothed_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """-sum(t * log_softmax), t = one_hot * (1 - smoothing) + smoothing / K, averaged over the batch."""
    num_classes = logits.shape[1]
    log_probs = F.log_softmax(logits, dim=1)
    soft = torch.full_like(log_probs, smoothing / num_classes)
    soft.scatter_(1, target.unsqueeze(1), 1.0 - smoothing + smoothing / num_classes)
    return -(soft * log_probs).sum(dim=1).mean()


class LabelSmoothedCrossEntropy(nn.Module):
    def __init__(self, smoothing: float = 0.1):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return label_smoothed_cross_entropy(logits, target, self.smoothing)
