"""Fold eval-mode BatchNorm layers into the convolutions that feed them.

The exported graph must contain no BatchNormalization nodes (fewer ops for the serving runtime,
and the network then is exactly its conv weights). Folding is done on a copy of the PyTorch model
before export rather than left to the exporter, because whether the exporter folds depends on the
PyTorch version.

Pairs are discovered by running one forward pass with hooks: a BN layer whose input tensor *is*
the output tensor of a Conv2d (same object) is fed by that conv. This works whatever the module
layout (Sequential or named attributes). Folding assumes the conv output has no other consumer,
which holds for conv -> BN -> act stacks; `fold_batchnorm` verifies the folded model against the
original on the probe input and raises if they differ, so a violated assumption cannot pass
silently.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def _parent_and_name(model: nn.Module, target: nn.Module) -> tuple[nn.Module, str]:
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is target:
                return parent, name
    raise LookupError("module is not part of the model")


def find_conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, bn) pairs where the BN consumes exactly the conv's output tensor during ``probe``."""
    producer: dict[int, nn.Conv2d] = {}
    outputs: list[torch.Tensor] = []  # keep conv outputs alive so their ids stay unique
    pairs: dict[int, tuple[nn.Conv2d, nn.BatchNorm2d]] = {}
    uses: dict[int, int] = {}

    def on_conv(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        producer[id(output)] = module
        outputs.append(output)
        uses[id(module)] = uses.get(id(module), 0) + 1

    def on_bn(module: nn.Module, inputs: tuple) -> None:
        conv = producer.get(id(inputs[0]))
        if conv is not None:
            pairs[id(module)] = (conv, module)

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(on_bn))
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
    # A conv or BN module run more than once (weight reuse) cannot be folded per call.
    return [(conv, bn) for conv, bn in pairs.values() if uses.get(id(conv)) == 1]


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Rewrite ``conv`` in place so that ``conv(x) == bn(conv_old(x))`` in eval mode."""
    scale = (
        bn.weight / torch.sqrt(bn.running_var + bn.eps)
        if bn.affine
        else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    )
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    old_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    new_bias = shift + (old_bias - bn.running_mean) * scale
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias.clone())
    else:
        conv.bias.copy_(new_bias)


@torch.no_grad()
def fold_batchnorm(model: nn.Module, probe: torch.Tensor, atol: float = 1e-4) -> tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode) with every conv-fed BatchNorm2d folded and replaced by Identity.

    Args:
        model: the network to fold (left untouched).
        probe: an input batch used to discover pairs and to verify the folded copy.
        atol: allowed absolute difference between the folded and original outputs, relative to
            the output scale (float32 re-association error only).

    Returns:
        (folded copy, number of folded BN layers).
    """
    original = model.eval()
    folded = copy.deepcopy(model).eval()
    pairs = find_conv_bn_pairs(folded, probe)
    for conv, bn in pairs:
        fold_conv_bn(conv, bn)
        parent, name = _parent_and_name(folded, bn)
        setattr(parent, name, nn.Identity())
    expected, actual = original(probe), folded(probe)
    tolerance = atol * max(1.0, expected.abs().max().item())
    error = (expected - actual).abs().max().item()
    if error > tolerance:
        raise RuntimeError(f"BN folding changed the outputs (max abs error {error:.3g} > {tolerance:.3g})")
    return folded, len(pairs)
