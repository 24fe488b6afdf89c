"""Latency lookup table: per-unit latencies measured on this host, summed to predict an arch.

A sub-network is cut into *units* whose compute depends only on a handful of numbers: the input
resize, the stem, every MBConv or fused-MBConv block (input/output width, kernel, expand ratio,
stride, SE, fused and input size) and the head (expand conv, pooling, feature conv, classifier).
Each unit is built from the same static ops the exported network runs (BN folded, eval mode),
timed on this host, and stored under a key that spells those numbers out, so one table serves
every arch (and every space) that contains the unit. Predicting an arch sums its units; the error
of that additivity assumption is small for sequential CNNs on one device and is what search needs
(a ranking and a constraint, not an absolute figure).

Units are timed with the CPU caches flushed before every run (see `CacheFlusher`); the minimum of
the timed runs is stored (see `measure_latency_ms`). Tables are JSON (``host``, ``torch``,
``threads``, ``batchSize``, ``cacheFlushMb``, ``statistic``, ``entries``: key -> ms) and only
valid for the host and thread count that measured them.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn

from ..errors import UserError
from ..export.bn_folding import fold_batchnorm
from ..models.static_net import MBConvBlock
from ..space import ArchConfig, SearchSpace, StageSpec, conv_out_size
from .bn_calibration import model_device

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Unit:
    """One timed piece of a network: ``kind`` and the numbers that determine its compute."""

    kind: str  # resize | stem | block | head
    values: tuple[tuple[str, int], ...]

    @property
    def key(self) -> str:
        return self.kind + ":" + ":".join(f"{name}{value}" for name, value in self.values)

    def get(self, name: str) -> int:
        return dict(self.values)[name]


def _unit(kind: str, **values: int) -> Unit:
    return Unit(kind, tuple((name, int(value)) for name, value in values.items()))


def _block_unit(
    c_in: int, c_out: int, kernel: int, ratio: int, stride: int, spec: StageSpec, hw: int
) -> Unit:
    # Fused blocks carry f1; MBConv keys stay as they were, so existing tables remain valid.
    extra = {"f": 1} if spec.fused else {}
    return _unit("block", i=c_in, o=c_out, k=kernel, t=ratio, s=stride, se=int(spec.se), hw=hw, **extra)


def _head_unit(space: SearchSpace, c_in: int, width: int, hw: int) -> Unit:
    # Other poolings than the average carry a key of their own; average-pool keys stay as they were.
    extra = dict(space.head_pooling.latency_key)
    return _unit("head", i=c_in, e=space.head_expand * c_in, o=width, hw=hw, n=space.num_classes, **extra)


def arch_units(space: SearchSpace, arch: ArchConfig, input_size: int | None = None) -> list[Unit]:
    """The units of ``arch`` in execution order (``input_size`` defaults to the data contract's)."""
    space.validate(arch)
    input_size = int(space.data["input_size"]) if input_size is None else input_size
    units = []
    if input_size != arch.resolution:
        units.append(_unit("resize", c=space.in_channels, i=input_size, r=arch.resolution))
    units.append(
        _unit(
            "stem",
            c=space.in_channels,
            o=arch.width[0],
            k=space.stem_kernel,
            s=space.stem_stride,
            r=arch.resolution,
        )
    )
    size = conv_out_size(arch.resolution, space.stem_kernel, space.stem_stride)
    c_in = arch.width[0]
    for s, spec in enumerate(space.stages):
        c_out, kernel, ratio = arch.width[s + 1], arch.kernel_size[s], arch.expand_ratio[s]
        for b in range(arch.depth[s]):
            stride = spec.stride if b == 0 else 1
            units.append(_block_unit(c_in, c_out, kernel, ratio, stride, spec, size))
            size, c_in = conv_out_size(size, kernel, stride), c_out
    units.append(_head_unit(space, c_in, arch.width[-1], size))
    return units


def space_units(space: SearchSpace, input_size: int | None = None) -> list[Unit]:
    """Every unit any arch of ``space`` can contain (the table that makes any arch predictable)."""
    input_size = int(space.data["input_size"]) if input_size is None else input_size
    units: dict[str, Unit] = {}

    def add(unit: Unit) -> None:
        units.setdefault(unit.key, unit)

    for res in space.resolutions:
        if input_size != res:
            add(_unit("resize", c=space.in_channels, i=input_size, r=res))
        for stem in space.stem_widths:
            add(_unit("stem", c=space.in_channels, o=stem, k=space.stem_kernel, s=space.stem_stride, r=res))
        size = conv_out_size(res, space.stem_kernel, space.stem_stride)
        in_widths = space.stem_widths
        for spec in space.stages:
            for kernel in spec.kernel_sizes:
                for ratio in spec.expand_ratios:
                    for c_out in spec.widths:
                        for c_in in in_widths:
                            add(_block_unit(c_in, c_out, kernel, ratio, spec.stride, spec, size))
                        if max(spec.depths) > 1:
                            inner = conv_out_size(size, kernel, spec.stride)
                            add(_block_unit(c_out, c_out, kernel, ratio, 1, spec, inner))
            # The output size of a stage does not depend on its kernel ("same" padding).
            size = conv_out_size(size, spec.kernel_sizes[0], spec.stride)
            in_widths = spec.widths
        for c_in in space.stages[-1].widths:
            for width in space.head_widths:
                add(_head_unit(space, c_in, width, size))
    return list(units.values())


class _Resize(nn.Module):
    def __init__(self, resolution: int):
        super().__init__()
        self.resolution = resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(
            x, size=(self.resolution, self.resolution), mode="bicubic", align_corners=False
        )


class _Head(nn.Module):
    """Same ops as StaticAlphaNet's head: expand conv+BN+swish, pool, feature conv+swish, linear."""

    def __init__(
        self, c_in: int, expand: int, width: int, classes: int, gdc_size: int = 0, flatten_size: int = 0
    ):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c_in, expand, 1, bias=False), nn.BatchNorm2d(expand), nn.SiLU())
        self.pool = None
        if gdc_size:
            conv = nn.Conv2d(expand, expand, gdc_size, groups=expand, bias=False)
            self.pool = nn.Sequential(conv, nn.BatchNorm2d(expand))
        self.feature = nn.Sequential(nn.Conv2d(expand, width, flatten_size or 1, bias=False), nn.SiLU())
        self.classifier = nn.Linear(width, classes)
        self.mean_pool = not gdc_size and not flatten_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x)
        if self.pool is not None:
            x = self.pool(x)
        elif self.mean_pool:
            x = x.mean((2, 3), keepdim=True)
        return self.classifier(torch.flatten(self.feature(x), 1))


def build_unit(unit: Unit) -> tuple[nn.Module, tuple[int, int, int]]:
    """The module of ``unit`` and its input shape without the batch dim (C, H, W)."""
    v = dict(unit.values)
    if unit.kind == "resize":
        return _Resize(v["r"]), (v["c"], v["i"], v["i"])
    if unit.kind == "stem":
        k = v["k"]
        module = nn.Sequential(
            nn.Conv2d(v["c"], v["o"], k, v["s"], k // 2, bias=False), nn.BatchNorm2d(v["o"]), nn.SiLU()
        )
        return module, (v["c"], v["r"], v["r"])
    if unit.kind == "block":
        block = MBConvBlock(v["i"], v["o"], v["k"], v["t"], v["s"], bool(v["se"]), bool(v.get("f", 0)))
        return block, (v["i"], v["hw"], v["hw"])
    if unit.kind == "head":
        head = _Head(
            v["i"], v["e"], v["o"], v["n"], v["hw"] if v.get("g") else 0, v["hw"] if v.get("fl") else 0
        )
        return head, (v["i"], v["hw"], v["hw"])
    raise ValueError(f"unknown unit kind '{unit.kind}'")


class CacheFlusher:
    """Evicts (part of) the CPU caches by writing a buffer before each timed run.

    Timed alone and repeatedly, a unit runs with its weights hot in L1/L2; inside a whole network
    they were last touched one inference ago, with every other layer's weights and activations
    streamed through the caches since. At batch 1 on small inputs a network is then partly bound
    by weight fetches, and hot-cache unit timings undercount it (measured on this 2-core host
    under load: 2.7 ms of units vs 7 ms for the largest Fashion-MNIST network). Writing a buffer
    before every timed run puts each unit in the state it meets inside the network.
    """

    def __init__(self, megabytes: int):
        self.buffer = torch.zeros(megabytes * (1 << 20) // 4) if megabytes > 0 else None

    def __call__(self) -> None:
        if self.buffer is not None:
            self.buffer.add_(1.0)


# Larger than the per-core L2 of common CPUs (2 MiB here) and well below the shared last-level
# cache (32 MiB here): a network's weights leave L2 between two uses of a layer but mostly stay
# in the last-level cache. Use more than the last-level cache for networks far larger than it.
DEFAULT_CACHE_FLUSH_MB = 8


STATISTICS = {"min": min, "median": statistics.median}


@torch.no_grad()
def measure_latency_ms(
    module: nn.Module,
    inputs: torch.Tensor,
    warmup: int = 3,
    repeats: int = 20,
    flush: CacheFlusher | None = None,
    statistic: str = "min",
) -> float:
    """Wall time of ``module(inputs)`` in milliseconds (eval mode, no grad): the minimum (default)
    or median over ``repeats`` timed runs, the caches flushed before every run when ``flush`` is
    given. Interference from other processes only ever adds time, so on a shared host the minimum
    is the most reproducible estimate of a unit's own cost."""
    module.eval()
    for _ in range(warmup):
        module(inputs)
    times = []
    for _ in range(repeats):
        if flush is not None:
            flush()
        start = time.perf_counter()
        module(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return STATISTICS[statistic](times)


def measure_unit(
    unit: Unit,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 20,
    flush: CacheFlusher | None = None,
    statistic: str = "min",
) -> float:
    """Latency of one unit as exported: BN folded, eval mode, float32 on CPU."""
    module, shape = build_unit(unit)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, *shape, generator=generator)
    module = module.eval()
    if any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        module, _ = fold_batchnorm(module, inputs)
    return measure_latency_ms(module.to(model_device(module)), inputs, warmup, repeats, flush, statistic)


def host_description() -> str:
    return f"{platform.node()} {platform.machine()} {platform.processor() or platform.system()}".strip()


@dataclass
class LatencyTable:
    """Measured unit latencies (ms) for one host, thread count and batch size."""

    batch_size: int = 1
    threads: int = field(default_factory=torch.get_num_threads)
    host: str = field(default_factory=host_description)
    torch_version: str = torch.__version__
    cache_flush_mb: int = DEFAULT_CACHE_FLUSH_MB
    statistic: str = "min"
    entries: dict[str, float] = field(default_factory=dict)

    def missing(self, units: Iterable[Unit]) -> list[Unit]:
        return [u for u in units if u.key not in self.entries]

    def measure(
        self,
        units: Iterable[Unit],
        warmup: int = 3,
        repeats: int = 20,
        progress: Callable[[int, int, Unit], None] | None = None,
    ) -> int:
        """Measure the units not in the table yet; returns how many were measured."""
        todo = {u.key: u for u in self.missing(units)}
        flush = CacheFlusher(self.cache_flush_mb) if todo else None
        for index, unit in enumerate(todo.values()):
            if progress is not None:
                progress(index, len(todo), unit)
            self.entries[unit.key] = measure_unit(
                unit, self.batch_size, warmup, repeats, flush, self.statistic
            )
        return len(todo)

    def predict(self, space: SearchSpace, arch: ArchConfig, input_size: int | None = None) -> float:
        """Predicted latency (ms) of ``arch``: the sum of its units."""
        units = arch_units(space, arch, input_size)
        missing = self.missing(units)
        if missing:
            raise UserError(
                f"latency table lacks {len(missing)} unit(s) of this arch (first: {missing[0].key}); "
                "rebuild it for this space"
            )
        return sum(self.entries[u.key] for u in units)

    def to_dict(self) -> dict:
        return {
            "formatVersion": FORMAT_VERSION,
            "host": self.host,
            "torch": self.torch_version,
            "threads": self.threads,
            "batchSize": self.batch_size,
            "cacheFlushMb": self.cache_flush_mb,
            "statistic": self.statistic,
            "entries": dict(sorted(self.entries.items())),
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "LatencyTable":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"latency table not found: {path}")
        try:
            data = json.loads(path.read_text())
            if data.get("formatVersion") != FORMAT_VERSION:
                raise ValueError(f"formatVersion must be {FORMAT_VERSION}")
            if data.get("statistic") not in STATISTICS:
                raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}")
            entries = {str(k): float(v) for k, v in data["entries"].items()}
            return cls(
                batch_size=int(data["batchSize"]),
                threads=int(data["threads"]),
                host=str(data["host"]),
                torch_version=str(data["torch"]),
                cache_flush_mb=int(data["cacheFlushMb"]),
                statistic=str(data["statistic"]),
                entries=entries,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"invalid latency table {path}: {exc}") from None
