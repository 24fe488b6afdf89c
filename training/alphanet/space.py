"""Search spaces as data: architecture configs, space definitions loaded from YAML, sampling.

A space (``alphanet/spaces/<name>.yaml``) describes the stem, the seven MBConv (or fused-MBConv)
stages and the head of an AlphaNet/AttentiveNAS supernet: the choices of every per-stage gene,
the strides, where SE sits, the input resolutions, named architectures and the data contract
(input size, channels, mean/std, resize, interpolation) that evaluation transforms and the zoo
manifest share.

An `ArchConfig` is one sub-network: resolution, 9 widths (stem, mb1..mb7, head), and per-stage
depth, kernel size and expand ratio (7 each), in the reference's snake_case layout.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import UserError
from .settings import read_yaml

SPACES_DIR = Path(__file__).resolve().parent / "spaces"
NUM_STAGES = 7
NUM_WIDTHS = NUM_STAGES + 2  # stem, mb1..mb7, head
ARCH_KEYS = ("resolution", "width", "depth", "kernel_size", "expand_ratio")
# The zoo manifest spells these in camelCase; arch files may use either form.
_CAMEL_TO_SNAKE = {"kernelSize": "kernel_size", "expandRatio": "expand_ratio"}


@dataclass(frozen=True)
class HeadPooling:
    """How the head reads the last feature map, as every part that builds, counts, times or
    describes the head needs it (supernet, static net, FLOPs count, latency units, model card)."""

    name: str
    mean: bool  # a global average before the feature conv (the reference)
    depthwise: bool  # a depthwise conv whose kernel covers the map before the feature conv
    feature_covers_map: bool  # the feature conv's kernel covers the map (= flatten + fully connected)
    latency_key: tuple[tuple[str, int], ...]  # extra key of the latency table's head unit
    departure: str  # how it departs from the reference, for the model card ("" where it does not)

    @property
    def positional(self) -> bool:
        """Weights cover the final map: every resolution must end on one map size."""
        return not self.mean


HEAD_POOLINGS = {
    pooling.name: pooling
    for pooling in (
        HeadPooling("avg", True, False, False, (), ""),
        # A learned weight per channel and position (MobileFaceNet's GDC), for images whose objects
        # sit where the position itself tells something, as Fashion-MNIST's.
        HeadPooling(
            "gdc",
            False,
            True,
            False,
            (("g", 1),),
            "a head that pools by a global depthwise conv (one weight per channel and position) "
            "instead of averaging",
        ),
        # The plain CNN's classifier: the feature layer reads every position of every channel.
        HeadPooling(
            "flatten",
            False,
            False,
            True,
            (("fl", 1),),
            "a head whose feature layer reads the whole final map (flatten + fully connected)",
        ),
    )
}


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Output size of a conv with "same" padding kernel//2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without dropping more than 10%."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def mid_channels(in_channels: int, expand_ratio: float) -> int:
    """Hidden width of an MBConv block (no expand conv, hence no rounding, when t == 1)."""
    if expand_ratio == 1:
        return in_channels
    return make_divisible(round(in_channels * expand_ratio), 8)


def se_channels(mid: int) -> int:
    """Reduced width of a squeeze-excite module."""
    return make_divisible(mid // 4, 8)


@dataclass(frozen=True)
class ArchConfig:
    """One sub-network of a space (all tuples; hashable)."""

    resolution: int
    width: tuple[int, ...]
    depth: tuple[int, ...]
    kernel_size: tuple[int, ...]
    expand_ratio: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "width": list(self.width),
            "depth": list(self.depth),
            "kernel_size": list(self.kernel_size),
            "expand_ratio": list(self.expand_ratio),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchConfig":
        """Build from the reference layout (snake_case; camelCase manifest keys accepted)."""
        if not isinstance(data, dict):
            raise UserError(
                f"arch must be a mapping with keys {', '.join(ARCH_KEYS)}, got {type(data).__name__}"
            )
        data = {_CAMEL_TO_SNAKE.get(k, k): v for k, v in data.items() if k != "space"}
        missing = [k for k in ARCH_KEYS if k not in data]
        unknown = sorted(set(data) - set(ARCH_KEYS))
        if missing or unknown:
            raise UserError(f"arch: missing keys {missing or '[]'}, unknown keys {unknown or '[]'}")
        lengths = {
            "width": NUM_WIDTHS,
            "depth": NUM_STAGES,
            "kernel_size": NUM_STAGES,
            "expand_ratio": NUM_STAGES,
        }
        for key, length in lengths.items():
            value = data[key]
            if not isinstance(value, (list, tuple)) or len(value) != length:
                raise UserError(f"arch.{key} must be a list of {length} integers, got {value!r}")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise UserError(f"arch.{key} must hold integers, got {value!r}")
        if not isinstance(data["resolution"], int) or isinstance(data["resolution"], bool):
            raise UserError(f"arch.resolution must be an integer, got {data['resolution']!r}")
        return cls(
            resolution=data["resolution"],
            width=tuple(data["width"]),
            depth=tuple(data["depth"]),
            kernel_size=tuple(data["kernel_size"]),
            expand_ratio=tuple(data["expand_ratio"]),
        )


@dataclass(frozen=True)
class StageSpec:
    """Choices of one MBConv stage; every block of a stage shares kernel and expand ratio.

    ``fused`` stages use fused-MBConv blocks (EfficientNetV2): the 1x1 expand and the kxk
    depthwise conv become one dense kxk conv, which pays off at high resolution and low width.
    """

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[int, ...]
    stride: int
    se: bool
    fused: bool = False


@dataclass(frozen=True)
class Gene:
    """One independently chosen value of an arch: ``field`` (and ``index`` for per-stage lists)."""

    field: str
    index: int | None
    options: tuple[int, ...]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    stem_widths: tuple[int, ...]
    stem_kernel: int
    stem_stride: int
    stages: tuple[StageSpec, ...]
    head_widths: tuple[int, ...]
    head_expand: int
    head_pool: str  # a key of HEAD_POOLINGS: how the head reads the final feature map
    activation: str
    archs: dict[str, ArchConfig] = field(hash=False, compare=False)
    data: dict[str, Any] = field(hash=False, compare=False)

    # ---- choices -------------------------------------------------------------------------
    def choices(self) -> list[Gene]:
        """All genes in a fixed order: resolution, widths (9), depths, kernel sizes, expand ratios."""
        genes = [Gene("resolution", None, self.resolutions), Gene("width", 0, self.stem_widths)]
        genes += [Gene("width", i + 1, s.widths) for i, s in enumerate(self.stages)]
        genes.append(Gene("width", NUM_WIDTHS - 1, self.head_widths))
        genes += [Gene("depth", i, s.depths) for i, s in enumerate(self.stages)]
        genes += [Gene("kernel_size", i, s.kernel_sizes) for i, s in enumerate(self.stages)]
        genes += [Gene("expand_ratio", i, s.expand_ratios) for i, s in enumerate(self.stages)]
        return genes

    def encode(self, arch: ArchConfig) -> list[int]:
        """Gene values of ``arch`` in the order of `choices()`."""
        values = []
        for gene in self.choices():
            value = getattr(arch, gene.field)
            values.append(value if gene.index is None else value[gene.index])
        return values

    def decode(self, values: Sequence[int]) -> ArchConfig:
        """Inverse of `encode` (validated)."""
        genes = self.choices()
        if len(values) != len(genes):
            raise UserError(f"expected {len(genes)} gene values, got {len(values)}")
        lists: dict[str, list[int]] = {"width": [0] * NUM_WIDTHS}
        for key in ("depth", "kernel_size", "expand_ratio"):
            lists[key] = [0] * NUM_STAGES
        resolution = 0
        for gene, value in zip(genes, values):
            if gene.index is None:
                resolution = int(value)
            else:
                lists[gene.field][gene.index] = int(value)
        arch = ArchConfig(resolution, *(tuple(lists[k]) for k in ARCH_KEYS[1:]))
        self.validate(arch)
        return arch

    def _pick(self, pick) -> ArchConfig:
        return self.decode([pick(gene.options) for gene in self.choices()])

    def min_arch(self) -> ArchConfig:
        return self._pick(min)

    def max_arch(self) -> ArchConfig:
        return self._pick(max)

    def sample(self, rng: random.Random) -> ArchConfig:
        """Uniform, independent choice of every gene (the reference's random sampler)."""
        return self._pick(rng.choice)

    # ---- lookup / validation -------------------------------------------------------------
    def validate(self, arch: ArchConfig) -> None:
        """Raise `UserError` naming the first field whose value is not a choice of this space."""
        for gene in self.choices():
            value = getattr(arch, gene.field)
            if gene.index is not None:
                value = value[gene.index]
            if value not in gene.options:
                where = gene.field if gene.index is None else f"{gene.field}[{gene.index}]"
                raise UserError(
                    f"arch.{where} = {value} is not a choice of space '{self.name}' "
                    f"(choices: {', '.join(map(str, gene.options))})"
                )

    def named(self, name: str) -> ArchConfig:
        if name == "min":
            return self.min_arch()
        if name == "max":
            return self.max_arch()
        if name not in self.archs:
            known = ", ".join(["min", "max", *self.archs])
            raise UserError(f"unknown arch '{name}' in space '{self.name}' (known: {known})")
        return self.archs[name]

    def resolve(self, spec: str) -> ArchConfig:
        """``min`` | ``max`` | a named arch | a path to a JSON/YAML arch file (validated)."""
        if spec in ("min", "max") or spec in self.archs:
            return self.named(spec)
        path = Path(spec)
        if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
            arch = load_arch_file(path)
            self.validate(arch)
            return arch
        return self.named(spec)

    @property
    def head_pooling(self) -> HeadPooling:
        return HEAD_POOLINGS[self.head_pool]

    def final_size(self, resolution: int) -> int:
        """Side of the last stage's feature map for an input of ``resolution`` px."""
        size = conv_out_size(resolution, self.stem_kernel, self.stem_stride)
        for spec in self.stages:
            size = conv_out_size(size, spec.kernel_sizes[0], spec.stride)  # "same" padding
        return size

    @property
    def total_blocks(self) -> int:
        """Blocks allocated in the supernet (sum of the maximum depths)."""
        return sum(max(s.depths) for s in self.stages)


def load_arch_file(path: Path) -> ArchConfig:
    """Read an arch from JSON or YAML (top level, or under an ``arch`` key)."""
    if not path.is_file():
        raise UserError(f"arch file not found: {path}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UserError(f"cannot parse arch file {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("arch"), dict):
        data = data["arch"]
    try:
        return ArchConfig.from_dict(data)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _int_tuple(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
        raise UserError(f"space {where} must be a non-empty list of integers, got {value!r}")
    return tuple(sorted(set(value)))


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"space {where} must be true or false, got {value!r}")
    return value


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise UserError(f"space: missing key '{where}.{key}'" if where else f"space: missing key '{key}'")
    return mapping[key]


def space_from_dict(name: str, raw: dict[str, Any]) -> SearchSpace:
    """Validate a parsed space YAML and build the `SearchSpace`."""
    if not isinstance(raw, dict):
        raise UserError(f"space '{name}': top level must be a mapping")
    stem = _require(raw, "stem", "")
    head = _require(raw, "head", "")
    raw_stages = _require(raw, "stages", "")
    if not isinstance(raw_stages, list) or len(raw_stages) != NUM_STAGES:
        raise UserError(f"space '{name}': 'stages' must list exactly {NUM_STAGES} stages")
    stages = []
    for i, st in enumerate(raw_stages):
        where = f"stages[{i}]"
        stages.append(
            StageSpec(
                widths=_int_tuple(_require(st, "widths", where), f"{where}.widths"),
                depths=_int_tuple(_require(st, "depths", where), f"{where}.depths"),
                kernel_sizes=_int_tuple(_require(st, "kernel_sizes", where), f"{where}.kernel_sizes"),
                expand_ratios=_int_tuple(_require(st, "expand_ratios", where), f"{where}.expand_ratios"),
                stride=int(_require(st, "stride", where)),
                se=bool(_require(st, "se", where)),
                fused=_flag(st.get("fused", False), f"{where}.fused"),
            )
        )
        if any(k % 2 == 0 for k in stages[-1].kernel_sizes):
            raise UserError(f"space '{name}': {where}.kernel_sizes must be odd")
        if min(stages[-1].depths) < 1:
            raise UserError(f"space '{name}': {where}.depths must be >= 1")
        ratios = stages[-1].expand_ratios
        if 1 in ratios and len(ratios) > 1 and not stages[-1].fused:
            # An MBConv stage either has an expand conv (t > 1) or not; mixing needs two weight
            # layouts. A fused block always has its kxk expand conv, so it may mix them.
            raise UserError(f"space '{name}': {where}.expand_ratios cannot mix 1 with other ratios")
    activation = raw.get("activation", "swish")
    if activation != "swish":
        raise UserError(f"space '{name}': activation '{activation}' is not supported (only swish)")
    space = SearchSpace(
        name=name,
        in_channels=int(_require(raw, "in_channels", "")),
        num_classes=int(_require(raw, "num_classes", "")),
        resolutions=_int_tuple(_require(raw, "resolutions", ""), "resolutions"),
        stem_widths=_int_tuple(_require(stem, "widths", "stem"), "stem.widths"),
        stem_kernel=int(_require(stem, "kernel", "stem")),
        stem_stride=int(_require(stem, "stride", "stem")),
        stages=tuple(stages),
        head_widths=_int_tuple(_require(head, "widths", "head"), "head.widths"),
        head_expand=int(_require(head, "expand", "head")),
        head_pool=head.get("pool", "avg"),
        activation=activation,
        archs={},
        data=dict(_require(raw, "data", "")),
    )
    if space.head_pool not in HEAD_POOLINGS:
        raise UserError(
            f"space '{name}': head.pool must be one of {', '.join(HEAD_POOLINGS)}, got {space.head_pool!r}"
        )
    if space.head_pooling.positional and len({space.final_size(r) for r in space.resolutions}) > 1:
        sizes = {r: space.final_size(r) for r in space.resolutions}
        raise UserError(
            f"space '{name}': head.pool {space.head_pool} needs one final map size for all resolutions, "
            f"got {sizes}"
        )
    for key in ("input_size", "channels", "mean", "std", "resize_short_side", "interpolation"):
        _require(space.data, key, "data")
    if space.data["channels"] != space.in_channels:
        raise UserError(f"space '{name}': data.channels must equal in_channels")
    for arch_name, arch_raw in (raw.get("archs") or {}).items():
        try:
            arch = ArchConfig.from_dict(arch_raw)
            space.validate(arch)
        except UserError as exc:
            raise UserError(f"space '{name}', arch '{arch_name}': {exc}") from None
        space.archs[str(arch_name)] = arch
    return space


def available_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def space_file(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A bundled space's file by name, or a YAML path (relative to ``relative_to`` if given)."""
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return path if relative_to is None or path.is_absolute() else relative_to / path
    path = SPACES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(f"unknown space '{name_or_path}' (available: {', '.join(available_spaces())})")
    return path


def merge_space(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied: mappings merge key by key, anything else (lists
    included: a stage list is replaced whole) replaces the base's value."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_space(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_space(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The parsed space YAML at ``path``, with ``extends: <space name | YAML path>`` resolved: a
    variant names its base and only what differs (a pilot of one change to a bundled space)."""
    raw = read_yaml(path, "space")
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    chain = _chain + (path.resolve(),)
    base = raw["extends"]
    if not isinstance(base, str) or not base:
        raise UserError(f"space {path}: 'extends' must name a space or a YAML file, got {base!r}")
    base_path = space_file(base, relative_to=path.parent)
    if base_path.resolve() in chain:
        cycle = " -> ".join(p.name for p in chain + (base_path.resolve(),))
        raise UserError(f"space {path}: 'extends' loops ({cycle})")
    base_raw = read_space(base_path, chain)
    if not isinstance(base_raw, dict):
        raise UserError(f"space {path}: its base {base_path} is not a mapping")
    return merge_space(base_raw, {k: v for k, v in raw.items() if k != "extends"})


def load_space(name_or_path: str) -> SearchSpace:
    """Load a bundled space by name (``imagenet``, ``fashion_mnist``) or a YAML file by path; a
    file may extend another space (``extends``, see `read_space`)."""
    path = space_file(name_or_path)
    return space_from_dict(path.stem, read_space(path))
