"""ONNX export: BN folding, graph contract, reference pairs, manifest entries and validation."""

from __future__ import annotations

import copy
import json
import random

import onnx
import pytest
import torch
import torch.nn as nn

from alphanet.export.bn_folding import fold_batchnorm
from alphanet.export.manifest import (
    ManifestError,
    build_manifest,
    build_model_entry,
    check_model_files,
    validate_manifest,
)
from alphanet.export.onnx import export_onnx, verify_onnx_model
from alphanet.export.reference_pair import read_reference_pair, reference_input, write_reference_pair
from alphanet.models import StaticAlphaNet, complexity
from alphanet.space import load_space

SPACE = load_space("fashion_mnist")
LABELS = [f"class-{i}" for i in range(10)]


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so folding has something to fold."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def static_net() -> StaticAlphaNet:
    torch.manual_seed(0)
    arch = SPACE.sample(random.Random(7))
    arch = type(arch)(24, arch.width, arch.depth, arch.kernel_size, arch.expand_ratio)  # 28 -> 24 resize
    return randomise_bn(StaticAlphaNet(SPACE, arch))


@pytest.fixture(scope="module")
def exported(static_net, tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo")
    result = export_onnx(static_net, directory / "fmnist-x.onnx", channels=1, size=28)
    return directory, result


def test_folding_preserves_outputs_and_removes_every_bn(static_net):
    before = copy.deepcopy(static_net.state_dict())
    probe = torch.rand(3, 1, 28, 28)
    folded, count = fold_batchnorm(static_net, probe)
    assert count == sum(isinstance(m, nn.BatchNorm2d) for m in static_net.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(probe), static_net(probe), rtol=1e-4, atol=1e-5)
    for key, value in static_net.state_dict().items():  # the original is untouched
        assert torch.equal(value, before[key])


def test_folding_detects_a_conv_output_with_another_consumer():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(2)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # folding the BN into the conv would change the second use

    model = randomise_bn(Branchy())
    with pytest.raises(RuntimeError, match="BN folding changed the outputs"):
        fold_batchnorm(model, torch.rand(2, 1, 4, 4))


def test_exported_graph_meets_the_contract(exported, static_net):
    directory, result = exported
    assert result.opset == 17 and result.num_classes == 10
    assert result.folded_batchnorms > 0
    model = onnx.load(str(result.path))
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    assert "Resize" in result.node_types  # the 28 px input is resized to the arch's 24 inside the graph
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert (
        graph_input.name == "input" and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    )
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    assert model.graph.output[0].name == "logits" and out_dims[0].dim_param == dims[0].dim_param
    assert out_dims[1].dim_value == 10
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) == 17
    with pytest.raises(ValueError, match=r"input shape must be \[batch, 3, 28, 28\]"):
        verify_onnx_model(model, 3, 28, 10)
    with pytest.raises(ValueError, match="opset must be >= 17"):
        export_onnx(static_net, directory / "old.onnx", channels=1, size=28, opset=13)


def test_no_resize_node_when_the_input_already_has_the_resolution(tmp_path):
    arch = SPACE.min_arch()
    arch = type(arch)(28, arch.width, arch.depth, arch.kernel_size, arch.expand_ratio)
    result = export_onnx(randomise_bn(StaticAlphaNet(SPACE, arch)), tmp_path / "m.onnx", channels=1, size=28)
    assert "Resize" not in result.node_types


@pytest.mark.parametrize(
    ("space_fixture", "grouped"), [("tiny_gdc_space", True), ("tiny_flatten_space", False)]
)
def test_a_positional_head_exports_as_one_conv_over_the_whole_map(space_fixture, grouped, request, tmp_path):
    # gdc: a depthwise conv (groups > 1) whose BN is folded; flatten: one dense conv (= flatten + FC)
    space = request.getfixturevalue(space_fixture)
    torch.manual_seed(0)
    net = randomise_bn(StaticAlphaNet(space, space.max_arch()))
    result = export_onnx(net, tmp_path / "head.onnx", channels=1, size=28)
    assert result.folded_batchnorms == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    final = space.final_size(space.max_arch().resolution)
    (head,) = [
        n
        for n in onnx.load(str(result.path)).graph.node
        if n.op_type == "Conv"
        and any(a.name == "kernel_shape" and list(a.ints) == [final, final] for a in n.attribute)
    ]
    assert any(a.name == "group" and a.i > 1 for a in head.attribute) == grouped


def test_fused_blocks_export_with_every_bn_folded(tiny_fused_space, tmp_path):
    torch.manual_seed(0)
    net = randomise_bn(StaticAlphaNet(tiny_fused_space, tiny_fused_space.max_arch()))
    result = export_onnx(net, tmp_path / "fused.onnx", channels=1, size=28)
    assert result.folded_batchnorms == sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    model = onnx.load(str(result.path))
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}
    dense_5x5 = [
        n
        for n in model.graph.node
        if n.op_type == "Conv"
        and any(a.name == "kernel_shape" and list(a.ints) == [5, 5] for a in n.attribute)
        and all(a.name != "group" or a.i == 1 for a in n.attribute)
    ]
    assert len(dense_5x5) == sum(tiny_fused_space.max_arch().depth[:2])  # one per fused block


def test_reference_pair_is_deterministic_and_exact(static_net, tmp_path):
    inputs = reference_input(1, 28, [0.2860], [0.3530])
    assert inputs.shape == (2, 1, 28, 28) and torch.equal(inputs, reference_input(1, 28, [0.2860], [0.3530]))
    # pixels k/255 normalised: the value range of real images
    assert inputs.min() >= (0 - 0.2860) / 0.3530 - 1e-6 and inputs.max() <= (1 - 0.2860) / 0.3530 + 1e-6
    output = write_reference_pair(static_net, inputs, tmp_path / "a.reference.json")
    write_reference_pair(static_net, inputs, tmp_path / "b.reference.json")
    assert (tmp_path / "a.reference.json").read_bytes() == (tmp_path / "b.reference.json").read_bytes()
    data = json.loads((tmp_path / "a.reference.json").read_text())
    assert data["input"]["shape"] == [2, 1, 28, 28] and data["output"]["shape"] == [2, 10]
    read_in, read_out = read_reference_pair(tmp_path / "a.reference.json")
    assert torch.equal(torch.from_numpy(read_in), inputs)  # float32-exact round trip
    assert torch.equal(torch.from_numpy(read_out), output)
    with pytest.raises(ValueError, match="mean/std"):
        reference_input(3, 28, [0.5], [0.5])


def _entry(directory, name="fmnist-x", **overrides):
    arch = SPACE.min_arch()
    cx = complexity(SPACE, arch)
    values = dict(
        name=name,
        onnx_file=directory / "fmnist-x.onnx",
        mflops=cx.mflops,
        params=cx.params,
        data=SPACE.data,
        resolution=arch.resolution,
        labels=LABELS,
        space_name=SPACE.name,
        arch=arch,
        opset=17,
        top1=0.9,
        top5=0.99,
        evaluation={"dataset": "fashion-mnist", "split": "test", "samples": 10000},
        reference_file="fmnist-x.reference.json",
    )
    values.update(overrides)
    return build_model_entry(**values)


def test_manifest_entry_follows_the_contract(exported):
    directory, _ = exported
    entry = _entry(directory)
    assert entry["input"] == {
        "name": "input",
        "size": 28,
        "channels": 1,
        "mean": [0.286],
        "std": [0.353],
        "resizeShortSide": 28,
        "crop": "center",
        "interpolation": "bilinear",
        "layout": "NCHW",
        "dtype": "float32",
    }
    assert set(entry["arch"]) == {"space", "resolution", "width", "depth", "kernelSize", "expandRatio"}
    assert len(entry["sha256"]) == 64 and entry["file"] == "fmnist-x.onnx"
    manifest = build_manifest(
        zoo_name="alphanet-fmnist", description="test", models=[entry], default_model="fmnist-x"
    )
    assert manifest["schemaVersion"] == 1 and manifest["zoo"]["createdAt"].endswith("Z")
    assert check_model_files(manifest, directory) == {}
    (directory / "copy.onnx").write_bytes(b"not the model")
    tampered = json.loads(json.dumps(manifest))
    tampered["models"][0]["file"] = "copy.onnx"
    assert "does not match its sha256" in check_model_files(tampered, directory)["fmnist-x"]
    tampered["models"][0]["file"] = "absent.onnx"
    assert "not found" in check_model_files(tampered, directory)["fmnist-x"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m["models"].append(dict(m["models"][0])), "duplicate model names: fmnist-x"),
        (lambda m: m.update(defaultModel="nope"), "'nope' names no model"),
        (lambda m: m["models"][0]["input"].update(mean=[0.1, 0.2]), "has 2 values for 1 channel"),
        (
            lambda m: m["models"][0]["input"].update(std=[0.0]),
            "std/0: 0.0 is less than or equal to the minimum of 0",
        ),
        (lambda m: m["models"][0]["input"].update(resizeShortSide=20), "smaller than size 28"),
        (lambda m: m["models"][0].pop("evaluation"), "'evaluation' is a required property"),
        (lambda m: m["models"][0].update(top1=1.5), "top1: 1.5 is greater than the maximum of 1"),
        (lambda m: m["models"][0].update(sha256="ABC"), "sha256"),
        (lambda m: m["models"][0].update(file="../x.onnx"), "/models/0/file: '../x.onnx' does not match"),
        (lambda m: m["models"][0].update(name="Bad Name"), "name"),
        (lambda m: m["models"][0].update(extra=1), "('extra' was unexpected)"),
        (lambda m: m["models"][0]["arch"].update(depth=[1, 2]), "/models/0/arch/depth: [1, 2] is too short"),
        (lambda m: m["models"][0].update(resolution=99), "must equal the model's resolution"),
        (lambda m: m["zoo"].update(createdAt="yesterday"), "ISO-8601"),
        (lambda m: m["models"][0].update(opset=13), "13 is below 17, the exporter's minimum"),
        (lambda m: m.update(schemaVersion=2), "/schemaVersion: 1 was expected"),
        (lambda m: m.update(models=[]), "/models: [] is too short"),
    ],
)
def test_every_contract_invariant_is_checked(exported, mutate, message):
    directory, _ = exported
    manifest = build_manifest(zoo_name="alphanet-fmnist", description="", models=[_entry(directory)])
    mutate(manifest)
    with pytest.raises(ManifestError) as info:
        validate_manifest(manifest)
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_the_generated_json_schema_is_applied_then_the_invariants(exported, tmp_path):
    directory, _ = exported
    manifest = build_manifest(zoo_name="alphanet-fmnist", description="", models=[_entry(directory)])
    schema = {"type": "object", "properties": {"zoo": {"properties": {"description": {"minLength": 5}}}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ManifestError, match="JSON Schema"):
        validate_manifest(manifest, schema_path=tmp_path / "schema.json")
    # The invariants the schema cannot express still apply under any schema.
    (tmp_path / "any.json").write_text("{}")
    validate_manifest(manifest, schema_path=tmp_path / "any.json")
    manifest["defaultModel"] = "nope"
    with pytest.raises(ManifestError, match="'nope' names no model"):
        validate_manifest(manifest, schema_path=tmp_path / "any.json")
    with pytest.raises(ManifestError, match="cannot read the manifest JSON Schema"):
        validate_manifest(manifest, schema_path=tmp_path / "absent.json")
