"""Losses: alpha-divergence values vs closed forms, clipping, per-sample selection, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from alphanet.errors import UserError
from alphanet.loss import (
    AdaptiveAlphaDivergence,
    KLDistillation,
    adaptive_alpha_divergence,
    build_distill_loss,
    f_divergence,
    kl_distillation,
    label_smoothed_cross_entropy,
)


@pytest.fixture(autouse=True)
def _float64():
    # Exact comparisons need double precision; restore the global default for other test modules.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _logits(seed: int, n: int = 6, k: int = 7, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=gen) * scale, torch.randn(n, k, generator=gen) * scale


def true_divergence(student: torch.Tensor, teacher: torch.Tensor, alpha: float) -> torch.Tensor:
    """Differentiable closed form of D_alpha(p || q) per sample (no clipping)."""
    log_q = F.log_softmax(student, 1)
    log_p = F.log_softmax(teacher, 1).detach()
    q, p = log_q.exp(), log_p.exp()
    if alpha == 0:
        return (q * (log_q - log_p)).sum(1)  # KL(q || p)
    if alpha == 1:
        return (p * (log_p - log_q)).sum(1)  # KL(p || q)
    return (torch.exp(alpha * log_p + (1 - alpha) * log_q) - q).sum(1) / (alpha * (alpha - 1))


def test_divergence_values_match_closed_forms():
    student, teacher = _logits(0)
    q, p = F.softmax(student, 1), F.softmax(teacher, 1)
    d, _ = f_divergence(student, teacher, -1.0, iw_clip=math.inf)
    torch.testing.assert_close(d, 0.5 * ((q**2 / p).sum(1) - 1))
    d, _ = f_divergence(student, teacher, 0.5, iw_clip=math.inf)
    torch.testing.assert_close(d, 4 * (1 - torch.sqrt(p * q).sum(1)))
    d, _ = f_divergence(student, teacher, 1.0, iw_clip=math.inf)
    torch.testing.assert_close(d, (p * torch.log(p / q)).sum(1))
    for alpha in (0.0, 5e-4, -5e-4):  # the |alpha| < 1e-3 branch is KL(q || p)
        d, _ = f_divergence(student, teacher, alpha, iw_clip=math.inf)
        torch.testing.assert_close(d, (q * torch.log(q / p)).sum(1))
    assert (d > 0).all()
    d, _ = f_divergence(teacher, teacher, -1.0)
    torch.testing.assert_close(d, torch.zeros(6))


def test_importance_weights_are_clipped_except_for_alpha_one():
    # Student confident on class 0 where the teacher is not: q/p >> 5 on class 0.
    student = torch.tensor([[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.0, 3.0, 3.0], [0.0, 0.0, 0.0]])
    q, p = F.softmax(student, 1), F.softmax(teacher, 1)
    assert (q / p)[0, 0] > 5
    d_clip, _ = f_divergence(student, teacher, -1.0, iw_clip=5.0)
    d_free, _ = f_divergence(student, teacher, -1.0, iw_clip=math.inf)
    expected = 0.5 * (q * (torch.clamp(q / p, max=5.0) - 1)).sum(1)
    torch.testing.assert_close(d_clip, expected)
    assert d_clip[0] < d_free[0] and d_clip[1] == d_free[1]
    # The surrogate's weights use the clipped ratio: rho = 1/2 - clip(q/p, 0, 5).
    _, s_clip = f_divergence(student, teacher, -1.0, iw_clip=5.0)
    rho = 0.5 - torch.clamp(q / p, max=5.0)
    torch.testing.assert_close(s_clip, -(q * rho * torch.log(q)).sum(1))
    # alpha = 1 is never clipped (p/q on class 1, 2 is large here).
    d1_clip, _ = f_divergence(student, teacher, 1.0, iw_clip=1.0001)
    d1_free, _ = f_divergence(student, teacher, 1.0, iw_clip=math.inf)
    torch.testing.assert_close(d1_clip, d1_free)


@pytest.mark.parametrize("alpha", [-1.0, 0.5, 1.0, 0.0, 2.0])
def test_surrogate_gradient_equals_the_divergence_gradient(alpha):
    student, teacher = _logits(1)
    s1 = student.clone().requires_grad_()
    _, surrogate = f_divergence(s1, teacher, alpha, iw_clip=math.inf)
    surrogate.sum().backward()
    s2 = student.clone().requires_grad_()
    true_divergence(s2, teacher, alpha).sum().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("alpha", [-1.0, 0.5, 1.0, 0.0])
def test_surrogate_gradient_matches_finite_differences(alpha):
    student, teacher = _logits(2, n=2, k=4, scale=1.0)
    s = student.clone().requires_grad_()
    _, surrogate = f_divergence(s, teacher, alpha, iw_clip=math.inf)
    surrogate.sum().backward()
    eps = 1e-6
    numeric = torch.zeros_like(student)
    for idx in range(student.numel()):
        plus, minus = student.clone().view(-1), student.clone().view(-1)
        plus[idx] += eps
        minus[idx] -= eps
        d_plus, _ = f_divergence(plus.view_as(student), teacher, alpha, iw_clip=math.inf)
        d_minus, _ = f_divergence(minus.view_as(student), teacher, alpha, iw_clip=math.inf)
        numeric.view(-1)[idx] = (d_plus.sum() - d_minus.sum()) / (2 * eps)
    torch.testing.assert_close(s.grad, numeric, rtol=1e-6, atol=1e-8)


def test_teacher_gets_no_gradient():
    student, teacher = _logits(3)
    t = teacher.clone().requires_grad_()
    s = student.clone().requires_grad_()
    loss, _ = adaptive_alpha_divergence(s, t)
    loss.backward()
    assert t.grad is None and s.grad is not None


def test_adaptive_loss_picks_the_larger_divergence_per_sample():
    student, teacher = _logits(4, n=16)
    d_left, l_left = f_divergence(student, teacher, -1.0, 5.0)
    d_right, l_right = f_divergence(student, teacher, 1.0, 5.0)
    take_left = d_left > d_right
    assert 0 < int(take_left.sum()) < 16, "the batch should exercise both branches"
    loss, divergence = adaptive_alpha_divergence(student, teacher, -1.0, 1.0, 5.0)
    torch.testing.assert_close(loss, torch.where(take_left, l_left, l_right).mean())
    torch.testing.assert_close(divergence, torch.maximum(d_left, d_right).mean())
    # Gradient (no clipping) = gradient of the batch mean of the per-sample larger divergence.
    s1 = student.clone().requires_grad_()
    adaptive_alpha_divergence(s1, teacher, -1.0, 1.0, math.inf)[0].backward()
    s2 = student.clone().requires_grad_()
    left, right = true_divergence(s2, teacher, -1.0), true_divergence(s2, teacher, 1.0)
    torch.where(left > right, left, right).mean().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-9, atol=1e-12)


def test_ties_go_to_alpha_max():
    student, teacher = _logits(5)
    _, l_right = f_divergence(student, teacher, 1.0, 5.0)
    loss, _ = adaptive_alpha_divergence(student, teacher, 1.0, 1.0, 5.0)
    torch.testing.assert_close(loss, l_right.mean())


def test_module_wrappers_and_builder():
    student, teacher = _logits(6)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    alpha = build_distill_loss(
        {"distill": "alpha_divergence", "alpha_min": -1.0, "alpha_max": 1.0, "iw_clip": 5.0}
    )
    assert isinstance(alpha, AdaptiveAlphaDivergence)
    torch.testing.assert_close(
        alpha(student, teacher, labels), adaptive_alpha_divergence(student, teacher)[0]
    )
    assert alpha.last_divergence is not None and alpha.last_divergence > 0
    kl = build_distill_loss({"distill": "kl"})
    assert isinstance(kl, KLDistillation)
    p, q = F.softmax(teacher, 1), F.softmax(student, 1)
    torch.testing.assert_close(kl(student, teacher, labels), (p * torch.log(p / q)).sum(1).mean())
    none = build_distill_loss({"distill": "none", "label_smoothing": 0.1})
    torch.testing.assert_close(
        none(student, teacher, labels), label_smoothed_cross_entropy(student, labels, 0.1)
    )
    with pytest.raises(UserError, match="loss.distill"):
        build_distill_loss({"distill": "mse"})
    with pytest.raises(ValueError):
        AdaptiveAlphaDivergence(alpha_min=1.0, alpha_max=-1.0)


def test_kl_distillation_gradient_is_q_minus_p():
    student, teacher = _logits(7)
    s = student.clone().requires_grad_()
    kl_distillation(s, teacher).backward()
    expected = (F.softmax(student, 1) - F.softmax(teacher, 1)) / student.shape[0]
    torch.testing.assert_close(s.grad, expected)


def test_label_smoothed_cross_entropy():
    logits, _ = _logits(8, k=10)
    labels = torch.tensor([0, 3, 9, 1, 1, 2])
    torch.testing.assert_close(
        label_smoothed_cross_entropy(logits, labels, 0.0), F.cross_entropy(logits, labels)
    )
    target = torch.full((6, 10), 0.1 / 10)
    target[torch.arange(6), labels] += 0.9
    expected = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(label_smoothed_cross_entropy(logits, labels, 0.1), expected)


def _legacy_alpha_one(student_logits: torch.Tensor, teacher_logits: torch.Tensor):
    """The alpha = 1 branch as written before the overflow fix (the reference's formula)."""
    log_q = F.log_softmax(student_logits, dim=1)
    q = log_q.detach().exp()
    log_w = F.log_softmax(teacher_logits, dim=1) - log_q.detach()
    w = log_w.exp()
    return (q * w * log_w).sum(dim=1), -((q * w) * log_q).sum(dim=1)


def test_alpha_one_is_finite_for_any_finite_logit_gap():
    for gap in (60.0, 89.0, 95.0, 104.0, 150.0, 1e3, 1e5, 1e30):
        student = torch.zeros(3, 10, dtype=torch.float32)
        student[:, 0] = gap  # the student is sure of class 0, the teacher of class 1
        teacher = torch.zeros(3, 10, dtype=torch.float32)
        teacher[:, 1] = gap
        student.requires_grad_(True)
        value, surrogate = f_divergence(student, teacher, 1.0)
        assert torch.isfinite(value).all(), gap
        surrogate.sum().backward()
        assert torch.isfinite(student.grad).all(), gap
        loss = AdaptiveAlphaDivergence(-1.0, 1.0, 5.0)(student.detach(), teacher)
        assert torch.isfinite(loss), gap


def test_alpha_one_overflow_fix_matches_old_formula_bit_for_bit_where_finite():
    gen = torch.Generator().manual_seed(3)
    for scale in (1.0, 10.0, 40.0):
        student = torch.randn(64, 10, generator=gen, dtype=torch.float32) * scale
        teacher = torch.randn(64, 10, generator=gen, dtype=torch.float32) * scale
        value, surrogate = f_divergence(student, teacher, 1.0)
        old_value, old_surrogate = _legacy_alpha_one(student, teacher)
        finite = torch.isfinite(old_value)
        assert finite.any()
        assert torch.equal(value[finite], old_value[finite])
        assert torch.equal(surrogate[finite], old_surrogate[finite])
        assert torch.isfinite(value).all() and torch.isfinite(surrogate).all()
    # where the old formula overflowed, the value is KL(p || q) computed in log space
    student = torch.tensor([[120.0, 0.0, 0.0]], dtype=torch.float32)
    teacher = torch.tensor([[0.0, 120.0, 0.0]], dtype=torch.float32)
    assert not torch.isfinite(_legacy_alpha_one(student, teacher)[0]).all()
    expected = (F.softmax(teacher, 1) * (F.log_softmax(teacher, 1) - F.log_softmax(student, 1))).sum(1)
    value, _ = f_divergence(student, teacher, 1.0)
    assert torch.allclose(value, expected, rtol=1e-5)
