"""A resumable, sharded, per-epoch shuffling sampler that also seeds each sample's augmentation.

Like `torch.utils.data.DistributedSampler` (same permutation on every rank from ``seed + epoch``,
padded by wrapping or truncated to a multiple of the world size, rank r takes every world-size-th
index), plus two things training needs for exact resumption:

* `skip(n)`: start the next epoch's iteration after the first n samples of this rank's shard;
* each yielded item is ``(index, sample_seed)``; `TransformedDataset` seeds the sample's
  augmentation with it, so a resumed run sees bit-identical batches whatever the worker count.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler


class ShardedEpochSampler(Sampler):
    def __init__(
        self,
        size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ):
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world size {world_size}")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        if drop_last:
            self.per_rank = size // world_size
        else:
            self.per_rank = math.ceil(size / world_size)
        if self.per_rank == 0:
            raise ValueError(f"dataset of {size} samples is smaller than the world size {world_size}")
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, num_samples: int) -> None:
        """Skip the first ``num_samples`` of this rank's shard in the next iteration only."""
        self._skip = num_samples

    def __len__(self) -> int:
        return self.per_rank - self._skip

    def sample_seed(self, position: int) -> int:
        return (self.seed * 1_000_003 + self.epoch) * (1 << 32) + position

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        total = self.per_rank * self.world_size
        if total > len(order):
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        order = order[:total]
        start, self._skip = self._skip, 0
        for position in range(self.rank + start * self.world_size, total, self.world_size):
            yield order[position], self.sample_seed(position)
