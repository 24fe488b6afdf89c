"""A standalone AlphaNet sub-network built from plain nn.Conv2d / nn.BatchNorm2d / nn.Linear.

This is what `AlphaNetSupernet.extract` returns and what gets exported to ONNX: no dynamic ops,
no unused weights (a shortcut conv exists only where the widths differ). It resizes its input
(bicubic) to the arch's resolution when the fed size differs, exactly as the supernet does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..space import ArchConfig, SearchSpace, mid_channels, se_channels
from .layers import hard_sigmoid, resize_input, shortcut_pool, swish


class _ConvBN(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, same: bool = True
    ):
        super().__init__()
        padding = kernel // 2 if same else 0
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        reduced = se_channels(channels)
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * hard_sigmoid(self.expand(F.relu(self.reduce(s))))


class _Shortcut(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = shortcut_pool(x, self.stride)
        return x if self.conv is None else self.conv(x)


class MBConvBlock(nn.Module):
    """MBConv, or fused-MBConv (``fused``: one dense kxk expand conv, no depthwise conv)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        expand_ratio: int,
        stride: int,
        use_se: bool,
        fused: bool = False,
    ):
        super().__init__()
        mid = mid_channels(c_in, expand_ratio)
        if fused:
            self.expand = _ConvBN(c_in, mid, kernel, stride)
            self.depthwise = None
        else:
            self.expand = _ConvBN(c_in, mid) if expand_ratio != 1 else None
            self.depthwise = _ConvBN(mid, mid, kernel, stride, groups=mid)
        self.se = _SqueezeExcite(mid) if use_se else None
        self.project = _ConvBN(mid, c_out)
        self.identity = stride == 1 and c_in == c_out
        self.shortcut = None if self.identity else _Shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.expand is None else swish(self.expand(x))
        if self.depthwise is not None:
            h = swish(self.depthwise(h))
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return h + (x if self.identity else self.shortcut(x))


class StaticAlphaNet(nn.Module):
    """One sub-network of ``space`` as a plain module; output ``[N, num_classes]`` logits."""

    def __init__(self, space: SearchSpace, arch: ArchConfig, num_classes: int | None = None):
        super().__init__()
        space.validate(arch)
        self.space_name = space.name
        self.arch = arch
        self.resolution = arch.resolution
        self.num_classes = space.num_classes if num_classes is None else num_classes
        self.stem = _ConvBN(space.in_channels, arch.width[0], space.stem_kernel, space.stem_stride)
        self.stages = nn.ModuleList()
        c_in = arch.width[0]
        for s, spec in enumerate(space.stages):
            blocks = nn.ModuleList()
            c_out = arch.width[s + 1]
            for b in range(arch.depth[s]):
                stride = spec.stride if b == 0 else 1
                blocks.append(
                    MBConvBlock(
                        c_in, c_out, arch.kernel_size[s], arch.expand_ratio[s], stride, spec.se, spec.fused
                    )
                )
                c_in = c_out
            self.stages.append(blocks)
        head_mid = space.head_expand * c_in
        self.head = nn.Module()
        self.head.expand = _ConvBN(c_in, head_mid)
        self.head.pool = None
        final, pooling = space.final_size(arch.resolution), space.head_pooling
        if pooling.depthwise:
            self.head.pool = _ConvBN(head_mid, head_mid, final, groups=head_mid, same=False)
        feature_kernel = final if pooling.feature_covers_map else 1  # no padding: as a flatten + FC
        self.head.feature = nn.Conv2d(head_mid, arch.width[-1], feature_kernel, bias=False)
        self.mean_pool = pooling.mean
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Linear(arch.width[-1], self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = resize_input(x, self.resolution)
        x = swish(self.stem(x))
        for blocks in self.stages:
            for block in blocks:
                x = block(x)
        x = swish(self.head.expand(x))
        if self.head.pool is not None:
            x = self.head.pool(x)
        elif self.mean_pool:
            x = x.mean((2, 3), keepdim=True)
        x = swish(self.head.feature(x))
        x = self.dropout(torch.flatten(x, 1))
        return self.classifier(x)
