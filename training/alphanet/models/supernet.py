"""The weight-sharing AlphaNet supernet.

Weights are allocated for the largest choice of every gene; `set_active` selects a sub-network
(first-k channels, centre kernel crop, first d blocks of every stage, input resized to the active
resolution). `extract` copies the active sub-network into a standalone `StaticAlphaNet`.

Module names mirror `StaticAlphaNet` (``stem``, ``stages.<s>.<b>.{expand,depthwise,se,project,
shortcut}``, ``head.{expand,pool,feature}``, ``classifier``) so extraction is a per-tensor slice.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..space import ArchConfig, SearchSpace, mid_channels, se_channels
from .dynamic_ops import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicDepthwiseConv2d,
    DynamicLinear,
    DynamicSqueezeExcite,
)
from .layers import drop_connect, resize_input, shortcut_pool, swish


class _DynamicConvBN(nn.Module):
    def __init__(self, conv: nn.Module, channels: int, bn_eps: float, bn_momentum: float | None):
        super().__init__()
        self.conv = conv
        self.bn = DynamicBatchNorm2d(channels, eps=bn_eps, momentum=bn_momentum)


class _DynamicShortcut(nn.Module):
    """Identity, or avg-pool(stride) then a bias-free 1x1 conv when the widths differ."""

    def __init__(self, max_in: int, max_out: int, stride: int, needs_conv: bool):
        super().__init__()
        self.stride = stride
        self.conv = DynamicConv2d(max_in, max_out) if needs_conv else None

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        if self.stride > 1:
            x = shortcut_pool(x, self.stride)
        if x.shape[1] != out_channels:
            x = self.conv(x, out_channels)
        return x


class DynamicMBConvBlock(nn.Module):
    """MBConv: [1x1 expand+BN+swish] -> kxk depthwise+BN+swish -> [SE] -> 1x1 project+BN, + shortcut.

    Fused-MBConv (``fused``): kxk dense expand+BN+swish (strided) -> [SE] -> 1x1 project+BN, +
    shortcut; smaller kernels are the centre crop of the largest, as for depthwise kernels.
    """

    def __init__(
        self,
        in_widths: tuple[int, ...],
        out_widths: tuple[int, ...],
        kernel_sizes: tuple[int, ...],
        expand_ratios: tuple[int, ...],
        stride: int,
        use_se: bool,
        bn_eps: float,
        bn_momentum: float | None,
        fused: bool = False,
    ):
        super().__init__()
        self.stride = stride
        max_in, max_out = max(in_widths), max(out_widths)
        max_mid = max(mid_channels(c, t) for c in in_widths for t in expand_ratios)
        self.expand = None
        self.depthwise = None
        if fused:
            conv = DynamicConv2d(max_in, max_mid, max(kernel_sizes), stride)
            self.expand = _DynamicConvBN(conv, max_mid, bn_eps, bn_momentum)
        else:
            if max(expand_ratios) > 1:
                conv = DynamicConv2d(max_in, max_mid)
                self.expand = _DynamicConvBN(conv, max_mid, bn_eps, bn_momentum)
            self.depthwise = _DynamicConvBN(
                DynamicDepthwiseConv2d(max_mid, max(kernel_sizes), stride), max_mid, bn_eps, bn_momentum
            )
        self.se = DynamicSqueezeExcite(max_mid, se_channels(max_mid)) if use_se else None
        self.project = _DynamicConvBN(DynamicConv2d(max_mid, max_out), max_out, bn_eps, bn_momentum)
        needs_conv = any(a != b for a in in_widths for b in out_widths)
        self.shortcut = _DynamicShortcut(max_in, max_out, stride, needs_conv)

    def is_identity(self, in_channels: int, out_channels: int) -> bool:
        return self.stride == 1 and in_channels == out_channels

    def forward(
        self, x: torch.Tensor, out_channels: int, kernel_size: int, expand_ratio: int, drop_rate: float
    ) -> torch.Tensor:
        in_channels = x.shape[1]
        h = x
        mid = mid_channels(in_channels, expand_ratio)
        if self.depthwise is None:
            h = swish(self.expand.bn(self.expand.conv(h, mid, kernel_size)))
        else:
            if expand_ratio != 1:
                h = swish(self.expand.bn(self.expand.conv(h, mid)))
            h = swish(self.depthwise.bn(self.depthwise.conv(h, kernel_size)))
        if self.se is not None:
            h = self.se(h, se_channels(h.shape[1]))
        h = self.project.bn(self.project.conv(h, out_channels))
        if self.is_identity(in_channels, out_channels):
            return x + drop_connect(h, drop_rate, self.training)
        return h + self.shortcut(x, out_channels)


class AlphaNetSupernet(nn.Module):
    """Weight-sharing supernet over a `SearchSpace`; one sub-network is active at a time."""

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int | None = None,
        bn_eps: float = 1e-5,
        bn_momentum: float | None = 0.0,
    ):
        super().__init__()
        self.space = space
        self.num_classes = space.num_classes if num_classes is None else num_classes
        self.dropout_rate = 0.0
        self.drop_connect_rate = 0.0
        self.drop_connect_only_last_two_stages = True

        max_stem = max(space.stem_widths)
        self.stem = _DynamicConvBN(
            DynamicConv2d(space.in_channels, max_stem, space.stem_kernel, space.stem_stride),
            max_stem,
            bn_eps,
            bn_momentum,
        )
        self.stages = nn.ModuleList()
        in_widths = space.stem_widths
        for spec in space.stages:
            blocks = nn.ModuleList()
            for b in range(max(spec.depths)):
                blocks.append(
                    DynamicMBConvBlock(
                        in_widths if b == 0 else spec.widths,
                        spec.widths,
                        spec.kernel_sizes,
                        spec.expand_ratios,
                        spec.stride if b == 0 else 1,
                        spec.se,
                        bn_eps,
                        bn_momentum,
                        spec.fused,
                    )
                )
            self.stages.append(blocks)
            in_widths = spec.widths
        last = max(space.stages[-1].widths)
        head_mid = space.head_expand * last
        self.head = nn.Module()
        self.head.expand = _DynamicConvBN(DynamicConv2d(last, head_mid), head_mid, bn_eps, bn_momentum)
        self.head.pool = None
        pooling = space.head_pooling
        # Positional heads cover the final map: one size for all resolutions (validated).
        final = space.final_size(space.resolutions[0])
        if pooling.depthwise:
            conv = DynamicDepthwiseConv2d(head_mid, final, 1, same=False)
            self.head.pool = _DynamicConvBN(conv, head_mid, bn_eps, bn_momentum)
        if pooling.feature_covers_map:  # no padding: one output position, as a flatten + FC
            self.head.feature = DynamicConv2d(head_mid, max(space.head_widths), final, same=False)
        else:
            self.head.feature = DynamicConv2d(head_mid, max(space.head_widths))
        self.classifier = DynamicLinear(max(space.head_widths), self.num_classes)
        self._zero_last_bn_gamma()
        self._arch = space.max_arch()

    def _zero_last_bn_gamma(self) -> None:
        # Each block starts as (nearly) its shortcut, as the reference's zero_residual_block_bn_weights.
        for blocks in self.stages:
            for block in blocks:
                nn.init.zeros_(block.project.bn.weight)

    # ---- sub-network selection -----------------------------------------------------------
    def set_active(self, arch: ArchConfig) -> None:
        self.space.validate(arch)
        self._arch = arch

    @property
    def active_arch(self) -> ArchConfig:
        return self._arch

    def set_dropout(self, rate: float) -> None:
        """Dropout before the classifier (the reference uses it on the largest subnet only)."""
        self.dropout_rate = float(rate)

    def set_drop_connect(self, rate: float, only_last_two_stages: bool = True) -> None:
        """Per-block drop-connect base rate; block i gets rate * i / total_blocks on identity blocks."""
        self.drop_connect_rate = float(rate)
        self.drop_connect_only_last_two_stages = bool(only_last_two_stages)

    def _block_drop_rate(self, stage: int, global_index: int) -> float:
        if self.drop_connect_rate <= 0.0:
            return 0.0
        if self.drop_connect_only_last_two_stages and stage < len(self.stages) - 2:
            return 0.0
        return self.drop_connect_rate * global_index / self.space.total_blocks

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arch = self._arch
        x = resize_input(x, arch.resolution)
        x = swish(self.stem.bn(self.stem.conv(x, arch.width[0])))
        global_index = 0
        for s, blocks in enumerate(self.stages):
            for b, block in enumerate(blocks):
                if b < arch.depth[s]:
                    rate = self._block_drop_rate(s, global_index)
                    x = block(x, arch.width[s + 1], arch.kernel_size[s], arch.expand_ratio[s], rate)
                global_index += 1
        last = arch.width[-2]
        x = swish(self.head.expand.bn(self.head.expand.conv(x, self.space.head_expand * last)))
        if self.head.pool is not None:
            x = self.head.pool.bn(self.head.pool.conv(x, x.shape[-1]))
        elif self.space.head_pooling.mean:
            x = x.mean((2, 3), keepdim=True)
        x = swish(self.head.feature(x, arch.width[-1]))
        x = torch.flatten(x, 1)
        if self.dropout_rate > 0.0:
            x = F.dropout(x, self.dropout_rate, self.training)
        return self.classifier(x)

    # ---- extraction ------------------------------------------------------------------------
    def extract(self, arch: ArchConfig | None = None) -> "StaticAlphaNet":  # noqa: F821
        """A standalone copy of ``arch`` (default: the active arch) with sliced weights and BN stats."""
        from .static_net import StaticAlphaNet

        arch = self._arch if arch is None else arch
        self.space.validate(arch)
        static = StaticAlphaNet(self.space, arch, self.num_classes)
        source = self.state_dict()
        target = static.state_dict()
        sliced = {}
        for key, dest in target.items():
            if key not in source:
                raise RuntimeError(f"extract: supernet has no tensor '{key}'")
            sliced[key] = _slice_like(source[key], dest.shape)
        static.load_state_dict(sliced)
        for module in static.modules():
            if isinstance(module, nn.BatchNorm2d):
                # Same eps as the supernet; the momentum is set by whoever recalibrates/fine-tunes.
                module.eps = self.stem.bn.eps
        return static.to(next(self.parameters()).device).train(self.training)


def _slice_like(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """First-k slice along every dim, except the two spatial dims of 4-D kernels (centre crop)."""
    if tensor.dim() != len(shape):
        raise RuntimeError(f"extract: rank mismatch {tuple(tensor.shape)} vs {tuple(shape)}")
    out = tensor
    for dim, size in enumerate(shape):
        if tensor.dim() == 4 and dim >= 2:
            start = (tensor.shape[dim] - size) // 2
        else:
            start = 0
        out = out.narrow(dim, start, size)
    return out.detach().clone()
