"""Confidence cascades: the exit rule, costs, the vectorised search against brute force, picking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from alphanet.cascade import (
    Cascade,
    evaluate_cascade,
    pick_cascades,
    run_cascade,
    search_cascades,
    single_frontier_top1,
    softmax,
)
from alphanet.errors import UserError


def _family(n: int = 300, classes: int = 5, members: int = 4, seed: int = 0):
    """Members of rising quality whose errors are correlated (as sub-networks of one supernet)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    shared = rng.normal(size=(n, classes))
    probs = []
    for i in range(members):
        logits = shared + 0.7 * rng.normal(size=(n, classes))
        logits[np.arange(n), labels] += 0.8 + 0.5 * i
        probs.append(softmax(logits))
    mflops = [5.0 * (i + 1) ** 1.5 for i in range(members)]
    return probs, labels, mflops


def test_rule_answers_at_the_first_confident_stage():
    first = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    second = np.array([[0.1, 0.9], [0.3, 0.7], [0.45, 0.55]])
    prediction, stage = run_cascade([first, second], Cascade((0, 1), (0.8,)))
    assert prediction.tolist() == [0, 1, 1] and stage.tolist() == [0, 1, 0]
    # a threshold equal to the confidence exits (>=); threshold 0 never escalates, 1 almost always
    assert run_cascade([first, second], Cascade((0, 1), (0.6,)))[1].tolist() == [0, 0, 0]
    assert run_cascade([first, second], Cascade((0, 1), (1.0,)))[1].tolist() == [1, 1, 1]


def test_costs_are_the_mean_of_the_stages_that_ran():
    probs = [np.array([[0.9, 0.1], [0.5, 0.5]]), np.array([[0.2, 0.8], [0.4, 0.6]])]
    result = evaluate_cascade(probs, np.array([0, 1]), [2.0, 10.0], Cascade((0, 1), (0.8,)))
    assert result.expected_mflops == pytest.approx((2.0 + 12.0) / 2)
    assert result.worst_mflops == 12.0 and result.exit_fractions == [0.5, 0.5] and result.top1 == 1.0


def _brute_front(probs, labels, mflops):
    from alphanet.cascade import _threshold_candidates

    points = []
    for size in (2, 3):
        cands = [_threshold_candidates(p.max(axis=1), size) for p in probs]
        for stages in itertools.combinations(range(len(probs)), size):
            for ts in itertools.product(*(cands[s] for s in stages[:-1])):
                r = evaluate_cascade(probs, labels, mflops, Cascade(stages, tuple(map(float, ts))))
                points.append((r.expected_mflops, r.top1))
    points.sort(key=lambda x: (x[0], -x[1]))
    front, best = [], -1.0
    for cost, top1 in points:
        if top1 > best + 1e-12:
            best = top1
            front.append((round(cost, 9), round(top1, 9)))
    return front


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_search_equals_brute_force(seed):
    probs, labels, mflops = _family(seed=seed)
    front = search_cascades(probs, labels, mflops)
    assert [(round(r.expected_mflops, 9), round(r.top1, 9)) for r in front] == _brute_front(
        probs, labels, mflops
    )
    # each front entry is the rule's own measurement of that cascade
    for r in front:
        again = evaluate_cascade(probs, labels, mflops, r.cascade)
        assert (again.top1, again.expected_mflops) == (r.top1, r.expected_mflops)


def test_picked_cascades_beat_every_single_member_they_can_afford():
    probs, labels, mflops = _family(n=600, members=5, seed=3)
    singles = [float((p.argmax(1) == labels).mean()) for p in probs]
    front = search_cascades(probs, labels, mflops)
    picked = pick_cascades(front, singles, mflops, count=3)
    assert 1 <= len(picked) <= 3
    for r in picked:
        assert r.top1 >= single_frontier_top1(singles, mflops, r.expected_mflops) + 0.001
        assert r.expected_mflops < r.worst_mflops
    assert [r.expected_mflops for r in picked] == sorted(r.expected_mflops for r in picked)


def test_bad_cascades_and_families_are_refused():
    with pytest.raises(UserError, match="2 to 3 stages"):
        Cascade((0,), ())
    with pytest.raises(UserError, match="one threshold"):
        Cascade((0, 1), ())
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        Cascade((0, 1), (1.5,))
    probs, labels, _ = _family(members=2)
    with pytest.raises(UserError, match="increasing MFLOPs"):
        search_cascades(probs, labels, [3.0, 3.0])
