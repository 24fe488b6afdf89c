"""Import of the official AlphaNet checkpoint (AttentiveNAS key layout), on a synthesised file.

The checkpoint is generated in the reference layout for the full ImageNet space (random weights,
``module.`` DDP prefix, legacy serialisation, and an ``args`` object of a class this project does
not have, as the reference's saver writes it), then imported and checked tensor by tensor.
"""

from __future__ import annotations

import os
import sys
import types

import pytest
import torch

from alphanet.errors import UserError
from alphanet.export.checkpoint_unpickler import ForeignObject, load_foreign_checkpoint
from alphanet.export.official_checkpoint import (
    build_key_mapping,
    import_official_checkpoint,
    reference_layout,
    reference_state_dict_from_supernet,
)
from alphanet.models import AlphaNetSupernet, complexity
from alphanet.space import load_space

IMAGENET = load_space("imagenet")


@pytest.fixture(scope="module")
def supernet() -> AlphaNetSupernet:
    torch.manual_seed(0)
    model = AlphaNetSupernet(IMAGENET)
    with torch.no_grad():  # distinct values everywhere (the init zeroes the last BN gammas)
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape))
    return model


def _save_like_the_reference(state: dict, path) -> None:
    """torch.save as AttentiveNAS utils/saver.py does, with an AttrDict from an absent module."""
    package, module = types.ModuleType("utils"), types.ModuleType("utils.config")

    class AttrDict(dict):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.__dict__ = self

    AttrDict.__module__ = "utils.config"
    AttrDict.__qualname__ = "AttrDict"
    module.AttrDict, package.config = AttrDict, module
    sys.modules["utils"], sys.modules["utils.config"] = package, module
    try:
        checkpoint = {"epoch": 360, "args": AttrDict(arch="attentive_nas_dynamic_model"), "state_dict": state}
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    finally:
        del sys.modules["utils"], sys.modules["utils.config"]


@pytest.fixture(scope="module")
def official_file(supernet, tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "alphanet_pretrained.pth.tar"
    _save_like_the_reference(reference_state_dict_from_supernet(supernet), path)
    return path


def test_mapping_covers_both_layouts_exactly(supernet):
    mapping = build_key_mapping(supernet)
    layout = reference_layout(IMAGENET)
    ours = supernet.state_dict()
    assert set(mapping.mapped.values()) == set(ours)  # every tensor of ours is provided
    assert set(mapping.mapped) | set(mapping.dropped) == set(layout)  # every reference key is accounted for
    assert len(mapping.mapped) == 802 and len(mapping.dropped) == 666
    assert all(reason == "unused bn_tracking statistics" for reason in mapping.dropped.values())
    # Two independent derivations of the shapes agree.
    for ref, our in mapping.mapped.items():
        assert layout[ref] == tuple(ours[our].shape), ref
    assert layout["blocks.36.mobile_inverted_conv.depth_conv.se.fc.reduce.weight"] == (336, 1344, 1, 1)
    assert layout["last_conv.feature_mix_layer.conv.conv.weight"] == (1984, 1344, 1, 1)


def test_import_restores_every_tensor_and_a0_gets_the_right_slices(supernet, official_file):
    imported = import_official_checkpoint(official_file, IMAGENET)
    for key, value in supernet.state_dict().items():
        assert torch.equal(imported.state_dict()[key], value), key
    reference = load_foreign_checkpoint(official_file)["state_dict"]
    a0 = imported.extract(IMAGENET.named("a0"))
    # mb4 is stage 3; its first block is global block 2+5+6 = 13: in 32 x t 4 = 128 mid channels,
    # kernel 3 = centre of the stored 5x5.
    dw = reference["module.blocks.13.mobile_inverted_conv.depth_conv.conv.conv.weight"]
    assert torch.equal(a0.stages[3][0].depthwise.conv.weight, dw[:128, :, 1:4, 1:4])
    se = reference["module.blocks.7.mobile_inverted_conv.depth_conv.se.fc.reduce.weight"]  # mb3 block 0
    assert torch.equal(a0.stages[2][0].se.reduce.weight, se[:24, :96])  # 24 in x 4 = 96 mid, se 24
    head = reference["module.classifier.linear.linear.weight"]
    assert torch.equal(a0.classifier.weight, head[:, :1792])
    stats = reference["module.blocks.0.mobile_inverted_conv.point_linear.bn.bn.running_var"]
    assert torch.equal(a0.stages[0][0].project.bn.running_var, stats[:16])
    # A0 is the reference's 203.39 MFLOPs / 8.954 M effective-parameter network.
    cx = complexity(IMAGENET, IMAGENET.named("a0"))
    assert round(cx.mflops, 2) == 203.39
    assert cx.params == sum(p.numel() for p in a0.parameters())
    assert round(cx.params / 1e6, 3) == 8.954


def test_bare_state_dict_without_prefix_is_accepted(supernet, tmp_path):
    state = {k[len("module.") :]: v for k, v in reference_state_dict_from_supernet(supernet).items()}
    torch.save(state, tmp_path / "bare.pth")
    imported = import_official_checkpoint(tmp_path / "bare.pth", IMAGENET)
    assert torch.equal(imported.stem.conv.weight, supernet.stem.conv.weight)


def _import_state(state: dict, tmp_path):
    torch.save({"state_dict": state}, tmp_path / "ckpt.pth")
    return import_official_checkpoint(tmp_path / "ckpt.pth", IMAGENET)


def test_coverage_and_shape_errors_name_the_keys(supernet, tmp_path):
    state = reference_state_dict_from_supernet(supernet)
    del state["module.blocks.3.mobile_inverted_conv.depth_conv.conv.conv.weight"]
    state["module.blocks.99.extra.weight"] = torch.zeros(1)
    state["module.classifier.linear.linear.bias"] = torch.zeros(10)
    with pytest.raises(UserError) as info:
        _import_state(state, tmp_path)
    message = str(info.value)
    assert "missing keys: blocks.3.mobile_inverted_conv.depth_conv.conv.conv.weight" in message
    assert "unexpected keys: blocks.99.extra.weight" in message
    assert "shape mismatches: classifier.linear.linear.bias (10,) vs (1000,)" in message
    state = reference_state_dict_from_supernet(supernet)
    state["module.blocks.0.mobile_inverted_conv.depth_conv.conv.5to3_matrix"] = torch.eye(9)
    with pytest.raises(UserError, match="kernel-transformation"):
        _import_state(state, tmp_path)


def test_unreadable_or_foreign_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        import_official_checkpoint(tmp_path / "absent.pth.tar", IMAGENET)
    (tmp_path / "garbage.pth").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        import_official_checkpoint(tmp_path / "garbage.pth", IMAGENET)
    torch.save({"model": [1, 2]}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="expected a 'state_dict' entry"):
        import_official_checkpoint(tmp_path / "other.pth", IMAGENET)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploit-ran",))


def test_the_unpickler_never_calls_globals_from_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": {"a": torch.ones(2)}, "payload": _Exploit()}, tmp_path / "evil.pth")
    loaded = load_foreign_checkpoint(tmp_path / "evil.pth")
    assert isinstance(loaded["payload"], ForeignObject)
    assert not (tmp_path / "exploit-ran").exists()
    assert torch.equal(loaded["state_dict"]["a"], torch.ones(2))
