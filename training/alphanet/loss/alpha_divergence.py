"""Adaptive alpha-divergence in-place distillation (AlphaNet, reference ``loss_ops.py``).

q = softmax(student), p = softmax(teacher) (teacher = detached logits of the largest subnet),
w = p / q per class. Per sample, summed over classes:

* general alpha:  D = 1/(a(a-1)) * sum q (clip(w^a, 0, iw_clip) - 1)
* |alpha| < 1e-3: D = sum q (-log clip(w, 0, iw_clip))          (KL(q||p))
* |alpha-1| < 1e-3: D = sum q w log w                             (KL(p||q), never clipped)

The gradient goes through a surrogate, L = -sum [q * rho]_detached * log q, with
rho = clip(w^a)/a + 1/(a(a-1)), log clip(w) - 1, or w respectively; without clipping its
gradient equals the divergence's. Its *value* is not the divergence and is often negative.
The adaptive loss evaluates alpha_min and alpha_max and, per sample, back-propagates the
surrogate of whichever divergence is larger (strictly larger left wins), then averages.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

_EPS_ALPHA = 1e-3


def f_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, alpha: float, iw_clip: float = math.inf
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (divergence value [N], surrogate loss [N]) of D_alpha(p || q)."""
    log_q = F.log_softmax(student_logits, dim=1)
    with torch.no_grad():
        q = log_q.detach().exp()
        log_p = F.log_softmax(teacher_logits.detach(), dim=1)
        log_w = log_p - log_q.detach()
        if abs(alpha) < _EPS_ALPHA:
            log_w_clipped = torch.clamp(log_w, max=math.log(iw_clip)) if math.isfinite(iw_clip) else log_w
            divergence = (q * -log_w_clipped).sum(dim=1)
            weight = q * (log_w_clipped - 1.0)
        elif abs(alpha - 1.0) < _EPS_ALPHA:
            # q * w is p, but w = exp(log_w) overflows float32 once a teacher-student logit gap
            # passes ~89 (inf, then 0 * inf = NaN when q underflows). Where the product is not
            # finite it is recomputed in log space; elsewhere it is the plain product, so finite
            # results are bit-for-bit what they always were.
            qw = q * log_w.exp()
            qw = torch.where(torch.isfinite(qw), qw, (log_q.detach() + log_w).exp())
            divergence = (qw * log_w).sum(dim=1)
            weight = qw
        else:
            iw_alpha = torch.clamp((alpha * log_w).exp(), min=0.0, max=iw_clip)
            divergence = (q * (iw_alpha - 1.0)).sum(dim=1) / (alpha * (alpha - 1.0))
            weight = q * (iw_alpha / alpha + 1.0 / (alpha * (alpha - 1.0)))
    surrogate = -(weight * log_q).sum(dim=1)
    return divergence, surrogate


def adaptive_alpha_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    alpha_min: float = -1.0,
    alpha_max: float = 1.0,
    iw_clip: float = 5.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to back-propagate: batch mean of the selected surrogates, mean selected divergence)."""
    d_left, l_left = f_divergence(student_logits, teacher_logits, alpha_min, iw_clip)
    d_right, l_right = f_divergence(student_logits, teacher_logits, alpha_max, iw_clip)
    take_left = d_left > d_right
    loss = torch.where(take_left, l_left, l_right).mean()
    divergence = torch.where(take_left, d_left, d_right).mean()
    return loss, divergence


class AdaptiveAlphaDivergence(nn.Module):
    """Distillation loss ``(student_logits, teacher_logits, target) -> scalar`` (target unused)."""

    def __init__(self, alpha_min: float = -1.0, alpha_max: float = 1.0, iw_clip: float = 5.0):
        super().__init__()
        if alpha_min > alpha_max:
            raise ValueError(f"alpha_min ({alpha_min}) must not exceed alpha_max ({alpha_max})")
        if iw_clip <= 0:
            raise ValueError(f"iw_clip must be positive, got {iw_clip}")
        self.alpha_min, self.alpha_max, self.iw_clip = alpha_min, alpha_max, iw_clip
        self.last_divergence: torch.Tensor | None = None

    def forward(
        self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, target=None
    ) -> torch.Tensor:
        loss, divergence = adaptive_alpha_divergence(
            student_logits, teacher_logits, self.alpha_min, self.alpha_max, self.iw_clip
        )
        self.last_divergence = divergence.detach()
        return loss
