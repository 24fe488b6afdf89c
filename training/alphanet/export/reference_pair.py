"""Reference input/output pair written next to every exported model.

The serving side loads ``<name>.reference.json`` = ``{input: {shape, data}, output: {shape, data}}``
and checks that onnxruntime reproduces PyTorch's logits for the same input (parity of the export,
of the bicubic resize and of BN folding). The input is a deterministic batch of 2 images built
like real ones: pixel values k/255 from a seeded generator, normalised with the data contract's
mean/std. Numbers are written as the shortest decimal that round-trips to the same float32, so a
reader that parses them as doubles and stores them in a Float32Array gets the exact tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

REFERENCE_BATCH = 2
REFERENCE_SEED = 20240607


def reference_input(channels: int, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A deterministic ``[2, channels, size, size]`` float32 batch of normalised pseudo-images."""
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean/std need {channels} values, got {len(mean)}/{len(std)}")
    generator = torch.Generator().manual_seed(REFERENCE_SEED)
    pixels = torch.randint(0, 256, (REFERENCE_BATCH, channels, size, size), generator=generator)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels.to(torch.float32) / 255.0 - mean_t) / std_t


def _float32_json_array(values: np.ndarray) -> str:
    flat = np.asarray(values, dtype=np.float32).ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError("reference tensors must be finite")
    return "[" + ",".join(np.format_float_positional(v, unique=True, trim="-") for v in flat) + "]"


def _tensor_json(tensor: torch.Tensor) -> str:
    array = tensor.detach().cpu().numpy()
    return '{"shape":' + json.dumps(list(array.shape)) + ',"data":' + _float32_json_array(array) + "}"


@torch.no_grad()
def write_reference_pair(model: nn.Module, inputs: torch.Tensor, path: Path) -> torch.Tensor:
    """Run ``model`` (eval mode, CPU) on ``inputs`` and write the pair to ``path``; returns the output."""
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    outputs = model(inputs)
    text = '{"input":' + _tensor_json(inputs) + ',"output":' + _tensor_json(outputs) + "}\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return outputs


def read_reference_pair(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a pair back as float32 arrays (input, output)."""
    data = json.loads(Path(path).read_text())
    pair = []
    for key in ("input", "output"):
        entry = data[key]
        pair.append(np.asarray(entry["data"], dtype=np.float32).reshape(entry["shape"]))
    return pair[0], pair[1]
