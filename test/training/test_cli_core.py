"""CLI: ``python3 -m alphanet flops`` / ``train`` — outputs, resume, one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from alphanet.__main__ import main
from alphanet.checkpoint import load_checkpoint
from conftest import GOLDEN_DIR, TRAINING_DIR, fmnist_available

GOLDEN = json.loads((GOLDEN_DIR / "complexity.json").read_text())
PUBLISHED = {"a0": 203.39, "a1": 279.24, "a2": 316.73, "a3": 356.52, "a4": 443.53, "a5": 491.48}
PUBLISHED.update({"a5_1": 594.79, "a6": 709.01, "min": 203.39, "max": 1939.34})


def _run_module(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(TRAINING_DIR))
    return subprocess.run(
        [sys.executable, "-m", "alphanet", *args], cwd=TRAINING_DIR, env=env, capture_output=True, text=True
    )


def test_flops_json_through_python_dash_m():
    proc = _run_module("flops", "--space", "imagenet", "--arch", "a0", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (
        out["mflops"] == pytest.approx(203.39, rel=1e-3)
        and out["params"] == GOLDEN["imagenet"]["a0"]["params"]
    )
    assert out["config"]["resolution"] == 192


@pytest.mark.parametrize("arch", list(PUBLISHED))
def test_flops_json_for_every_published_arch(arch, capsys):
    assert main(["flops", "--space", "imagenet", "--arch", arch, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mflops"] == pytest.approx(PUBLISHED[arch], rel=1e-3)
    assert out["params"] == GOLDEN["imagenet"][arch]["params"]


def test_flops_table_and_multiple_archs(capsys, tmp_path):
    assert main(["flops", "--space", "fashion_mnist"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["arch", "res", "MFLOPs", "params"] and [r.split()[0] for r in table[1:]] == [
        "min",
        "max",
    ]
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(
        json.dumps(
            {"resolution": 28, "width": [16, 16, 24, 32, 40, 48, 72, 96, 512]}
            | {"depth": [1, 1, 2, 2, 2, 2, 1], "kernel_size": [3] * 7, "expand_ratio": [1, 4, 4, 4, 4, 6, 6]}
        )
    )
    assert (
        main(["flops", "--space", "fashion_mnist", "--arch", "min", "--arch", str(arch_file), "--json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == ["min", str(arch_file)] and rows[1]["mflops"] > rows[0]["mflops"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["flops", "--space", "imagenet", "--arch", "a9"], "unknown arch 'a9'"),
        (["flops", "--space", "cifar"], "unknown space 'cifar'"),
        (["train"], "--config is required"),
        (["train", "--config", "/nonexistent.yaml"], "config file not found"),
        (["train", "--config", "configs/fashion_mnist.yaml", "optim.lrr=1"], "unknown key 'optim.lrr'"),
        (
            ["train", "--config", "configs/fashion_mnist.yaml", "data.root=/nonexistent"],
            "directory not found",
        ),
        (["train", "--resume", "/nonexistent/run"], "checkpoint not found"),
        (["train", "--resume", "auto"], "--resume auto needs --run-dir"),
        (["train", "--config", "configs/fashion_mnist.yaml", "--max-steps", "0"], "--max-steps must be >= 1"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(TRAINING_DIR)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_user_error_from_the_real_entry_point_has_no_traceback():
    proc = _run_module("train", "--config", "configs/fashion_mnist.yaml", "train.epochs=zero")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: config: train.epochs must be an integer, got 'zero'"


@pytest.mark.parametrize("command", [[], ["train"], ["flops"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    if command == ["train"]:
        for flag in (
            "--config",
            "--run-dir",
            "--resume",
            "--max-steps",
            "--time-limit-min",
            "--seed",
            "KEY=VALUE",
        ):
            assert flag in out


@pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")
def test_train_then_resume_auto(tiny_space_file, tmp_path, capsys):
    run_dir = tmp_path / "run"
    common = ["--config", str(TRAINING_DIR / "configs" / "fashion_mnist.yaml"), "--run-dir", str(run_dir)]
    overrides = [
        f"space={tiny_space_file}",
        "data.batch_size=16",
        "data.max_train_samples=80",
        "data.holdout_size=16",  # 64 training images: 4 steps of 16
        "data.max_val_samples=50",
        "validation.calib_batches=1",
        "runtime.threads=1",
        "runtime.device=cpu",
    ]
    flags = ["--epochs", "1", "--seed", "4", "--no-progress"]
    assert main(["train", *common, "--max-steps", "2", *flags, *overrides]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "max_steps" and summary["step"] == 2 and summary["runDir"] == str(run_dir)
    # A fresh start into an existing run is refused; --resume auto continues it.
    with pytest.raises(Exception, match="already holds a run"):
        from alphanet.cli.train import run as run_train
        from alphanet.__main__ import build_parser

        run_train(build_parser().parse_args(["train", *common, *overrides]))
    # The same command line with --resume auto continues the run (a restart after interruption).
    assert main(["train", *common, "--resume", "auto", *flags, *overrides]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["step"] == 4 and summary["epoch"] == 1
    state = load_checkpoint(run_dir)
    assert state["config"]["seed"] == 4 and state["config"]["train"]["epochs"] == 1
    assert (run_dir / "config.yaml").is_file() and (run_dir / "metrics.jsonl").is_file()
