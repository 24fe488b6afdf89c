"""The evaluation set handed to ``npm run zoo:validate --dataset``: images already through the eval
transform, so onnxruntime-node sees exactly the tensors PyTorch was evaluated on.

Format (``server/cli/dataset-file.ts``, little-endian): magic ``AZDATA01``; uint32 header length H;
H bytes of UTF-8 JSON header, space-padded so ``12 + H`` is a multiple of 4; N*C*S*S float32 images
(NCHW); N int32 labels. The header repeats the input contract (channels, size, mean, std,
resizeShortSide, interpolation) so the validator only uses it for models that share it.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

MAGIC = b"AZDATA01"


@dataclass
class EvalTensors:
    """The evaluation samples in memory: ``images [N, C, S, S]`` float32, ``labels [N]`` int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: int
    class_names: list[str]
    dataset: str
    split: str
    full_split: bool  # every sample of the split, in order (else an evenly spaced subset)
    split_size: int

    def batches(self, batch_size: int):
        for start in range(0, self.images.shape[0], batch_size):
            yield self.images[start : start + batch_size], self.labels[start : start + batch_size]

    @property
    def count(self) -> int:
        return int(self.images.shape[0])


def input_header(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``input`` object of the header from a space's data contract."""
    return {
        "channels": int(data["channels"]),
        "size": int(data["input_size"]),
        "mean": [float(v) for v in data["mean"]],
        "std": [float(v) for v in data["std"]],
        "resizeShortSide": int(data["resize_short_side"]),
        "interpolation": str(data["interpolation"]),
    }


def write_dataset_file(path: Path, tensors: EvalTensors, data_contract: Mapping[str, Any]) -> int:
    """Write ``tensors`` in the validator's format (atomically); returns the file size in bytes."""
    images = tensors.images.detach().cpu().contiguous().numpy().astype("<f4", copy=False)
    labels = tensors.labels.detach().cpu().numpy().astype("<i4")
    n, c, h, w = images.shape
    header = {
        "version": 1,
        "count": int(n),
        "shape": [int(n), int(c), int(h), int(w)],
        "dtype": "float32",
        "labelDtype": "int32",
        "classes": int(tensors.classes),
        "input": input_header(data_contract),
        "description": f"{tensors.dataset} {tensors.split}"
        + ("" if tensors.full_split else f" ({n} of {tensors.split_size}, evenly spaced)")
        + ", eval transform applied",
    }
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((-(12 + len(text))) % 4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(MAGIC)
        handle.write(struct.pack("<I", len(text)))
        handle.write(text)
        handle.write(images.tobytes())
        handle.write(labels.tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path.stat().st_size


def read_dataset_file(path: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(header, images, labels) -- the inverse of `write_dataset_file` (tests, debugging)."""
    raw = Path(path).read_bytes()
    if raw[:8] != MAGIC:
        raise ValueError(f"{path} is not a dataset file")
    (length,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + length].decode("utf-8"))
    n, c, h, w = header["shape"]
    start = 12 + length
    images = np.frombuffer(raw, dtype="<f4", count=n * c * h * w, offset=start).reshape(n, c, h, w)
    labels = np.frombuffer(raw, dtype="<i4", count=n, offset=start + 4 * n * c * h * w)
    return header, images, labels
