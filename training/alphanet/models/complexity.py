"""Analytic FLOPs and parameters of a sub-network, counted as the reference does.

FLOPs are multiply-accumulates of conv and linear layers only (conv: C_in*C_out*H_out*W_out*k^2 /
groups; linear: in*out), at the arch's own resolution, in millions. SE convs are counted at 1x1
spatial size; projection-shortcut convs, both head convs and a global depthwise head conv are
counted; biases, BN, activations, pooling, the SE gating multiply, residual adds and the input
resize are not.
Params are the effective parameters of the `StaticAlphaNet` (BN affine and biases included, no
unused shortcut conv, running statistics excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..space import ArchConfig, SearchSpace, conv_out_size, mid_channels, se_channels


@dataclass(frozen=True)
class Complexity:
    mflops: float
    params: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mflops": self.mflops, "params": self.params}


class _Counter:
    def __init__(self) -> None:
        self.macs = 0
        self.params = 0

    def conv(self, c_in: int, c_out: int, kernel: int, out_size: int, groups: int = 1, bias: bool = False):
        self.macs += c_in * c_out * kernel * kernel * out_size * out_size // groups
        self.params += c_in * c_out * kernel * kernel // groups + (c_out if bias else 0)

    def bn(self, channels: int) -> None:
        self.params += 2 * channels


def complexity(space: SearchSpace, arch: ArchConfig, num_classes: int | None = None) -> Complexity:
    """MFLOPs (MACs / 1e6) and effective parameter count of ``arch``."""
    space.validate(arch)
    num_classes = space.num_classes if num_classes is None else num_classes
    count = _Counter()
    size = conv_out_size(arch.resolution, space.stem_kernel, space.stem_stride)
    count.conv(space.in_channels, arch.width[0], space.stem_kernel, size)
    count.bn(arch.width[0])
    c_in = arch.width[0]
    for s, spec in enumerate(space.stages):
        c_out, kernel, ratio = arch.width[s + 1], arch.kernel_size[s], arch.expand_ratio[s]
        for b in range(arch.depth[s]):
            stride = spec.stride if b == 0 else 1
            mid = mid_channels(c_in, ratio)
            out_size = conv_out_size(size, kernel, stride)
            if spec.fused:
                count.conv(c_in, mid, kernel, out_size)
                count.bn(mid)
            else:
                if ratio != 1:
                    count.conv(c_in, mid, 1, size)
                    count.bn(mid)
                count.conv(mid, mid, kernel, out_size, groups=mid)
                count.bn(mid)
            if spec.se:
                reduced = se_channels(mid)
                count.conv(mid, reduced, 1, 1, bias=True)
                count.conv(reduced, mid, 1, 1, bias=True)
            count.conv(mid, c_out, 1, out_size)
            count.bn(c_out)
            if c_in != c_out:
                count.conv(c_in, c_out, 1, out_size)
            size, c_in = out_size, c_out
    head_mid = space.head_expand * c_in
    count.conv(c_in, head_mid, 1, size)
    count.bn(head_mid)
    pooling = space.head_pooling
    if pooling.depthwise:
        count.conv(head_mid, head_mid, size, 1, groups=head_mid)
        count.bn(head_mid)
    count.conv(head_mid, arch.width[-1], size if pooling.feature_covers_map else 1, 1)
    count.macs += arch.width[-1] * num_classes
    count.params += arch.width[-1] * num_classes + num_classes
    return Complexity(mflops=count.macs / 1e6, params=count.params)
