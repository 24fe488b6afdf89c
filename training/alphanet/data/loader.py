"""Datasets and loaders from a resolved training config (``cfg["data"]``, ``cfg["space"]``)."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserError
from ..space import load_space
from .fashion_mnist import FashionMNIST
from .image_folder import ImageFolder
from .sampler import ShardedEpochSampler
from .splits import IndexedSubset, split_indices
from .transforms import build_transforms

log = logging.getLogger(__name__)
_clamp_logged: set[tuple[int, int]] = set()

# train: the training images the supernet learns from (minus the held-out ones, when configured);
# holdout: data.holdout_size training images it never learns from (validation during training, search
# fitness, picking the family); val: the reported evaluation split (the Fashion-MNIST test set).
SPLITS = ("train", "holdout", "val")
DATASETS = ("fashion_mnist", "image_folder")


class TransformedDataset(Dataset):
    """Applies a transform with a per-sample RNG; items are ``index`` or ``(index, sample_seed)``."""

    def __init__(self, base: Dataset, transform, default_seed: int = 0):
        self.base, self.transform, self.default_seed = base, transform, default_seed
        self.classes = list(base.classes)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item) -> tuple[torch.Tensor, int]:
        index, seed = item if isinstance(item, tuple) else (item, self.default_seed * 1_000_003 + item)
        img, label = self.base[index]
        return self.transform(img, random.Random(seed)), label


def build_dataset(cfg: dict[str, Any], split: str) -> Dataset:
    """The untransformed dataset of ``split`` (``train`` | ``holdout`` | ``val``)."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
    data = cfg["data"]
    source = "val" if split == "val" else "train"
    kind = data["dataset"]
    if kind == "fashion_mnist":
        dataset = FashionMNIST(data["root"], "train" if source == "train" else "test")
    elif kind == "image_folder":
        space = load_space(cfg["space"])
        sub = data["train_dir"] if source == "train" else data["val_dir"]
        dataset = ImageFolder(Path(data["root"]) / sub, channels=space.in_channels)
    else:
        raise UserError(f"data.dataset must be one of {', '.join(DATASETS)}, got '{kind}'")
    limit = data.get("max_train_samples" if source == "train" else "max_val_samples")
    if limit is not None and limit < len(dataset):
        dataset = _Head(dataset, limit)
    if source == "train":
        size, seed = holdout_settings(cfg)
        if split == "holdout" and size == 0:
            raise UserError("the holdout split needs data.holdout_size > 0")
        if size > 0:
            train_indices, holdout_indices = split_indices(len(dataset), size, seed)
            dataset = IndexedSubset(dataset, holdout_indices if split == "holdout" else train_indices)
    return dataset


def holdout_settings(cfg: dict[str, Any]) -> tuple[int, int]:
    """(data.holdout_size, data.holdout_seed); configs older than the held-out split have none."""
    data = cfg["data"]
    size = int(data.get("holdout_size") or 0)
    if size < 0:
        raise UserError(f"data.holdout_size must be >= 0, got {size}")
    return size, int(data.get("holdout_seed") or 0)


class _Head(Dataset):
    """The first ``n`` samples of a dataset (smoke runs and tests)."""

    def __init__(self, base: Dataset, n: int):
        self.base, self.n = base, n
        self.classes = list(base.classes)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.base[index]


def available_cores() -> int:
    """CPU cores this process may run on, shared among the processes of this node (torchrun)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, local_world))


def loader_workers(requested: int) -> int:
    """``data.num_workers``, at most the cores available: more worker processes than cores only
    add context switches (and memory) on a loaded machine."""
    cores = available_cores()
    if requested <= cores:
        return requested
    if (requested, cores) not in _clamp_logged:
        _clamp_logged.add((requested, cores))
        log.warning("data.num_workers=%d exceeds the %d cores available: using %d", requested, cores, cores)
    return cores


def build_loader(
    cfg: dict[str, Any],
    split: str,
    *,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    augment: bool | None = None,
    drop_last: bool | None = None,
    seed: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int | None = None,
    dataset: Dataset | None = None,
) -> DataLoader:
    """A loader of normalised ``[B, C, size, size]`` float batches and int64 labels.

    Defaults: train = shuffled, augmented, full batches only, ``data.batch_size``; val = in order,
    eval transform, ``data.eval_batch_size``. The sampler (``loader.sampler``) is a
    `ShardedEpochSampler`: call ``set_epoch`` each epoch; ``skip`` resumes mid-epoch.
    ``loader.dataset.classes`` lists the label names. Pass ``dataset`` to reuse a loaded one.
    """
    train = split == "train"
    data = cfg["data"]
    space = load_space(cfg["space"])
    augment = train if augment is None else augment
    shuffle = train if shuffle is None else shuffle
    drop_last = train if drop_last is None else drop_last
    batch_size = (
        int(data["batch_size"] if train else data["eval_batch_size"]) if batch_size is None else batch_size
    )
    seed = int(cfg.get("seed", 0)) if seed is None else seed
    base = build_dataset(cfg, split) if dataset is None else dataset
    transformed = TransformedDataset(base, build_transforms(space.data, train=augment), seed)
    sampler = ShardedEpochSampler(
        len(base), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size, drop_last=False
    )
    if drop_last and sampler.per_rank < batch_size:
        raise UserError(
            f"{split} split has {sampler.per_rank} samples per process, fewer than one batch of {batch_size}"
        )
    workers = loader_workers(int(data.get("num_workers", 0)) if num_workers is None else num_workers)
    return DataLoader(
        transformed,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        # Own generator: creating an iterator must not draw from the global torch RNG (which
        # drives dropout / drop-connect), or a resumed run would diverge from a straight one.
        generator=torch.Generator().manual_seed(seed),
    )
