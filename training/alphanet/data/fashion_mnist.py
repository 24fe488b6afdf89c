"""Fashion-MNIST from its IDX files (gzip or raw), e.g. ``/usr/share/datasets/fashion-mnist/``."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_PREFIX = {"train": "train", "test": "t10k"}
_DTYPE_CODE_UINT8 = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (``.gz`` or raw) into an array, checking header and size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise UserError(f"missing dataset file: {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"corrupt dataset file {path}: {exc}") from None
    if len(data) < 4:
        raise UserError(f"corrupt IDX file {path}: only {len(data)} bytes")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != _DTYPE_CODE_UINT8 or not 1 <= ndim <= 4:
        raise UserError(f"corrupt IDX file {path}: bad magic {data[:4].hex()} (expected unsigned-byte IDX)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"corrupt IDX file {path}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise UserError(
            f"corrupt IDX file {path}: header says {shape} = {expected} bytes, file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise UserError(f"missing dataset file: {root / (stem + '.gz')} (nor the uncompressed {stem})")


class FashionMNIST(Dataset):
    """Images as uint8 tensors ``[1, 28, 28]`` and int labels; ``classes`` names the labels."""

    classes = CLASSES

    def __init__(self, root: str | Path, split: str):
        if split not in _PREFIX:
            raise UserError(f"Fashion-MNIST split must be 'train' or 'test', got '{split}'")
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"Fashion-MNIST directory not found: {root}")
        prefix = _PREFIX[split]
        images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise UserError(
                f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match"
            )
        if labels.size and int(labels.max()) >= len(CLASSES):
            raise UserError(f"Fashion-MNIST {split}: label {int(labels.max())} out of range")
        self.images = torch.from_numpy(images.copy()).unsqueeze(1)  # [N, 1, H, W] uint8
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.targets = self.labels.tolist()

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.targets[index]
