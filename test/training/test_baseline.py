"""Standalone baselines: plain CNN cost, the trainer's one-network step, results and resume."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from alphanet.engine.training_run import load_baseline
from alphanet.engine.standalone import RESULT_FILE, baseline_network
from alphanet.engine.trainer import train
from alphanet.errors import UserError
from alphanet.models.plain_cnn import PlainCNN, PlainCNNConfig, plain_cnn_complexity
from alphanet.settings import read_yaml
from alphanet.space import load_space
from conftest import TRAINING_DIR, fmnist_available

needs_fmnist = pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")


def _hook_macs(model: torch.nn.Module, size: int) -> int:
    macs = 0

    def conv(module, inputs, output):
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1]
        macs += module.in_channels * module.out_channels * k * output.shape[2] * output.shape[3]

    def linear(module, inputs, output):
        nonlocal macs
        macs += module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(linear)
    model.eval()(torch.zeros(1, 1, size, size))
    return macs


@pytest.mark.parametrize("stages,fc", [([[24], [48, 48]], 128), ([[32, 48], [80, 80], [128, 128]], 256)])
def test_plain_cnn_cost_equals_hook_count_and_parameter_count(stages, fc):
    config = PlainCNNConfig.from_dict({"stages": stages, "fc": fc}, 1, 10, 28)
    model = PlainCNN(config)
    cost = plain_cnn_complexity(config)
    assert cost.mflops * 1e6 == _hook_macs(model, 28)
    assert cost.params == sum(p.numel() for p in model.parameters())


def test_the_bundled_plain_cnns_are_named_by_their_mflops():
    # The card and the pipeline's bar read a plain CNN's cost from its run; the name is what people
    # pick by, so it must not drift from the layout beside it.
    document = read_yaml(TRAINING_DIR / "configs" / "baselines" / "fashion_mnist.yaml", "baselines")
    cnns = {name: raw for name, raw in document["baselines"].items() if raw["kind"] == "plain_cnn"}
    assert len(cnns) >= 2
    for name, raw in cnns.items():
        config = PlainCNNConfig.from_dict(raw, 1, 10, 28)
        assert name == f"cnn-{plain_cnn_complexity(config).mflops:.2f}m"


def test_textbook_cnn_is_the_issue_baseline():
    # conv 32-64-64, two max-pools, FC 128: 11.5 MFLOPs
    config = PlainCNNConfig.from_dict({"stages": [[32], [64, 64]], "fc": 128}, 1, 10, 28)
    assert plain_cnn_complexity(config).mflops == pytest.approx(11.4665, abs=1e-4)


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"stages": [], "fc": 8}, "non-empty"),
        ({"stages": [[8], []], "fc": 8}, "non-empty"),
        ({"stages": [[8]], "fc": 0}, "positive"),
        ({"fc": 8}, "stages"),
        ({"stages": [[4]] * 6, "fc": 8}, "max-pools"),
    ],
)
def test_plain_cnn_config_errors(raw, message):
    with pytest.raises(UserError, match=message):
        PlainCNNConfig.from_dict(raw, 1, 10, 28)


def test_load_baseline_names_the_entry_and_refuses_bad_specs(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("baselines:\n  small: {kind: plain_cnn, stages: [[8]], fc: 16}\n")
    assert load_baseline(f"{path}:small") == {"name": "small", "kind": "plain_cnn", "stages": [[8]], "fc": 16}
    with pytest.raises(UserError, match="known: small"):
        load_baseline(f"{path}:large")
    with pytest.raises(UserError, match="FILE:NAME"):
        load_baseline(str(path))
    with pytest.raises(UserError, match="no such file"):
        load_baseline(f"{tmp_path / 'missing.yaml'}:small")


def test_arch_baseline_is_the_subnetwork_initialised_like_the_supernet(tiny_cfg):
    space = load_space(tiny_cfg["space"])
    cfg = {**tiny_cfg, "baseline": {"kind": "arch", "arch": "max"}}
    net, cost, description = baseline_network(cfg, space, 10)
    assert description["arch"] == space.max_arch().to_dict()
    assert all(float(block.project.bn.weight.abs().sum()) == 0.0 for blocks in net.stages for block in blocks)
    with pytest.raises(UserError, match="baseline.kind"):
        baseline_network({**tiny_cfg, "baseline": {"kind": "resnet"}}, space, 10)


def test_arch_baseline_with_init_starts_from_the_weights_it_inherits(tiny_cfg, tmp_path):
    from alphanet.checkpoint import FORMAT_VERSION, save_checkpoint
    from alphanet.models import AlphaNetSupernet

    space = load_space(tiny_cfg["space"])
    torch.manual_seed(0)
    supernet = AlphaNetSupernet(space, 10)
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
    state = {"format_version": FORMAT_VERSION, "model": supernet.state_dict(), "config": tiny_cfg,
             "space": space.name, "num_classes": 10, "step": 0, "epoch": 0}  # fmt: skip
    checkpoint = save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", state)
    cfg = {**tiny_cfg, "baseline": {"kind": "arch", "arch": "min", "init": str(tmp_path / "run")}}
    net, _, description = baseline_network(cfg, space, 10)
    expected = supernet.extract(space.min_arch()).state_dict()
    for key, value in net.state_dict().items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # restarted: the supernet never kept running statistics
        assert torch.equal(value, expected[key]), key
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert description["init"] == str(tmp_path / "run")
    with pytest.raises(UserError, match="10 classes"):
        baseline_network(cfg, space, 7)
    with pytest.raises(UserError, match="checkpoint not found"):
        baseline_network(
            {**cfg, "baseline": {**cfg["baseline"], "init": str(checkpoint) + ".missing"}}, space, 10
        )


@needs_fmnist
def test_baseline_trains_reports_and_resumes_exactly(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["data"]["holdout_size"] = 32
    cfg["baseline"] = {"name": "tiny-cnn", "kind": "plain_cnn", "stages": [[4], [8]], "fc": 16}
    straight = train(cfg, tmp_path / "straight", progress=False)
    assert straight.status == "completed"
    report = json.loads((tmp_path / "straight" / RESULT_FILE).read_text())
    assert report["name"] == "tiny-cnn" and report["evaluation"]["split"] == "test"
    assert report["evaluation"]["samples"] == 100 and 0.0 <= report["evaluation"]["top1"] <= 1.0
    assert report["heldOut"]["samples"] == 32
    assert report["trainAugment"] == load_space(cfg["space"]).data.get("train_augment")  # as it trained
    # interrupted after 3 steps, then resumed: the same weights as the straight run
    from alphanet.checkpoint import load_checkpoint

    first = train(cfg, tmp_path / "split", max_steps=3, progress=False)
    assert first.status == "max_steps" and not (tmp_path / "split" / RESULT_FILE).exists()
    state = load_checkpoint(first.checkpoint)
    train(cfg, tmp_path / "split", resume_state=state, progress=False)
    a = load_checkpoint(straight.checkpoint)["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
