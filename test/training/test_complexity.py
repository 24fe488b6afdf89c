"""Analytic FLOPs / params: pinned by golden values, equal to the reference's, equal to a hook count."""

from __future__ import annotations

import dataclasses

import json
import random

import pytest
import torch
import torch.nn as nn

from alphanet.models import StaticAlphaNet, complexity
from alphanet.space import available_spaces, load_space
from conftest import GOLDEN_DIR

GOLDEN = json.loads((GOLDEN_DIR / "complexity.json").read_text())


@pytest.mark.parametrize("name", list(GOLDEN["imagenet"]))
def test_imagenet_archs_match_the_reference(name):
    space = load_space("imagenet")
    golden = GOLDEN["imagenet"][name]
    cost = complexity(space, space.named(name))
    assert cost.mflops == pytest.approx(golden["reference_mflops"], rel=1e-3)
    assert cost.params / 1e6 == pytest.approx(golden["reference_params_m"], abs=1e-3)
    # Pinned exactly: any change in counting or in the space shows up here.
    assert round(cost.mflops, 6) == golden["mflops"] and cost.params == golden["params"]


@pytest.mark.parametrize("name", ["min", "max"])
def test_fashion_mnist_extremes_are_pinned(name):
    space = load_space("fashion_mnist")
    cost = complexity(space, space.named(name))
    assert round(cost.mflops, 6) == GOLDEN["fashion_mnist"][name]["mflops"]
    assert cost.params == GOLDEN["fashion_mnist"][name]["params"]
    assert GOLDEN["fashion_mnist"]["max"]["mflops"] >= 4 * GOLDEN["fashion_mnist"]["min"]["mflops"]


def hook_count(model: nn.Module, resolution: int, in_channels: int) -> tuple[float, int]:
    """MACs of every Conv2d / Linear actually run, measured with forward hooks (reference §6)."""
    macs = 0

    def conv_hook(module: nn.Conv2d, inputs, output):
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1]
        macs += (
            module.in_channels // module.groups * module.out_channels * k * output.shape[2] * output.shape[3]
        )

    def linear_hook(module: nn.Linear, inputs, output):
        nonlocal macs
        macs += module.in_features * module.out_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_channels, resolution, resolution))
    for handle in handles:
        handle.remove()
    return macs / 1e6, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "space_fixture", ["tiny_space", "tiny_fused_space", "tiny_gdc_space", "tiny_flatten_space"]
)
def test_analytic_count_equals_hook_count_on_tiny_archs(space_fixture, request):
    space = request.getfixturevalue(space_fixture)
    rng = random.Random(0)
    archs = [space.min_arch(), space.max_arch()] + [space.sample(rng) for _ in range(8)]
    for arch in archs:
        model = StaticAlphaNet(space, arch)
        mflops, params = hook_count(model, arch.resolution, space.in_channels)
        cost = complexity(space, arch)
        assert cost.mflops == pytest.approx(mflops, rel=1e-12), arch
        assert cost.params == params, arch


def test_a_fused_block_costs_one_dense_kxk_conv_instead_of_expand_plus_depthwise(tiny_fused_space):
    # Stage 0 of the fused tiny space at its max arch: 8 -> 8 channels, k5, t1, 8x8 output (16 px
    # input, stem stride 2): dense 5x5 8->8 + 1x1 project 8->8 per block, two blocks.
    arch = tiny_fused_space.max_arch()
    one_stage = complexity(tiny_fused_space, arch).mflops
    shallower = dataclasses.replace(arch, depth=(1, *arch.depth[1:]))
    block_macs = (8 * 8 * 25 * 8 * 8) + (8 * 8 * 8 * 8)
    assert (one_stage - complexity(tiny_fused_space, shallower).mflops) * 1e6 == pytest.approx(block_macs)


@pytest.mark.parametrize("name", ["min", "max"])
@pytest.mark.parametrize(
    "space_name", [name for name in available_spaces() if name.startswith("fashion_mnist")]
)
def test_analytic_count_equals_hook_count_on_fashion_mnist(space_name, name):
    space = load_space(space_name)
    arch = space.named(name)
    mflops, params = hook_count(StaticAlphaNet(space, arch), arch.resolution, 1)
    cost = complexity(space, arch)
    assert cost.mflops == pytest.approx(mflops, rel=1e-12) and cost.params == params


def test_analytic_count_equals_hook_count_on_imagenet_a0():
    space = load_space("imagenet")
    arch = space.named("a0")
    mflops, params = hook_count(StaticAlphaNet(space, arch), arch.resolution, 3)
    cost = complexity(space, arch)
    assert cost.mflops == pytest.approx(mflops, rel=1e-12) and cost.params == params


def test_flops_depend_on_the_classifier_size():
    space = load_space("fashion_mnist")
    arch = space.max_arch()
    base = complexity(space, arch)
    more = complexity(space, arch, num_classes=20)
    assert more.mflops - base.mflops == pytest.approx(arch.width[-1] * 10 / 1e6)
    assert more.params - base.params == arch.width[-1] * 10 + 10
