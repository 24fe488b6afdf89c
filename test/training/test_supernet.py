"""Supernet: weight sharing, static extraction, BN semantics, drop-connect/dropout, resizing."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn as nn

from alphanet.errors import UserError
from alphanet.models import AlphaNetSupernet, StaticAlphaNet
from alphanet.models.dynamic_ops import DynamicBatchNorm2d
from alphanet.space import ArchConfig, load_space


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN parameters and running statistics, so extraction errors cannot hide."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.rand(n, generator=gen) + 0.5
            module.bias.data = torch.randn(n, generator=gen) * 0.1
            module.running_mean.data = torch.randn(n, generator=gen) * 0.1
            module.running_var.data = torch.rand(n, generator=gen) + 0.5


@pytest.fixture
def supernet(tiny_space):
    torch.manual_seed(0)
    model = AlphaNetSupernet(tiny_space)
    _randomise_bn(model)
    return model


def test_forward_shapes_for_many_subnets(supernet, tiny_space):
    rng = random.Random(0)
    x = torch.randn(3, 1, 28, 28)
    supernet.train()
    for arch in [tiny_space.min_arch(), tiny_space.max_arch()] + [tiny_space.sample(rng) for _ in range(6)]:
        supernet.set_active(arch)
        assert supernet.active_arch == arch
        out = supernet(x)
        assert out.shape == (3, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch_name", ["min", "max", "mid", "random"])
def test_extracted_static_net_matches_supernet(supernet, tiny_space, arch_name):
    arch = tiny_space.sample(random.Random(5)) if arch_name == "random" else tiny_space.named(arch_name)
    supernet.set_active(arch)
    supernet.eval()
    static = supernet.extract()
    assert isinstance(static, StaticAlphaNet) and not static.training
    assert not any(type(m).__name__.startswith("Dynamic") for m in static.modules())
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(static(x), supernet(x), rtol=1e-5, atol=1e-6)
    # Training mode (batch statistics) agrees too.
    supernet.train()
    static.train()
    with torch.no_grad():
        torch.testing.assert_close(static(x), supernet(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch_name", ["min", "max", "random"])
def test_fused_blocks_extract_to_a_static_net_that_matches(tiny_fused_space, arch_name):
    torch.manual_seed(0)
    supernet = AlphaNetSupernet(tiny_fused_space)
    _randomise_bn(supernet)
    arch = {
        "min": tiny_fused_space.min_arch(),
        "max": tiny_fused_space.max_arch(),
        "random": tiny_fused_space.sample(random.Random(3)),
    }[arch_name]
    supernet.set_active(arch)
    supernet.eval()
    static = supernet.extract()
    block = static.stages[0][0]
    assert block.depthwise is None and block.expand.conv.groups == 1
    assert block.expand.conv.kernel_size == (arch.kernel_size[0],) * 2
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(static(x), supernet(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch_name", ["min", "max", "random"])
@pytest.mark.parametrize("space_fixture", ["tiny_gdc_space", "tiny_flatten_space"])
def test_a_positional_head_extracts_to_a_static_net_that_matches(space_fixture, arch_name, request):
    space = request.getfixturevalue(space_fixture)
    torch.manual_seed(0)
    supernet = AlphaNetSupernet(space)
    _randomise_bn(supernet)
    arch = {"min": space.min_arch(), "max": space.max_arch(), "random": space.sample(random.Random(1))}[
        arch_name
    ]
    supernet.set_active(arch)
    supernet.eval()
    static = supernet.extract()
    final = space.final_size(arch.resolution)
    if space.head_pool == "gdc":  # a depthwise conv over the whole map, then BN
        positional, conv = static.head.pool, static.head.pool.conv
        assert conv.groups == conv.in_channels
    else:  # flatten: the feature layer is one dense conv over the whole map
        positional = conv = static.head.feature
        assert static.head.pool is None and conv.groups == 1 and conv.out_channels == arch.width[-1]
    assert conv.kernel_size == (final, final) and conv.padding == (0, 0)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(static(x), supernet(x), rtol=1e-5, atol=1e-6)
        # unlike average pooling, the head weighs every position: moving a feature changes its output
        features = torch.randn(2, conv.in_channels, final, final)
        moved = torch.roll(features, shifts=1, dims=3)
        assert not torch.allclose(positional(features), positional(moved), atol=1e-3)


def test_fused_kernels_share_the_centre_of_the_largest(tiny_fused_space):
    supernet = AlphaNetSupernet(tiny_fused_space)
    arch = dataclasses.replace(
        tiny_fused_space.max_arch(), kernel_size=(3, *tiny_fused_space.max_arch().kernel_size[1:])
    )
    supernet.set_active(arch)
    static = supernet.extract()
    full = supernet.stages[0][0].expand.conv.weight
    torch.testing.assert_close(static.stages[0][0].expand.conv.weight, full[:, :, 1:4, 1:4])


def test_extraction_on_the_imagenet_space_for_a_published_arch():
    space = load_space("imagenet")
    torch.manual_seed(0)
    model = AlphaNetSupernet(space)
    _randomise_bn(model)
    model.eval()
    arch = space.named("a1")
    static = model.extract(arch)
    model.set_active(arch)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(static(x), model(x), rtol=1e-4, atol=1e-5)


def test_weight_sharing_first_channels_and_centre_kernel(supernet, tiny_space):
    arch = tiny_space.min_arch()
    static = supernet.extract(arch)
    super_sd, static_sd = supernet.state_dict(), static.state_dict()
    # Depthwise kernels: 3x3 is the centre of the allocated 5x5; first channels only.
    key = "stages.1.0.depthwise.conv.weight"
    c = static_sd[key].shape[0]
    torch.testing.assert_close(static_sd[key], super_sd[key][:c, :, 1:4, 1:4])
    key = "stages.1.0.expand.conv.weight"
    o, i = static_sd[key].shape[:2]
    torch.testing.assert_close(static_sd[key], super_sd[key][:o, :i])
    for name in ("weight", "bias", "running_mean", "running_var"):
        key = f"stages.1.0.project.bn.{name}"
        torch.testing.assert_close(static_sd[key], super_sd[key][: static_sd[key].shape[0]])
    torch.testing.assert_close(
        static_sd["classifier.weight"], super_sd["classifier.weight"][:, : arch.width[-1]]
    )
    # Every static tensor has a supernet counterpart with the same name.
    assert set(static_sd) <= set(super_sd)


def test_extracted_net_holds_only_effective_weights(tiny_space):
    model = AlphaNetSupernet(tiny_space)
    arch = tiny_space.resolve("mid")
    static = model.extract(arch)
    # mid: stem 8 -> mb1 4 (stride 1, widths differ: pool-free projection shortcut);
    # mb3 block 0: 12 -> 8 with stride 1 -> projection; mb5 16 -> 16, stride 1: identity.
    assert static.stages[0][0].shortcut.conv is not None
    assert static.stages[0][1].identity and static.stages[0][1].shortcut is None
    assert static.stages[4][0].identity
    assert static.stages[1][0].shortcut.stride == 2
    # Changing width at stride 2 uses avg-pool + conv; same width at stride 2 only the pool.
    same = ArchConfig(16, (8, 8, 8, 8, 16, 16, 20, 24, 40), arch.depth, arch.kernel_size, arch.expand_ratio)
    static = model.extract(same)
    assert static.stages[1][0].shortcut.conv is None and static.stages[1][0].shortcut.stride == 2


def test_last_bn_gamma_of_every_block_is_zero(tiny_space):
    model = AlphaNetSupernet(tiny_space)
    for blocks in model.stages:
        for block in blocks:
            assert torch.count_nonzero(block.project.bn.weight) == 0
            assert torch.count_nonzero(block.depthwise.bn.weight) == block.depthwise.bn.num_features


def test_bn_trains_on_batch_statistics_and_never_moves_running_stats(supernet, tiny_space):
    before = {k: v.clone() for k, v in supernet.state_dict().items() if "running" in k or "num_batches" in k}
    supernet.train()
    supernet.set_active(tiny_space.max_arch())
    x = torch.randn(8, 1, 28, 28) * 3 + 2
    supernet(x).sum().backward()
    after = supernet.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    # Batch statistics: the stem BN output is normalised per channel over the batch.
    bn = supernet.stem.bn
    feats = supernet.stem.conv(x[:, :, :16, :16], 8)
    out = bn(feats)
    expected = (feats - feats.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
        feats.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps
    ) * bn.weight[:8].view(1, -1, 1, 1) + bn.bias[:8].view(1, -1, 1, 1)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_dynamic_bn_cumulative_average_updates_only_the_active_channels():
    bn = DynamicBatchNorm2d(6, momentum=None)
    bn.reset_running_stats()
    bn.train()
    batches = [torch.randn(5, 4, 3, 3) + i for i in range(3)]
    for b in batches:
        bn(b)
    mean = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean[:4], mean, rtol=1e-5, atol=1e-5)
    assert torch.equal(bn.running_mean[4:], torch.zeros(2)) and torch.equal(bn.running_var[4:], torch.ones(2))
    bn.eval()
    x = torch.randn(2, 4, 3, 3)
    expected = (x - bn.running_mean[:4].view(1, -1, 1, 1)) / torch.sqrt(
        bn.running_var[:4].view(1, -1, 1, 1) + bn.eps
    )
    torch.testing.assert_close(
        bn(x), expected * bn.weight[:4].view(1, -1, 1, 1) + bn.bias[:4].view(1, -1, 1, 1)
    )


def test_drop_connect_rates_follow_the_reference_rule():
    space = load_space("imagenet")
    model = AlphaNetSupernet(space)
    model.set_drop_connect(0.2, only_last_two_stages=True)
    rates = {}
    index = 0
    for s, blocks in enumerate(model.stages):
        for _ in blocks:
            rates[index] = model._block_drop_rate(s, index)
            index += 1
    assert all(rates[i] == 0.0 for i in range(27))  # mb1..mb5
    assert rates[28] == pytest.approx(0.2 * 28 / 37) and rates[36] == pytest.approx(0.2 * 36 / 37)
    model.set_drop_connect(0.2, only_last_two_stages=False)
    assert model._block_drop_rate(0, 5) == pytest.approx(0.2 * 5 / 37)
    model.set_drop_connect(0.0)
    assert model._block_drop_rate(6, 36) == 0.0


def test_drop_connect_and_dropout_only_act_in_training(supernet, tiny_space):
    supernet.set_active(tiny_space.max_arch())
    # Non-zero residual branches so drop-connect has an effect.
    for blocks in supernet.stages:
        for block in blocks:
            nn.init.constant_(block.project.bn.weight, 1.0)
    x = torch.randn(4, 1, 28, 28)
    supernet.eval()
    with torch.no_grad():
        reference = supernet(x)
        supernet.set_dropout(0.5)
        supernet.set_drop_connect(0.9, only_last_two_stages=False)
        torch.testing.assert_close(supernet(x), reference)  # eval: no randomness
    supernet.train()
    with torch.no_grad():
        torch.manual_seed(1)
        a = supernet(x)
        torch.manual_seed(2)
        b = supernet(x)
        assert not torch.allclose(a, b)
        supernet.set_dropout(0.0)
        supernet.set_drop_connect(0.0)
        torch.testing.assert_close(supernet(x), supernet(x))


def test_input_is_resized_bicubic_to_the_active_resolution(supernet, tiny_space):
    arch = tiny_space.min_arch()  # resolution 12
    supernet.set_active(arch)
    supernet.eval()
    x = torch.randn(2, 1, 28, 28)
    resized = torch.nn.functional.interpolate(x, size=(12, 12), mode="bicubic", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(supernet(x), supernet(resized))
        static = supernet.extract()
        torch.testing.assert_close(static(x), static(resized))


def test_set_active_rejects_archs_outside_the_space(supernet, tiny_space):
    arch = tiny_space.max_arch()
    with pytest.raises(UserError, match="arch.width"):
        supernet.set_active(
            ArchConfig(16, (99,) + arch.width[1:], arch.depth, arch.kernel_size, arch.expand_ratio)
        )


def test_supernet_parameter_count_matches_the_reference():
    model = AlphaNetSupernet(load_space("imagenet"))
    # The reference's full supernet: 23.935M parameters (its largest subnet: 23.404M effective).
    total = sum(p.numel() for p in model.parameters())
    assert abs(total - 23.935e6) < 1e3
