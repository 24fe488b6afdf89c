"""BN recalibration: exact statistics, mode handling, batch budget, supernet/static agreement."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

from alphanet.engine.bn_calibration import cache_batches, calibrate_bn
from alphanet.engine.evaluate import evaluate
from alphanet.errors import UserError
from alphanet.models import AlphaNetSupernet
from alphanet.space import load_space


class ConvBN(nn.Module):
    """conv -> BN -> dropout; the dropout must stay in eval mode during calibration."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3, momentum=0.1)
        self.dropout = nn.Dropout(0.5)
        self.seen_modes: list[tuple[bool, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_modes.append((self.conv.training, self.bn.training, self.dropout.training))
        return self.dropout(self.bn(self.conv(x)))


def _batches(count: int, size: int = 4, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(size, 2, 5, 5, generator=generator) * 3 + 1 for _ in range(count)]


def test_running_stats_are_the_cumulative_average_of_the_fed_activations():
    torch.manual_seed(0)
    model = ConvBN()
    model.bn.running_mean.fill_(7.0)  # stale statistics must be discarded
    batches = _batches(3)
    used = calibrate_bn(model, batches, num_batches=3)
    assert used == 3
    with torch.no_grad():
        acts = [model.conv(b) for b in batches]
    all_acts = torch.cat(acts)
    # Equal-size batches: the cumulative mean of batch means is the exact mean of all activations.
    torch.testing.assert_close(model.bn.running_mean, all_acts.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    # The variance estimate is the average of the per-batch unbiased variances (the reference's
    # estimator, not the pooled variance).
    per_batch_var = torch.stack([a.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True) for a in acts])
    torch.testing.assert_close(model.bn.running_var, per_batch_var.mean(0), rtol=1e-5, atol=1e-5)
    assert int(model.bn.num_batches_tracked) == 3


def test_single_batch_gives_the_exact_unbiased_variance_and_restores_modes():
    model = ConvBN()
    batch = _batches(1)[0]
    calibrate_bn(model, [(batch, torch.zeros(4))], num_batches=1)  # (images, labels) pairs work
    with torch.no_grad():
        acts = model.conv(batch).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(model.bn.running_mean, acts.mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.bn.running_var, acts.var(1, unbiased=True), rtol=1e-5, atol=1e-5)
    # During calibration only BN was in train mode; afterwards everything is in eval mode.
    assert model.seen_modes == [(False, True, False)]
    assert not any(m.training for m in model.modules())
    assert model.bn.momentum == 0.1  # restored


def test_batch_budget_and_bad_inputs():
    model = ConvBN()
    assert calibrate_bn(model, _batches(10), num_batches=4) == 4
    assert len(model.seen_modes) == 4
    assert calibrate_bn(model, _batches(2), num_batches=5) == 2  # ran out: uses what there is
    with pytest.raises(UserError, match="no batches"):
        calibrate_bn(model, [], num_batches=2)
    with pytest.raises(UserError, match=">= 1"):
        calibrate_bn(model, _batches(2), num_batches=0)
    with pytest.raises(ValueError, match="no BatchNorm"):
        calibrate_bn(nn.Conv2d(2, 2, 1), _batches(1), num_batches=1)
    assert [b.shape for b in cache_batches(iter(_batches(5)), 3)] == [torch.Size([4, 2, 5, 5])] * 3


def test_supernet_and_extracted_static_net_calibrate_to_the_same_statistics():
    torch.manual_seed(1)
    space = load_space("fashion_mnist")
    supernet = AlphaNetSupernet(space)
    with torch.no_grad():  # non-trivial gammas so every block contributes
        for module in supernet.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    arch = space.sample(random.Random(3))
    supernet.set_active(arch)
    static = supernet.extract(arch)
    generator = torch.Generator().manual_seed(2)
    batches = [torch.rand(6, 1, 28, 28, generator=generator) for _ in range(3)]
    calibrate_bn(supernet, batches, num_batches=3)
    calibrate_bn(static, batches, num_batches=3)
    # The supernet's sliced statistics equal the static network's, layer for layer.
    recalibrated_from_supernet = supernet.extract(arch)
    for (name, a), (_, b) in zip(
        static.state_dict().items(), recalibrated_from_supernet.state_dict().items()
    ):
        if "running_" in name:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    probe = torch.rand(4, 1, 28, 28, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(supernet(probe), static(probe), rtol=1e-4, atol=1e-4)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4, momentum=0.0)  # like the supernet: statistics never updated
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def test_calibration_makes_a_model_trained_without_running_stats_accurate():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def make_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 2, (n,), generator=generator)
        images = torch.randn(n, 1, 6, 6, generator=generator) + 5.0 + 3.0 * labels.view(-1, 1, 1, 1)
        return images, labels

    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(150):
        images, labels = make_batch(32)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_set = [make_batch(64) for _ in range(4)]
    # The never-updated running statistics (0, 1) make the trained model useless in eval mode…
    assert evaluate(model, test_set)["top1"] < 0.75
    # …and recalibrating them restores it.
    calibrate_bn(model, [make_batch(64) for _ in range(8)], num_batches=8)
    accuracy = evaluate(model, test_set)
    assert accuracy["samples"] == 256
    assert accuracy["top1"] >= 0.95


def test_channels_last_calibration_and_evaluation_match_the_default_layout():
    torch.manual_seed(4)
    space = load_space("fashion_mnist")
    supernet = AlphaNetSupernet(space)
    arch = space.sample(random.Random(6))
    plain = supernet.extract(arch)
    fast = supernet.extract(arch).to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(3)
    batches = [torch.rand(8, 1, 28, 28, generator=generator) for _ in range(2)]
    calibrate_bn(plain, batches, num_batches=2)
    calibrate_bn(fast, batches, num_batches=2, channels_last=True)
    for (name, a), (_, b) in zip(plain.state_dict().items(), fast.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    labelled = [(b, torch.arange(8) % 10) for b in batches]
    assert evaluate(plain, labelled) == evaluate(fast, labelled, channels_last=True)
