"""Elastic layers of the supernet: weights are allocated at the largest choice and a sub-network
uses the first k channels (and the centre crop of the largest depthwise kernel)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import hard_sigmoid


def centre_crop_kernel(weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The centre ``kernel_size`` x ``kernel_size`` window of a larger kernel."""
    full = weight.shape[-1]
    if kernel_size > full:
        raise ValueError(f"kernel {kernel_size} larger than allocated {full}")
    start = (full - kernel_size) // 2
    return weight[..., start : start + kernel_size, start : start + kernel_size]


class DynamicConv2d(nn.Module):
    """Dense conv (no groups) whose input and output widths are the first channels of the weight;
    a smaller kernel, when asked for, is the centre crop of the allocated one."""

    def __init__(
        self,
        max_in: int,
        max_out: int,
        kernel_size: int = 1,
        stride: int = 1,
        bias: bool = False,
        same: bool = True,
    ):
        super().__init__()
        self.stride = stride
        self.same = same  # "same" padding (kernel // 2), else none (a kernel covering the whole map)
        self.padding = kernel_size // 2 if same else 0
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(max_out)) if bias else None
        # PyTorch's default conv initialisation, as the reference relies on.
        ref = nn.Conv2d(max_in, max_out, kernel_size, bias=bias)
        with torch.no_grad():
            self.weight.copy_(ref.weight)
            if bias:
                self.bias.copy_(ref.bias)

    def forward(self, x: torch.Tensor, out_channels: int, kernel_size: int | None = None) -> torch.Tensor:
        weight = self.weight[:out_channels, : x.shape[1]]
        padding = self.padding
        if kernel_size is not None and kernel_size != weight.shape[-1]:
            weight = centre_crop_kernel(weight, kernel_size)
            padding = kernel_size // 2 if self.same else 0
        bias = None if self.bias is None else self.bias[:out_channels]
        return F.conv2d(x, weight, bias, self.stride, padding)


class DynamicDepthwiseConv2d(nn.Module):
    """Depthwise conv over the first channels; smaller kernels are the centre crop of the largest."""

    def __init__(self, max_channels: int, max_kernel: int, stride: int, same: bool = True):
        super().__init__()
        self.stride = stride
        self.same = same  # "same" padding (kernel // 2), else none (a global depthwise conv)
        ref = nn.Conv2d(max_channels, max_channels, max_kernel, groups=max_channels, bias=False)
        self.weight = nn.Parameter(ref.weight.detach().clone())

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        channels = x.shape[1]
        weight = centre_crop_kernel(self.weight[:channels], kernel_size)
        padding = kernel_size // 2 if self.same else 0
        return F.conv2d(x, weight, None, self.stride, padding, 1, channels)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first channels of its parameters and buffers.

    The reference trains with BN momentum 0: batch statistics normalise every training forward
    and the running statistics never move, so they must be recalibrated per sub-network before
    evaluation. ``momentum=0.0`` reproduces that (and skips the no-op update); any other momentum,
    including ``None`` (cumulative average, used for recalibration), updates the sliced running
    statistics in place exactly like `nn.BatchNorm2d`. In eval mode the sliced running statistics
    are used.
    """

    def __init__(self, max_channels: int, eps: float = 1e-5, momentum: float | None = 0.0):
        super().__init__(max_channels, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        weight, bias = self.weight[:c], self.bias[:c]
        if self.training and self.momentum == 0.0:
            return F.batch_norm(x, None, None, weight, bias, True, 0.0, self.eps)
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return F.batch_norm(
            x, self.running_mean[:c], self.running_var[:c], weight, bias, self.training, factor, self.eps
        )


class DynamicSqueezeExcite(nn.Module):
    """SE: pool -> 1x1 (bias) to make_divisible(C//4, 8) -> ReLU -> 1x1 (bias) -> hard-sigmoid gate."""

    def __init__(self, max_channels: int, max_reduced: int):
        super().__init__()
        self.reduce = DynamicConv2d(max_channels, max_reduced, bias=True)
        self.expand = DynamicConv2d(max_reduced, max_channels, bias=True)

    def forward(self, x: torch.Tensor, reduced: int) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(self.reduce(s, reduced))
        s = hard_sigmoid(self.expand(s, x.shape[1]))
        return x * s


class DynamicLinear(nn.Module):
    """Linear layer reading the first input features; all outputs (classes) are always used."""

    def __init__(self, max_in: int, out_features: int):
        super().__init__()
        ref = nn.Linear(max_in, out_features)
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)
