"""Loaders for sub-network work: BN calibration, evaluation, and the search's held-out split.

* Calibration always reads the *training* split under the *training* augmentation (the reference
  recalibrates on training images, shuffled, with the same transforms as training).
* Evaluation reads the ``val`` split (the Fashion-MNIST test set, or an ImageFolder's
  ``data.val_dir``) with the eval transform.
* The search must not select architectures on the split that is finally reported, so its fitness
  uses a *held-out part of the training set*, evaluated with the eval transform and excluded from
  the calibration images. When the supernet was trained with ``data.holdout_size`` > 0 this is the
  split it never trained on; otherwise (older runs, the official ImageNet checkpoint) a seeded
  subset of ``holdout_size`` training images the supernet *did* train on. (The reference's search
  ranks on the ImageNet validation set; its authors used it for analysis only.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ..data import build_dataset, build_loader
from ..data.loader import holdout_settings
from ..data.splits import IndexedSubset, split_indices

DATASET_NAMES = {"fashion_mnist": "fashion-mnist"}


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


def holdout_split(cfg: dict[str, Any], holdout_size: int, seed: int) -> tuple[Dataset, Dataset, bool]:
    """(calibration pool, held-out subset, whether the supernet never trained on the held-out part).

    The training config's own held-out split wins (``holdout_size``/``seed`` are then unused);
    without one, ``holdout_size`` training images are carved out by ``seed``.
    """
    if holdout_settings(cfg)[0] > 0:
        return build_dataset(cfg, "train"), build_dataset(cfg, "holdout"), True
    train = build_dataset(cfg, "train")
    pool, held_out = split_indices(len(train), holdout_size, seed)
    return IndexedSubset(train, pool), IndexedSubset(train, held_out), False


def holdout_loader(cfg: dict[str, Any], subset: Dataset, batch_size: int | None = None) -> DataLoader:
    """The held-out training images with the eval transform, in order."""
    return build_loader(
        cfg, "val", batch_size=batch_size, shuffle=False, augment=False, drop_last=False, dataset=subset
    )
