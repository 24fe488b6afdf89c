"""Search spaces: the ImageNet space is the reference's exactly; sampling, validation, arch files."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import yaml

from alphanet.errors import UserError
from alphanet.models import complexity
from conftest import TRAINING_DIR
from alphanet.space import (
    ArchConfig,
    available_spaces,
    load_space,
    make_divisible,
    mid_channels,
    se_channels,
    space_from_dict,
)

REFERENCE_STAGES = [
    # widths, depths, kernels, expand ratios, stride, SE (reference §1)
    ((16, 24), (1, 2), (3, 5), (1,), 1, False),
    ((24, 32), (3, 4, 5), (3, 5), (4, 5, 6), 2, False),
    ((32, 40), (3, 4, 5, 6), (3, 5), (4, 5, 6), 2, True),
    ((64, 72), (3, 4, 5, 6), (3, 5), (4, 5, 6), 2, False),
    ((112, 120, 128), (3, 4, 5, 6, 7, 8), (3, 5), (4, 5, 6), 1, True),
    ((192, 200, 208, 216), (3, 4, 5, 6, 7, 8), (3, 5), (6,), 2, True),
    ((216, 224), (1, 2), (3, 5), (6,), 1, True),
]


def test_imagenet_space_is_the_reference_space():
    space = load_space("imagenet")
    assert (space.in_channels, space.num_classes) == (3, 1000)
    assert space.resolutions == (192, 224, 256, 288)
    assert (space.stem_widths, space.stem_kernel, space.stem_stride) == ((16, 24), 3, 2)
    got = [(s.widths, s.depths, s.kernel_sizes, s.expand_ratios, s.stride, s.se) for s in space.stages]
    assert got == REFERENCE_STAGES
    assert space.head_widths == (1792, 1984) and space.head_expand == 6
    assert space.total_blocks == 37
    n = 1
    for gene in space.choices():
        n *= len(gene.options)
    assert n == 4 * 1536 * 6912 * 128 * 81  # ~4.40e11 sub-networks


def test_imagenet_named_archs_and_extremes():
    space = load_space("imagenet")
    assert list(space.archs) == ["a0", "a1", "a2", "a3", "a4", "a5", "a5_1", "a6"]
    assert space.named("a0") == space.min_arch()  # A0 is the smallest subnet
    a5_1 = space.named("a5_1")
    assert a5_1.resolution == 288 and a5_1.depth == (2, 3, 4, 3, 3, 5, 1)
    assert a5_1.kernel_size == (3, 3, 5, 5, 3, 3, 3) and a5_1.expand_ratio == (1, 4, 4, 4, 5, 6, 6)
    biggest = space.max_arch()
    assert biggest.to_dict() == {
        "resolution": 288,
        "width": [24, 24, 32, 40, 72, 128, 216, 224, 1984],
        "depth": [2, 5, 6, 6, 8, 8, 2],
        "kernel_size": [5] * 7,
        "expand_ratio": [1, 6, 6, 6, 6, 6, 6],
    }


def test_fashion_mnist_space_is_a_scaled_down_space():
    space = load_space("fashion_mnist")
    assert (space.in_channels, space.num_classes) == (1, 10)
    assert space.data["input_size"] == 28 and space.data["channels"] == 1
    assert all(s.kernel_sizes == (3, 5) for s in space.stages)
    assert max(space.resolutions) == 28
    assert "fashion_mnist" in available_spaces() and "imagenet" in available_spaces()


def test_sampling_is_uniform_independent_and_seeded(tiny_space):
    a = [tiny_space.sample(random.Random(3)) for _ in range(3)]
    b = [tiny_space.sample(random.Random(3)) for _ in range(3)]
    assert a == b
    rng = random.Random(0)
    samples = [tiny_space.sample(rng) for _ in range(3000)]
    for arch in samples:
        tiny_space.validate(arch)
    counts = Counter(arch.kernel_size[2] for arch in samples)
    assert set(counts) == {3, 5} and abs(counts[3] - 1500) < 150
    res = Counter(arch.resolution for arch in samples)
    assert abs(res[12] - 1500) < 150


def test_encode_decode_round_trip(tiny_space):
    arch = tiny_space.sample(random.Random(1))
    values = tiny_space.encode(arch)
    assert len(values) == len(tiny_space.choices()) == 1 + 9 + 7 * 3
    assert tiny_space.decode(values) == arch
    with pytest.raises(UserError, match="expected 31 gene values"):
        tiny_space.decode(values[:-1])


def test_validate_names_the_bad_field(tiny_space):
    arch = tiny_space.max_arch()
    bad = ArchConfig(
        arch.resolution,
        arch.width,
        arch.depth,
        arch.kernel_size[:3] + (7,) + arch.kernel_size[4:],
        arch.expand_ratio,
    )
    with pytest.raises(UserError, match=r"arch.kernel_size\[3\] = 7 is not a choice"):
        tiny_space.validate(bad)
    with pytest.raises(UserError, match=r"arch.resolution = 224"):
        tiny_space.validate(ArchConfig(224, arch.width, arch.depth, arch.kernel_size, arch.expand_ratio))


def test_from_dict_errors():
    with pytest.raises(UserError, match="missing keys"):
        ArchConfig.from_dict({"resolution": 192})
    with pytest.raises(UserError, match="width must be a list of 9"):
        ArchConfig.from_dict(
            {"resolution": 1, "width": [1], "depth": [1] * 7, "kernel_size": [3] * 7, "expand_ratio": [1] * 7}
        )
    with pytest.raises(UserError, match="must be a mapping"):
        ArchConfig.from_dict([1, 2])


def test_resolve_min_max_named_and_files(tiny_space, tmp_path):
    assert tiny_space.resolve("min") == tiny_space.min_arch()
    assert tiny_space.resolve("max") == tiny_space.max_arch()
    mid = tiny_space.resolve("mid")
    (tmp_path / "a.json").write_text(json.dumps(mid.to_dict()))
    assert tiny_space.resolve(str(tmp_path / "a.json")) == mid
    # The manifest's camelCase layout (nested under "arch", with a "space" key) is accepted too.
    manifest_arch = {"space": "tiny", "resolution": 16, "width": list(mid.width), "depth": list(mid.depth)}
    manifest_arch.update({"kernelSize": list(mid.kernel_size), "expandRatio": list(mid.expand_ratio)})
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"arch": manifest_arch}))
    assert tiny_space.resolve(str(tmp_path / "b.yaml")) == mid
    with pytest.raises(UserError, match="unknown arch 'nope'.*known: min, max, mid"):
        tiny_space.resolve("nope")
    with pytest.raises(UserError, match="arch file not found"):
        tiny_space.resolve(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot parse arch file"):
        tiny_space.resolve(str(tmp_path / "bad.json"))
    off_space = dict(mid.to_dict(), resolution=20)
    (tmp_path / "off.json").write_text(json.dumps(off_space))
    with pytest.raises(UserError, match="arch.resolution = 20"):
        tiny_space.resolve(str(tmp_path / "off.json"))


def test_load_space_errors(tmp_path):
    with pytest.raises(UserError, match="unknown space 'nope'"):
        load_space("nope")
    with pytest.raises(UserError, match="space file not found"):
        load_space(str(tmp_path / "x.yaml"))
    (tmp_path / "broken.yaml").write_text("stages: [")
    with pytest.raises(UserError, match="cannot parse space"):
        load_space(str(tmp_path / "broken.yaml"))


def test_a_space_file_extends_another_with_only_what_differs(tmp_path):
    base = load_space("fashion_mnist_28px")
    variant = tmp_path / "variant.yaml"
    variant.write_text(
        yaml.safe_dump(
            {
                "extends": "fashion_mnist_28px",
                "data": {"train_augment": {"random_erasing": {"value": "random"}}},
                "head": {"widths": [64, 128]},
                "archs": {"small": {**base.min_arch().to_dict(), "width": [24, *base.min_arch().width[1:]]}},
            }
        )
    )
    space = load_space(str(variant))
    assert space.name == "variant"
    # mappings merge key by key; lists replace the base's whole
    assert space.data["train_augment"] == {
        **base.data["train_augment"],
        "random_erasing": {"value": "random"},
    }
    assert space.data["mean"] == base.data["mean"] and space.stages == base.stages
    assert space.head_widths == (64, 128) and space.head_expand == base.head_expand
    assert space.resolve("small").width[0] == 24
    # a YAML base is relative to the extending file, and extending chains
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "again.yaml").write_text("extends: ../variant.yaml\ndata: {std: [0.5]}\n")
    again = load_space(str(tmp_path / "sub" / "again.yaml"))
    assert (
        again.head_widths == (64, 128)
        and again.data["std"] == [0.5]
        and again.data["train_augment"]["random_erasing"] == {"value": "random"}
    )


@pytest.mark.parametrize(
    "text, error",
    [
        ("extends: [fashion_mnist]\n", "'extends' must name a space or a YAML file"),
        ("extends: nope\n", "unknown space 'nope'"),
        ("extends: missing.yaml\n", "space file not found"),
        ("extends: fashion_mnist_28px\nstages: []\n", "exactly 7 stages"),
    ],
)
def test_extends_errors(tmp_path, text, error):
    (tmp_path / "variant.yaml").write_text(text)
    with pytest.raises(UserError, match=error):
        load_space(str(tmp_path / "variant.yaml"))


def test_extends_refuses_a_loop(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(UserError, match=r"'extends' loops \(a.yaml -> b.yaml -> a.yaml\)"):
        load_space(str(tmp_path / "a.yaml"))


def test_space_from_dict_rejects_malformed_spaces():
    from conftest import TINY_SPACE
    import copy

    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"] = raw["stages"][:6]
    with pytest.raises(UserError, match="exactly 7 stages"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"][2]["kernel_sizes"] = [3, 4]
    with pytest.raises(UserError, match="kernel_sizes must be odd"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"][1]["expand_ratios"] = [1, 4]
    with pytest.raises(UserError, match="cannot mix 1"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"][1]["fused"] = "yes"
    with pytest.raises(UserError, match=r"stages\[1\].fused must be true or false"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"][1].update({"fused": True, "expand_ratios": [1, 2]})
    assert space_from_dict("fused", raw).stages[1].fused  # a fused block may mix 1 with others
    raw = copy.deepcopy(TINY_SPACE)
    raw["head"]["pool"] = "max"
    with pytest.raises(UserError, match="head.pool must be one of avg, gdc, flatten"):
        space_from_dict("bad", raw)
    raw["head"]["pool"] = "gdc"
    raw["resolutions"] = [16, 20]  # 16 px ends on 1x1, 20 px on 2x2: one depthwise kernel cannot cover both
    with pytest.raises(UserError, match=r"gdc needs one final map size .*\{16: 1, 20: 2\}"):
        space_from_dict("bad", raw)
    raw["head"]["pool"] = "flatten"
    with pytest.raises(UserError, match=r"flatten needs one final map size .*\{16: 1, 20: 2\}"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    del raw["data"]["mean"]
    with pytest.raises(UserError, match="missing key 'data.mean'"):
        space_from_dict("bad", raw)
    raw = copy.deepcopy(TINY_SPACE)
    raw["archs"]["mid"]["resolution"] = 99
    with pytest.raises(UserError, match="arch 'mid'.*resolution = 99"):
        space_from_dict("bad", raw)


def test_channel_rules():
    assert make_divisible(12) == 16 and make_divisible(100) == 104 and make_divisible(3) == 8
    assert make_divisible(36, 8) == 40  # rounds to nearest multiple, never below 90%
    assert mid_channels(16, 1) == 16  # no expand conv: the depthwise runs on the input width
    assert mid_channels(24, 5) == 120 and mid_channels(40, 6) == 240 and mid_channels(216, 6) == 1296
    assert se_channels(144) == 40 and se_channels(1344) == 336


# The pilots' (smallest, largest) MFLOPs as docs/fashion-mnist-recipe.md states them: most are one
# fixed network at about the cheapest member's cost, compared with the 6.57-MFLOPs plain CNN.
PILOT_MFLOPS = {
    "current-28px-narrow": (6.87, 6.87),
    "end-7x7": (7.02, 7.02),
    "end-7x7-gdc": (7.04, 7.04),
    "end-7x7-flatten": (6.72, 6.72),
    "fused-heavy": (7.08, 7.08),
    "fused-light": (6.89, 6.89),
    "wide-14x14": (6.95, 6.95),
    "28px-random-erasing": (7.03, 51.15),
    "28px-members": (7.03, 51.15),
}


def test_every_pilot_space_is_listed_with_the_mflops_the_recipe_doc_states():
    files = {p.stem for p in (TRAINING_DIR / "configs" / "pilots").glob("*.yaml")}
    assert files == set(PILOT_MFLOPS)
    doc = (TRAINING_DIR.parent / "docs" / "fashion-mnist-recipe.md").read_text()
    for name, (low, high) in PILOT_MFLOPS.items():
        assert f"{name}.yaml" in doc and f"{high:.2f}" in doc
        space = load_space(str(TRAINING_DIR / "configs" / "pilots" / f"{name}.yaml"))
        assert round(complexity(space, space.min_arch(), 10).mflops, 2) == low
        assert round(complexity(space, space.max_arch(), 10).mflops, 2) == high
