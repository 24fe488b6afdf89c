"""Seeded, disjoint partitions of a dataset (the held-out part of a training split)."""

from __future__ import annotations

import random
from typing import Sequence

from torch.utils.data import Dataset

from ..errors import UserError


class IndexedSubset(Dataset):
    """A fixed subset of a dataset that keeps its ``classes`` (torch's Subset drops them)."""

    def __init__(self, base: Dataset, indices: Sequence[int]):
        self.base, self.indices = base, list(indices)
        self.classes = list(base.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.base[self.indices[index]]


def split_indices(n: int, holdout_size: int, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held-out) sorted indices of ``range(n)``: ``holdout_size`` drawn by a seeded shuffle.

    The draw depends only on ``(n, holdout_size, seed)``, so training, search and the pipeline
    agree on the same held-out images without storing them.
    """
    if not 0 < holdout_size < n:
        raise UserError(f"holdout size must be in [1, {n - 1}] for {n} training images, got {holdout_size}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[holdout_size:]), sorted(order[:holdout_size])
