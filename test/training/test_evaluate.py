"""Top-1/top-5 accuracy on a loader: exact fractions, small class counts, budget, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from alphanet.engine.evaluate import evaluate, topk_hits
from alphanet.errors import UserError


class FixedLogits(nn.Module):
    """Returns the logits row stored for each input id (inputs are ids in a 1-element tensor)."""

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.rows = rows
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.rows[ids.view(-1).long()]


def _rows() -> torch.Tensor:
    # 7 classes; the target of every sample is class 0, placed at rank 1, 2, …, 7.
    rows = []
    for rank in range(7):
        order = list(range(1, 7))
        order.insert(rank, 0)
        row = torch.empty(7)
        for position, cls in enumerate(order):
            row[cls] = 7.0 - position
        rows.append(row)
    return torch.stack(rows)


def test_exact_top1_top5_fractions():
    model = FixedLogits(_rows())
    loader = [(torch.tensor([0.0, 1.0, 2.0]), torch.zeros(3, dtype=torch.long))]
    loader.append((torch.tensor([3.0, 4.0, 5.0, 6.0]), torch.zeros(4, dtype=torch.long)))
    result = evaluate(model, loader)
    assert result == {"top1": 1 / 7, "top5": 5 / 7, "samples": 7}


def test_max_batches_and_fewer_than_five_classes():
    model = FixedLogits(_rows())
    loader = [(torch.tensor([float(i)]), torch.zeros(1, dtype=torch.long)) for i in range(7)]
    assert evaluate(model, loader, max_batches=2) == {"top1": 0.5, "top5": 1.0, "samples": 2}
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    assert topk_hits(logits, torch.tensor([0, 0]), 5).tolist() == [True, True]  # k capped at 2 classes
    assert topk_hits(logits, torch.tensor([0, 0]), 1).tolist() == [False, True]


def test_model_is_put_in_eval_mode():
    model = nn.Sequential(nn.Dropout(1.0), nn.Linear(3, 2))  # dropout would zero every input
    model.train()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        model[1].bias.zero_()
    loader = [(torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0]]), torch.tensor([0, 1]))]
    assert evaluate(model, loader)["top1"] == 1.0
    assert not model.training


def test_bad_inputs():
    model = FixedLogits(_rows())
    with pytest.raises(UserError, match="no samples"):
        evaluate(model, [])
    with pytest.raises(ValueError, match=r"\[N, classes\]"):
        evaluate(model, [(torch.tensor([0.0, 1.0]), torch.zeros(3, dtype=torch.long))])
