"""Loaders for sub-network work: BN calibration, evaluation, and the search's held-out split.

* Calibration always reads the *training* split under the *training* augmentation (the reference
  recalibrates on training images, shuffled, with the same transforms as training).
* Evaluation reads the ``val`` split (the Fashion-MNIST test set, or an ImageFolder's
  ``data.val_dir``) with the eval transform.
* The search must not select architectures on the split that is finally reported, so its fitness
  uses a *held-out part of the training set*: a fixed, seeded subset of ``holdout_size`` training
  images, evaluated with the eval transform, and excluded from the calibration images. (The
  reference's search ranks on the ImageNet validation set; its authors used it for analysis only.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from torch.utils.data import DataLoader, Dataset

from ..data import build_dataset, build_loader
from ..errors import UserError

DATASET_NAMES = {"fashion_mnist": "fashion-mnist"}


class IndexedSubset(Dataset):
    """A fixed subset of a dataset that keeps its ``classes`` (torch's Subset drops them)."""

    def __init__(self, base: Dataset, indices: Sequence[int]):
        self.base, self.indices = base, list(indices)
        self.classes = list(base.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.base[self.indices[index]]


@dataclass
class SplitInfo:
    """What an evaluation ran on, for results files and manifest ``evaluation`` records."""

    dataset: str
    split: str
    size: int


def dataset_name(cfg: dict[str, Any]) -> str:
    """A human name for the configured dataset (``fashion-mnist``, or the image tree's folder)."""
    data = cfg["data"]
    if data["dataset"] in DATASET_NAMES:
        return DATASET_NAMES[data["dataset"]]
    return str(data.get("name") or data["root"]).rstrip("/").split("/")[-1] or "image-folder"


def eval_split_name(cfg: dict[str, Any]) -> str:
    data = cfg["data"]
    return "test" if data["dataset"] == "fashion_mnist" else str(data.get("val_dir", "val"))


def calibration_loader(
    cfg: dict[str, Any], batch_size: int, seed: int, dataset: Dataset | None = None
) -> DataLoader:
    """Shuffled training images under the training augmentation (batches of ``batch_size``)."""
    return build_loader(
        cfg,
        "train",
        batch_size=batch_size,
        shuffle=True,
        augment=True,
        drop_last=False,
        seed=seed,
        dataset=dataset,
    )


def evaluation_loader(cfg: dict[str, Any], batch_size: int | None = None) -> tuple[DataLoader, SplitInfo]:
    """The reported evaluation split, eval transform, in order."""
    loader = build_loader(cfg, "val", batch_size=batch_size, shuffle=False, augment=False, drop_last=False)
    return loader, SplitInfo(dataset_name(cfg), eval_split_name(cfg), len(loader.dataset))


def holdout_split(cfg: dict[str, Any], holdout_size: int, seed: int) -> tuple[IndexedSubset, IndexedSubset]:
    """(calibration pool, held-out validation subset) carved from the training split."""
    train = build_dataset(cfg, "train")
    if not 0 < holdout_size < len(train):
        raise UserError(f"holdout size must be in [1, {len(train) - 1}] for {len(train)} training images")
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    held_out = sorted(order[:holdout_size])
    pool = sorted(order[holdout_size:])
    return IndexedSubset(train, pool), IndexedSubset(train, held_out)


def holdout_loader(cfg: dict[str, Any], subset: IndexedSubset, batch_size: int | None = None) -> DataLoader:
    """The held-out training images with the eval transform, in order."""
    return build_loader(
        cfg, "val", batch_size=batch_size, shuffle=False, augment=False, drop_last=False, dataset=subset
    )
