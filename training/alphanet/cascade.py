"""Confidence cascades over a model family: the rule, its cost, and picking cascades on held-out data.

A cascade is 2-3 members of increasing MFLOPs and one threshold per stage but the last. An image
goes to the first stage; a stage whose top-1 softmax probability is at least its threshold
answers (its own top-1 class); otherwise the next stage runs. The last stage always answers.
This is the rule the server runs (docs/zoo-contract.md); `run_cascade` is its reference.

Cost: the expected MFLOPs are the mean over images of the MFLOPs of the stages that ran; the
worst case runs every stage. Thresholds and stages are chosen on the held-out split only
(`search_cascades`, `pick_cascades`); the test split is measured afterwards, never consulted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import UserError

MAX_STAGES = 3
# Threshold candidates per stage: quantiles of that stage's confidence on the held-out images
# (so every candidate changes which images exit) plus fixed points. Three-stage cascades use a
# coarser grid: their candidates multiply (11 members: 165 stage triples x grid^2).
QUANTILES = {2: np.linspace(0.0, 1.0, 41)[1:-1], 3: np.linspace(0.0, 1.0, 11)[1:-1]}
FIXED_THRESHOLDS = {
    2: (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999),
    3: (0.9, 0.95, 0.99, 0.999),
}


@dataclass(frozen=True)
class Cascade:
    """Stage indices into the family (increasing MFLOPs) and one threshold per non-final stage."""

    stages: tuple[int, ...]
    thresholds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not 2 <= len(self.stages) <= MAX_STAGES:
            raise UserError(f"a cascade has 2 to {MAX_STAGES} stages, got {len(self.stages)}")
        if len(self.thresholds) != len(self.stages) - 1:
            raise UserError("a cascade needs one threshold per stage but the last")
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds):
            raise UserError(f"cascade thresholds are probabilities in [0, 1], got {self.thresholds}")


@dataclass
class CascadeResult:
    """What a cascade did on one split."""

    cascade: Cascade
    top1: float
    expected_mflops: float
    worst_mflops: float
    exit_fractions: list[float] = field(default_factory=list)  # share of images answered per stage


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def run_cascade(probs: Sequence[np.ndarray], cascade: Cascade) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, index of the answering stage) per image; ``probs[i]`` is stage i's
    softmax output ``[N, classes]`` for the cascade's i-th stage (not the family's)."""
    n = probs[0].shape[0]
    prediction = np.empty(n, dtype=np.int64)
    exit_stage = np.empty(n, dtype=np.int64)
    pending = np.ones(n, dtype=bool)
    for i, p in enumerate(probs):
        last = i == len(probs) - 1
        answers = pending if last else pending & (p.max(axis=1) >= cascade.thresholds[i])
        prediction[answers] = p[answers].argmax(axis=1)
        exit_stage[answers] = i
        pending &= ~answers
    return prediction, exit_stage


def evaluate_cascade(
    probs: Sequence[np.ndarray], labels: np.ndarray, mflops: Sequence[float], cascade: Cascade
) -> CascadeResult:
    """Top-1 and costs of ``cascade`` given the family's per-member softmax outputs."""
    stage_probs = [probs[s] for s in cascade.stages]
    prediction, exit_stage = run_cascade(stage_probs, cascade)
    stage_cost = np.cumsum([mflops[s] for s in cascade.stages])
    counts = np.bincount(exit_stage, minlength=len(cascade.stages))
    return CascadeResult(
        cascade=cascade,
        top1=float((prediction == labels).mean()),
        expected_mflops=float(stage_cost[exit_stage].mean()),
        worst_mflops=float(stage_cost[-1]),
        exit_fractions=[float(c) / len(labels) for c in counts],
    )


def _threshold_candidates(confidence: np.ndarray, size: int) -> np.ndarray:
    values = np.concatenate([np.quantile(confidence, QUANTILES[size]), FIXED_THRESHOLDS[size]])
    return np.unique(np.round(values, 6))


def _two_stage_sweep(
    confidence: np.ndarray, first_correct: np.ndarray, rest_correct: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For every threshold at once: (correct answers, images that went on) when images with
    ``confidence >= t`` are answered by the first stage and the others by "the rest"."""
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    first_cum = np.concatenate([[0], np.cumsum(first_correct[order])])
    rest_cum = np.concatenate([[0], np.cumsum(rest_correct[order])])
    exits = np.searchsorted(-sorted_conf, -thresholds, side="right")  # count of conf >= t
    correct = first_cum[exits] + (rest_cum[-1] - rest_cum[exits])
    return correct, len(confidence) - exits


def search_cascades(
    probs: Sequence[np.ndarray], labels: np.ndarray, mflops: Sequence[float], max_stages: int = MAX_STAGES
) -> list[CascadeResult]:
    """The Pareto front (top-1 against expected MFLOPs) of every cascade of ``max_stages`` or
    fewer members in increasing-MFLOPs order, over per-stage threshold candidates.

    Each stage tuple is swept over all its final-stage-threshold candidates at once with sorted
    cumulative sums; the front's members are re-evaluated by `evaluate_cascade`, the rule itself.
    """
    if len(probs) != len(mflops) or not probs:
        raise UserError("search_cascades needs one probability matrix and one cost per member")
    if any(b <= a for a, b in zip(mflops, mflops[1:])):
        raise UserError("family members must be ordered by strictly increasing MFLOPs")
    n = len(labels)
    confidence = [p.max(axis=1) for p in probs]
    correct = [(p.argmax(axis=1) == labels).astype(np.int64) for p in probs]
    points: list[tuple[float, float, Cascade]] = []  # (expected MFLOPs, top-1, cascade)
    for size in range(2, min(max_stages, len(probs)) + 1):
        candidates = [_threshold_candidates(c, size) for c in confidence]
        for stages in itertools.combinations(range(len(probs)), size):
            *head, second, last = stages
            # Earlier thresholds (three stages: the first one) enumerated; the last one swept.
            for fixed in itertools.product(*(candidates[s] for s in head)):
                reach = np.ones(n, dtype=bool)
                answered = 0
                cost = 0.0
                for s, t in zip(head, fixed):
                    cost += mflops[s] * reach.mean()
                    exits = reach & (confidence[s] >= t)
                    answered += int(correct[s][exits].sum())
                    reach &= ~exits
                sweep = candidates[second]
                right, went_on = _two_stage_sweep(
                    confidence[second][reach], correct[second][reach], correct[last][reach], sweep
                )
                share = reach.mean()
                costs = cost + share * mflops[second] + (went_on / n) * mflops[last]
                tops = (answered + right) / n
                for t, c, a in zip(sweep, costs, tops):
                    points.append((float(c), float(a), Cascade(stages, (*map(float, fixed), float(t)))))
    points.sort(key=lambda x: (x[0], -x[1]))
    front: list[CascadeResult] = []
    best = -1.0
    for _, top1, cascade in points:
        if top1 > best + 1e-12:
            best = top1
            front.append(evaluate_cascade(probs, labels, mflops, cascade))
    return front


def single_frontier_top1(singles_top1: Sequence[float], mflops: Sequence[float], budget: float) -> float:
    """Best single member's top-1 within ``budget`` MFLOPs (0 when none fits)."""
    fitting = [t for t, m in zip(singles_top1, mflops) if m <= budget + 1e-9]
    return max(fitting, default=0.0)


def pick_cascades(
    front: list[CascadeResult],
    singles_top1: Sequence[float],
    mflops: Sequence[float],
    count: int = 4,
    min_gain: float = 0.001,
) -> list[CascadeResult]:
    """At most ``count`` cascades worth publishing, spread over budgets.

    A cascade is worth publishing only if its top-1 beats every single member whose MFLOPs are at
    or below its expected MFLOPs by ``min_gain`` or more (all figures on the held-out split). From
    those, the cheapest one within 0.1 point of the most accurate member is always kept (the
    "largest model's accuracy for less" operating point), then the rest are spread evenly over
    expected MFLOPs.
    """
    useful = [
        r for r in front if r.top1 >= single_frontier_top1(singles_top1, mflops, r.expected_mflops) + min_gain
    ]
    if len(useful) <= count:
        return useful
    best_single = max(singles_top1)
    near_best = [r for r in useful if r.top1 >= best_single - 0.001]
    chosen = [near_best[0]] if near_best else []
    rest = [r for r in useful if r not in chosen]
    slots = count - len(chosen)
    if slots > 0 and rest:
        positions = np.linspace(0, len(rest) - 1, slots).round().astype(int)
        chosen += [rest[i] for i in sorted(set(positions.tolist()))]
    return sorted(chosen, key=lambda r: r.expected_mflops)
