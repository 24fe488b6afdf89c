"""Import the official AlphaNet supernet checkpoint (``alphanet_pretrained.pth.tar``).

The published weights are one pickled dict whose ``state_dict`` uses the parameter names of
AttentiveNAS's ``AttentiveNasDynamicModel`` (facebookresearch/AttentiveNAS ``models/``), saved from
a DistributedDataParallel wrapper, hence a ``module.`` prefix. This module maps those names onto
`AlphaNetSupernet` explicitly, checks every shape, and refuses to load unless the coverage is
complete in both directions.

Reference layout (block ``g`` is the global index over the stages' maximum depths, 37 for the
ImageNet space; widths below are the largest choices, ``mid = in * max(t)``, ``se = mid/4 -> 8``):

=================================================================  =================================
reference key (after ``module.``)                                   ours
=================================================================  =================================
first_conv.conv.conv.weight                                         stem.conv.weight
first_conv.bn.bn.{weight,bias,running_mean,running_var,num_b.._t..} stem.bn.*
blocks.g.mobile_inverted_conv.inverted_bottleneck.conv.conv.weight  stages.s.b.expand.conv.weight
blocks.g.mobile_inverted_conv.inverted_bottleneck.bn.bn.*           stages.s.b.expand.bn.*
blocks.g.mobile_inverted_conv.depth_conv.conv.conv.weight           stages.s.b.depthwise.conv.weight
blocks.g.mobile_inverted_conv.depth_conv.bn.bn.*                    stages.s.b.depthwise.bn.*
blocks.g.mobile_inverted_conv.depth_conv.se.fc.reduce.{weight,bias} stages.s.b.se.reduce.*
blocks.g.mobile_inverted_conv.depth_conv.se.fc.expand.{weight,bias} stages.s.b.se.expand.*
blocks.g.mobile_inverted_conv.point_linear.conv.conv.weight         stages.s.b.project.conv.weight
blocks.g.mobile_inverted_conv.point_linear.bn.bn.*                  stages.s.b.project.bn.*
blocks.g.shortcut.conv.conv.weight                                  stages.s.b.shortcut.conv.weight
last_conv.final_expand_layer.conv.conv.weight                       head.expand.conv.weight
last_conv.final_expand_layer.bn.bn.*                                head.expand.bn.*
last_conv.feature_mix_layer.conv.conv.weight                        head.feature.weight
classifier.linear.linear.{weight,bias}                              classifier.{weight,bias}
=================================================================  =================================

Deliberately dropped reference keys: every ``*.bn_tracking.{0,1}.{running_mean,running_var,
num_batches_tracked}`` (two affine-free BNs per dynamic BN that the reference allocates "for
tracking" but never runs, AttentiveNAS issue #2), and a ``blocks.g.shortcut.conv.conv.weight`` for
which our supernet allocates no conv because input and output widths can never differ there (the
reference allocates that conv for every block and skips it at run time).

Note: the reference trains with BN momentum 0, so the checkpoint's running statistics are the
initial (0, 1); every sub-network must be BN-recalibrated on training images before use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import UserError
from ..models.supernet import AlphaNetSupernet
from ..space import SearchSpace, make_divisible
from .checkpoint_unpickler import load_foreign_checkpoint

DDP_PREFIX = "module."
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BN_TRACKING_TENSORS = ("running_mean", "running_var", "num_batches_tracked")
REFERENCE_HEAD_EXPAND = 6  # AttentiveNasDynamicModel hard-codes the v3 head's 6x expansion
_KERNEL_TRANSFORM = re.compile(r"\d+to\d+_matrix$")


@dataclass
class KeyMapping:
    """Reference key -> our key, plus the reference keys dropped on purpose (with the reason)."""

    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def reverse(self) -> dict[str, str]:
        return {ours: ref for ref, ours in self.mapped.items()}


def _map_bn(mapping: KeyMapping, ref_prefix: str, our_prefix: str) -> None:
    for name in BN_TENSORS:
        mapping.mapped[f"{ref_prefix}.bn.{name}"] = f"{our_prefix}.{name}"
    for index in (0, 1):
        for name in BN_TRACKING_TENSORS:
            mapping.dropped[f"{ref_prefix}.bn_tracking.{index}.{name}"] = "unused bn_tracking statistics"


def build_key_mapping(supernet: AlphaNetSupernet) -> KeyMapping:
    """The explicit reference -> ours name mapping for ``supernet``'s structure."""
    ours = supernet.state_dict()
    mapping = KeyMapping()
    mapping.mapped["first_conv.conv.conv.weight"] = "stem.conv.weight"
    _map_bn(mapping, "first_conv.bn", "stem.bn")
    g = 0
    for s, blocks in enumerate(supernet.stages):
        for b, block in enumerate(blocks):
            ref = f"blocks.{g}.mobile_inverted_conv"
            our = f"stages.{s}.{b}"
            if block.expand is not None:
                mapping.mapped[f"{ref}.inverted_bottleneck.conv.conv.weight"] = f"{our}.expand.conv.weight"
                _map_bn(mapping, f"{ref}.inverted_bottleneck.bn", f"{our}.expand.bn")
            mapping.mapped[f"{ref}.depth_conv.conv.conv.weight"] = f"{our}.depthwise.conv.weight"
            _map_bn(mapping, f"{ref}.depth_conv.bn", f"{our}.depthwise.bn")
            if block.se is not None:
                for part in ("reduce", "expand"):
                    for name in ("weight", "bias"):
                        mapping.mapped[f"{ref}.depth_conv.se.fc.{part}.{name}"] = f"{our}.se.{part}.{name}"
            mapping.mapped[f"{ref}.point_linear.conv.conv.weight"] = f"{our}.project.conv.weight"
            _map_bn(mapping, f"{ref}.point_linear.bn", f"{our}.project.bn")
            shortcut_key = f"blocks.{g}.shortcut.conv.conv.weight"
            if f"{our}.shortcut.conv.weight" in ours:
                mapping.mapped[shortcut_key] = f"{our}.shortcut.conv.weight"
            else:
                mapping.dropped[
                    shortcut_key
                ] = "shortcut conv never used (input and output widths always equal)"
            g += 1
    mapping.mapped["last_conv.final_expand_layer.conv.conv.weight"] = "head.expand.conv.weight"
    _map_bn(mapping, "last_conv.final_expand_layer.bn", "head.expand.bn")
    mapping.mapped["last_conv.feature_mix_layer.conv.conv.weight"] = "head.feature.weight"
    mapping.mapped["classifier.linear.linear.weight"] = "classifier.weight"
    mapping.mapped["classifier.linear.linear.bias"] = "classifier.bias"
    unknown = sorted(set(mapping.mapped.values()) - set(ours))
    if unknown:
        raise RuntimeError(f"key mapping names tensors the supernet lacks: {unknown[:5]}")
    return mapping


def reference_layout(space: SearchSpace, num_classes: int | None = None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an ``AttentiveNasDynamicModel`` state_dict for ``space``.

    Derived from the reference's allocation rules, independently of our supernet, so the import's
    shape checks compare two separate derivations.
    """
    num_classes = space.num_classes if num_classes is None else num_classes
    layout: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, channels: int) -> None:
        for name in BN_TENSORS:
            layout[f"{prefix}.bn.{name}"] = () if name == "num_batches_tracked" else (channels,)
        for index in (0, 1):
            for name in BN_TRACKING_TENSORS:
                shape = () if name == "num_batches_tracked" else (channels,)
                layout[f"{prefix}.bn_tracking.{index}.{name}"] = shape

    stem = max(space.stem_widths)
    layout["first_conv.conv.conv.weight"] = (stem, space.in_channels, space.stem_kernel, space.stem_kernel)
    bn("first_conv.bn", stem)
    max_in, g = stem, 0
    for spec in space.stages:
        max_out, t_max, k_max = max(spec.widths), max(spec.expand_ratios), max(spec.kernel_sizes)
        for _ in range(max(spec.depths)):
            mid = round(max_in * t_max)
            ref = f"blocks.{g}.mobile_inverted_conv"
            if t_max != 1:
                layout[f"{ref}.inverted_bottleneck.conv.conv.weight"] = (mid, max_in, 1, 1)
                bn(f"{ref}.inverted_bottleneck.bn", mid)
            layout[f"{ref}.depth_conv.conv.conv.weight"] = (mid, 1, k_max, k_max)
            bn(f"{ref}.depth_conv.bn", mid)
            if spec.se:
                reduced = make_divisible(mid // 4, 8)
                layout[f"{ref}.depth_conv.se.fc.reduce.weight"] = (reduced, mid, 1, 1)
                layout[f"{ref}.depth_conv.se.fc.reduce.bias"] = (reduced,)
                layout[f"{ref}.depth_conv.se.fc.expand.weight"] = (mid, reduced, 1, 1)
                layout[f"{ref}.depth_conv.se.fc.expand.bias"] = (mid,)
            layout[f"{ref}.point_linear.conv.conv.weight"] = (max_out, mid, 1, 1)
            bn(f"{ref}.point_linear.bn", max_out)
            layout[f"blocks.{g}.shortcut.conv.conv.weight"] = (max_out, max_in, 1, 1)
            max_in, g = max_out, g + 1
    expand = REFERENCE_HEAD_EXPAND * max_in
    layout["last_conv.final_expand_layer.conv.conv.weight"] = (expand, max_in, 1, 1)
    bn("last_conv.final_expand_layer.bn", expand)
    head = max(space.head_widths)
    layout["last_conv.feature_mix_layer.conv.conv.weight"] = (head, expand, 1, 1)
    layout["classifier.linear.linear.weight"] = (num_classes, head)
    layout["classifier.linear.linear.bias"] = (num_classes,)
    return layout


def _summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, … ({len(keys)} in all)" if len(keys) > limit else shown


def extract_reference_state_dict(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The reference-layout tensors of a loaded checkpoint, DDP prefix removed."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        state = checkpoint["state_dict"]
    elif (
        isinstance(checkpoint, Mapping)
        and checkpoint
        and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    ):
        state = checkpoint  # a bare state_dict
    else:
        keys = list(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise UserError(
            f"not an AlphaNet/AttentiveNAS checkpoint: expected a 'state_dict' entry, found {keys}"
        )
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"checkpoint entry '{key}' is not a tensor ({type(value).__name__})")
        tensors[key[len(DDP_PREFIX) :] if key.startswith(DDP_PREFIX) else key] = value
    return tensors


def convert_reference_state_dict(
    reference: Mapping[str, torch.Tensor], supernet: AlphaNetSupernet
) -> dict[str, torch.Tensor]:
    """Rename and shape-check ``reference`` into a complete state_dict for ``supernet``.

    Raises:
        UserError: listing unexpected reference keys, our keys the checkpoint does not provide,
            and shape mismatches (all of them, in one message).
    """
    transform = sorted(k for k in reference if _KERNEL_TRANSFORM.search(k))
    if transform:
        raise UserError(
            "checkpoint uses OFA kernel-transformation matrices (e.g. "
            f"{transform[0]}); the published AlphaNet weights do not, and they are not supported"
        )
    mapping = build_key_mapping(supernet)
    ours = supernet.state_dict()
    unexpected = sorted(k for k in reference if k not in mapping.mapped and k not in mapping.dropped)
    provided = {mapping.mapped[k] for k in reference if k in mapping.mapped}
    missing_ours = sorted(set(ours) - provided)
    missing = [mapping.reverse().get(k, k) for k in missing_ours]
    mismatched = [
        f"{ref} {tuple(reference[ref].shape)} vs {tuple(ours[our].shape)}"
        for ref, our in mapping.mapped.items()
        if ref in reference and tuple(reference[ref].shape) != tuple(ours[our].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_summary(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summary(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_summary(mismatched, 4)}")
    if problems:
        raise UserError(
            f"checkpoint does not match the '{supernet.space.name}' space supernet: " + "; ".join(problems)
        )
    converted = {}
    for ref, our in mapping.mapped.items():
        converted[our] = reference[ref].detach().to(dtype=ours[our].dtype).clone()
    return converted


def reference_state_dict_from_supernet(
    supernet: AlphaNetSupernet, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The inverse mapping: ``supernet``'s weights in the reference layout (``module.`` prefixed,
    as the reference saves them). Dropped keys are filled like the reference would hold them
    (bn_tracking statistics at their initial values, unused shortcut convs random)."""
    layout = reference_layout(supernet.space, supernet.num_classes)
    mapping = build_key_mapping(supernet)
    ours = supernet.state_dict()
    state: dict[str, torch.Tensor] = {}
    for ref, shape in layout.items():
        if ref in mapping.mapped:
            tensor = ours[mapping.mapped[ref]].detach().clone()
        elif ref.endswith("num_batches_tracked"):
            tensor = torch.tensor(0, dtype=torch.long)
        elif ref.endswith("running_var"):
            tensor = torch.ones(shape)
        elif ref.endswith("running_mean"):
            tensor = torch.zeros(shape)
        else:
            tensor = torch.randn(shape, generator=generator)
        state[DDP_PREFIX + ref] = tensor
    return state


def import_official_checkpoint(path: Path, space: SearchSpace) -> AlphaNetSupernet:
    """Load the official checkpoint at ``path`` into a new `AlphaNetSupernet` of ``space``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"official checkpoint not found: {path}")
    try:
        checkpoint = load_foreign_checkpoint(path)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise UserError(f"cannot read checkpoint {path}: {exc}") from None
    except Exception as exc:  # pickle raises many types for a file that is not a checkpoint
        raise UserError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    reference = extract_reference_state_dict(checkpoint)
    classes = reference.get("classifier.linear.linear.weight")
    num_classes = int(classes.shape[0]) if classes is not None else space.num_classes
    supernet = AlphaNetSupernet(space, num_classes=num_classes)
    supernet.load_state_dict(convert_reference_state_dict(reference, supernet))
    return supernet
