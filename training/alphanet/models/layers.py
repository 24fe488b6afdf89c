"""Small building blocks shared by the supernet and the static network."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x) (the reference's memory-efficient swish, same values)."""
    return F.silu(x)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """relu6(x + 3) / 6, the SE gate."""
    return F.relu6(x + 3.0) / 6.0


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Drop whole residual branches per sample with probability ``rate`` (rescaled to keep the mean)."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).add_(keep).floor_()
    return x / keep * mask


def resize_input(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bicubic resize to the network's own resolution when the fed size differs (as the reference)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bicubic", align_corners=False)


def shortcut_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Average-pool a downsampling shortcut, padding odd sizes so it matches the conv output size."""
    padding = 0 if x.shape[-1] % 2 == 0 else 1
    return F.avg_pool2d(x, stride, padding=padding)
