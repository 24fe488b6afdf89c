"""Sandwich trainer: step semantics, exact resume, logging, checkpoints, stopping, schedule."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest
import torch
import yaml

from alphanet.checkpoint import load_checkpoint
from alphanet.engine.trainer import SandwichTrainer, TrainingDiverged, train
from alphanet.loss import label_smoothed_cross_entropy
from alphanet.optim import WarmupCosine, build_optimizer, build_scheduler, parameter_groups, peak_lr
from conftest import fmnist_available

pytestmark = pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")


def _batch(trainer: SandwichTrainer):
    images, labels = next(iter(trainer.train_loader))
    return images.contiguous(memory_format=trainer.memory_format), labels


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_one_step_is_the_sandwich_rule_with_summed_gradients(tiny_cfg, tmp_path):
    trainer = SandwichTrainer(tiny_cfg, tmp_path, progress=False)
    net, space = trainer.net, trainer.space
    images, labels = _batch(trainer)
    seen = []
    net.register_forward_pre_hook(
        lambda module, args: seen.append((module.active_arch, module.dropout_rate, module.drop_connect_rate))
    )
    captured = {}
    trainer.optimizer.step = lambda: captured.update(
        {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    )
    torch_state, arch_state = torch.get_rng_state(), trainer.arch_rng.getstate()
    values = trainer.train_step(images, labels)

    # Order: max (dropout + drop-connect), N random, min (both off).
    sampler = random.Random()
    sampler.setstate(arch_state)
    randoms = [space.sample(sampler) for _ in range(2)]
    assert [s[0] for s in seen] == [space.max_arch(), *randoms, space.min_arch()]
    assert seen[0][1:] == (0.2, 0.2) and all(s[1:] == (0.0, 0.0) for s in seen[1:])
    assert set(values) == {
        "loss_max",
        "loss_random_1",
        "loss_random_2",
        "loss_min",
        "acc_max",
        "divergence_min",
    }

    # Recompute by hand: the gradients of the 4 losses add up, then element-wise clipping at 1.0.
    torch.set_rng_state(torch_state)
    net.zero_grad(set_to_none=True)
    net.set_active(space.max_arch())
    net.set_dropout(0.2)
    net.set_drop_connect(0.2, True)
    logits = net(images)
    label_smoothed_cross_entropy(logits, labels, 0.1).backward()
    teacher = logits.detach()
    net.set_dropout(0.0)
    net.set_drop_connect(0.0)
    for arch in [*randoms, space.min_arch()]:
        net.set_active(arch)
        trainer.distill_loss(net(images), teacher, labels).backward()
    for name, param in net.named_parameters():
        if param.grad is None:
            assert captured[name] is None, name
            continue
        torch.testing.assert_close(captured[name], param.grad.clamp(-1.0, 1.0), rtol=0, atol=0, msg=name)


def _state(path):
    return load_checkpoint(path)


def test_resume_is_exact(tiny_cfg, tmp_path):
    # 6 steps per epoch: the run crosses an epoch end (validation + epoch checkpoint) mid-way.
    straight = train(tiny_cfg, tmp_path / "a", max_steps=9, progress=False)
    assert straight.status == "max_steps" and straight.step == 9
    first = train(tiny_cfg, tmp_path / "b", max_steps=4, progress=False)
    assert first.step == 4
    resumed = train(
        tiny_cfg, tmp_path / "b", resume_state=_state(tmp_path / "b"), max_steps=5, progress=False
    )
    assert resumed.step == 9 and resumed.epoch == 1
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for slot_a, slot_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(slot_a["momentum_buffer"], slot_b["momentum_buffer"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 9
    assert a["rng"]["arch_sampler"] == b["rng"]["arch_sampler"]
    assert (a["epoch"], a["epoch_step"]) == (b["epoch"], b["epoch_step"]) == (1, 3)


def test_full_run_writes_metrics_config_and_checkpoints(tiny_cfg, tmp_path):
    result = train(tiny_cfg, tmp_path, progress=False)
    assert result.status == "completed" and result.epoch == 2 and result.step == 12
    assert set(result.validation) == {"min", "max"}
    for name, acc in result.validation.items():
        assert 0.0 <= acc["top1"] <= acc["top5"] <= 1.0 and acc["samples"] == 100 and acc["mflops"] > 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    assert kinds.count("step") == 6  # every 2 steps
    step = next(r for r in records if r["type"] == "step")
    for key in ("lr", "loss_max", "loss_random_1", "loss_random_2", "loss_min", "images_per_second"):
        assert isinstance(step[key], float) and math.isfinite(step[key])
    epoch = next(r for r in records if r["type"] == "epoch")
    assert epoch["epoch_seconds"] > 0 and "validation" in epoch and "train_loss_min" in epoch
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == tiny_cfg
    ckpt_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["epoch_001.pt", "epoch_002.pt", "last.pt"]
    state = load_checkpoint(tmp_path)
    expected_keys = {"model", "optimizer", "scheduler", "step", "epoch", "epoch_step", "rng", "config"}
    expected_keys |= {"space", "num_classes", "classes", "format_version", "world_size", "validation"}
    assert set(state) == expected_keys
    assert state["num_classes"] == 10 and state["classes"][0] == "T-shirt/top" and state["config"] == tiny_cfg
    assert state["step"] == 12 and state["epoch"] == 2 and state["epoch_step"] == 0
    # The schedule ran to its end: cosine reached 0.
    assert state["scheduler"]["last_epoch"] == 12
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_time_limit_checkpoints_and_stops(tiny_cfg, tmp_path):
    result = train(tiny_cfg, tmp_path, time_limit_min=1e-6, progress=False)
    assert result.status == "time_limit" and result.step == 1
    assert load_checkpoint(tmp_path)["step"] == 1


@pytest.mark.parametrize("distill", ["kl", "none"])
def test_other_distillation_losses_train(tiny_cfg, tmp_path, distill):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["loss"]["distill"] = distill
    trainer = SandwichTrainer(cfg, tmp_path, progress=False)
    images, labels = _batch(trainer)
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    values = trainer.train_step(images, labels)
    assert "divergence_min" not in values and all(math.isfinite(v) for v in values.values())
    if distill == "kl":
        assert values["loss_min"] >= 0  # a true KL
    assert any(not torch.equal(before[k], v) for k, v in trainer.net.state_dict().items())


def test_non_finite_loss_stops_training(tiny_cfg, tmp_path):
    trainer = SandwichTrainer(tiny_cfg, tmp_path, progress=False)
    trainer.distill_loss = lambda student, teacher, target: student.sum() * float("nan")
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 1"):
        trainer.train_step(*_batch(trainer))


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(total=100, warmup=10, start_factor=0.001)
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(5) == pytest.approx((0.001 * 0.5 + 0.5) * 0.5 * (1 + math.cos(math.pi * 0.05)))
    assert schedule(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert schedule(50) == pytest.approx(0.5) and schedule(100) == pytest.approx(0.0)
    floor = WarmupCosine(total=100, warmup=0, start_factor=1.0, min_factor=0.1)
    assert floor(100) == pytest.approx(0.1) and floor(0) == pytest.approx(1.0)


def test_optimizer_groups_lr_scaling_and_scheduler(tiny_space):
    from alphanet.models import AlphaNetSupernet

    model = AlphaNetSupernet(tiny_space)
    groups = parameter_groups(model, 1e-5)
    assert groups[0]["weight_decay"] == 1e-5 and groups[1]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])
    no_decay = {id(p) for p in groups[1]["params"]}
    assert id(model.stem.bn.weight) in no_decay and id(model.classifier.bias) in no_decay
    cfg = {"lr": 0.1, "scale_lr_by_batch": True, "lr_scale_batch": 256, "momentum": 0.9, "nesterov": True}
    cfg.update(
        {"weight_decay": 1e-5, "warmup_epochs": 1.0, "warmup_start_factor": 0.001, "min_lr_factor": 0.0}
    )
    assert peak_lr(cfg, 2048) == pytest.approx(0.8) and peak_lr(cfg, 128) == pytest.approx(0.1)
    assert peak_lr(dict(cfg, scale_lr_by_batch=False), 2048) == pytest.approx(0.1)
    optimizer = build_optimizer(model, cfg, 512)
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=10, epochs=4)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.001)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 10 / 40)))


def test_sigterm_checkpoints_at_the_next_step_and_stops(tiny_cfg, tmp_path):
    import os
    import signal

    trainer = SandwichTrainer(tiny_cfg, tmp_path, progress=False)
    step = trainer.train_step

    def step_then_signal(images, labels):
        values = step(images, labels)
        if trainer.state.step == 1:  # the handler runs now; the loop stops after this step
            os.kill(os.getpid(), signal.SIGTERM)
        return values

    trainer.train_step = step_then_signal
    previous = signal.getsignal(signal.SIGTERM)
    result = trainer.train()
    assert result.status == "signal" and result.step == 2
    assert load_checkpoint(tmp_path)["step"] == 2
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored


def test_metrics_writer_and_progress_lines(tmp_path):
    import io

    from alphanet.logging_utils import MetricsWriter, Progress

    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.write({"type": "step", "loss": float("nan"), "nested": {"x": float("inf")}})
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert record["loss"] is None and record["nested"]["x"] is None and "time" in record
    MetricsWriter(None).write({"type": "ignored"})  # non-main ranks write nothing
    stream = io.StringIO()
    progress = Progress(total=10, every=4, stream=stream)
    progress.begin(epoch=0, done=0)
    for done in range(1, 11):
        progress.update(done, "loss 1.0")
    lines = stream.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["4/10", "8/10", "10/10"] and "\r" not in stream.getvalue()


def test_students_learn_from_labels_until_distill_start(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["loss"]["distill_start_epochs"] = 1.0
    trainer = SandwichTrainer(cfg, tmp_path, progress=False)
    assert trainer.distill_start_step == trainer.steps_per_epoch
    calls = []
    trainer.distill_loss = lambda student, teacher, target: calls.append("distill") or student.sum() * 0
    values = trainer.train_step(*_batch(trainer))
    # Before the start step: label-smoothed CE (positive, no divergence logged), never the distill loss.
    assert calls == [] and "divergence_min" not in values and values["loss_min"] > 0
    trainer.state.step = trainer.distill_start_step
    trainer.train_step(*_batch(trainer))
    assert calls == ["distill"] * 3


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_distillation_ramps_in_linearly_after_its_start(tiny_cfg, tmp_path, share):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["loss"]["distill_start_epochs"] = 1.0
    cfg["loss"]["distill_ramp_epochs"] = 2.0
    cfg["loss"]["distill_weight"] = share
    trainer = SandwichTrainer(cfg, tmp_path, progress=False)
    start, ramp = trainer.distill_start_step, trainer.distill_ramp_steps
    assert start == trainer.steps_per_epoch and ramp == 2 * trainer.steps_per_epoch
    steps = (0, start - 1, start, start + ramp // 4, start + ramp, start + 10 * ramp)
    assert [trainer.distill_weight(step) for step in steps] == [0.0, 0.0, 0.0, share / 4, share, share]
    # Constant stand-ins make the blend visible in the logged student losses.
    trainer.label_loss = lambda student, teacher, target: student.sum() * 0 + 2.0
    trainer.distill_loss = lambda student, teacher, target: student.sum() * 0 + 6.0
    for step, weight in (
        (start - 1, 0.0),
        (start + ramp // 4, share / 4),
        (start + ramp // 2, share / 2),
        (start + ramp, share),
    ):
        trainer.state.step = step
        values = trainer.train_step(*_batch(trainer))
        expected = 2.0 + 4.0 * weight
        assert values["loss_min"] == pytest.approx(expected) and values["loss_random_1"] == pytest.approx(
            expected
        )


def test_resume_with_more_epochs_follows_the_new_schedule(tiny_cfg, tmp_path):
    train(tiny_cfg, tmp_path, max_steps=3, progress=False)
    longer = copy.deepcopy(tiny_cfg)
    longer["train"]["epochs"] = 4
    longer["optim"]["weight_decay"] = 1e-3
    trainer = SandwichTrainer(longer, tmp_path, resume_state=load_checkpoint(tmp_path), progress=False)
    schedule = WarmupCosine(total=24, warmup=3, start_factor=0.001)
    group = trainer.optimizer.param_groups[0]
    assert trainer.scheduler.last_epoch == 3 and group["lr"] == pytest.approx(0.1 * schedule(3))
    assert group["weight_decay"] == 1e-3 and trainer.optimizer.param_groups[1]["weight_decay"] == 0.0
    trainer.train_step(*_batch(trainer))
    assert group["lr"] == pytest.approx(0.1 * schedule(4))
    assert len(trainer.optimizer.state) > 0  # momentum buffers came back
