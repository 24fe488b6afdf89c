"""End-to-end sub-network commands on a small Fashion-MNIST supernet: calibrate, evaluate,
search, export (supernet, calibrated, search-results and official-layout sources), and the
one-line exit-2 user errors. Batches are tiny; the point is the plumbing and the artefacts."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import onnx
import pytest
import torch

from alphanet.__main__ import main
from alphanet.checkpoint import FORMAT_VERSION, save_checkpoint
from alphanet.cli._subnet_options import calibration_settings
from alphanet.config import load_config
from alphanet.data.fashion_mnist import CLASSES
from alphanet.engine.subnet_eval import CalibrationSettings
from alphanet.export.manifest import check_model_files, validate_manifest
from alphanet.export.official_checkpoint import reference_state_dict_from_supernet
from alphanet.export.onnx import verify_onnx_model
from alphanet.export.reference_pair import read_reference_pair
from alphanet.export.sources import SubnetSource
from alphanet.models import AlphaNetSupernet
from alphanet.space import load_space

SPACE = load_space("fashion_mnist")
CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
SEARCH_CONFIG = str(CONFIGS / "search" / "fashion_mnist.yaml")
FAST = ["--calib-batches", "2", "--calib-batch-size", "16", "--max-batches", "1", "--eval-batch-size", "32"]


@pytest.fixture(scope="module")
def supernet_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    supernet = AlphaNetSupernet(SPACE)
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
    path = tmp_path_factory.mktemp("run") / "last.pt"
    state = {
        "format_version": FORMAT_VERSION,
        "model": supernet.state_dict(),
        "config": load_config(None),
        "space": SPACE.name,
        "num_classes": 10,
        "classes": list(CLASSES),
        "step": 0,
        "epoch": 0,
    }
    save_checkpoint(path, state)
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "command", ["calibrate", "evaluate", "export", "search", "latency", "import-official"]
)
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_calibrate_then_evaluate_the_calibrated_checkpoint(supernet_checkpoint, tmp_path, capsys):
    out = tmp_path / "min.pt"
    code, stdout, _ = run_cli(
        capsys, "calibrate", "--checkpoint", supernet_checkpoint, "--arch", "min", "--out", out, *FAST[:4]
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["calibration"]["batches"] == 2 and summary["calibration"]["images"] == 32
    assert summary["arch"]["resolution"] == SPACE.min_arch().resolution
    state = torch.load(out)
    assert state["kind"] == "static_subnet" and state["classes"] == list(CLASSES)
    assert int(state["model"]["stem.bn.num_batches_tracked"]) == 2  # calibrated statistics were saved
    code, stdout, _ = run_cli(
        capsys, "evaluate", "--checkpoint", out, "--max-batches", "1", "--eval-batch-size", "32"
    )
    assert code == 0
    (result,) = json.loads(stdout)["results"]
    assert result["samples"] == 32 and 0.0 <= result["top1"] <= result["top5"] <= 1.0
    assert result["evaluation"] == {"dataset": "fashion-mnist", "split": "test"}
    assert result["calibration"]["batches"] == 2  # the stored record, no recalibration


def test_evaluate_archs_of_a_supernet(supernet_checkpoint, tmp_path, capsys):
    code, stdout, _ = run_cli(
        capsys, "evaluate", "--checkpoint", supernet_checkpoint, "--arch", "min", "--arch", "max", *FAST,
        "--out", tmp_path / "eval.json",
    )  # fmt: skip
    assert code == 0
    results = json.loads(stdout)["results"]
    assert [r["name"] for r in results] == ["min", "max"]
    assert results[0]["mflops"] == pytest.approx(6.869, abs=1e-3) and results[1]["mflops"] > 42
    assert json.loads((tmp_path / "eval.json").read_text()) == json.loads(stdout)


def _check_zoo(directory, names):
    manifest = json.loads((directory / "manifest.json").read_text())
    validate_manifest(manifest)
    assert check_model_files(manifest, directory) == {}
    assert sorted(m["name"] for m in manifest["models"]) == sorted(names)
    for model in manifest["models"]:
        assert model["labels"] == list(CLASSES)
        assert model["evaluation"] == {
            "dataset": "fashion-mnist",
            "split": "test",
            "samples": 32,
            "runtime": "pytorch",
        }
        graph = onnx.load(str(directory / model["file"]))
        verify_onnx_model(graph, 1, 28, 10)
        inputs, outputs = read_reference_pair(directory / model["reference"]["file"])
        assert inputs.shape == (2, 1, 28, 28) and outputs.shape == (2, 10)
    return manifest


def test_export_archs_and_a_calibrated_checkpoint_into_one_zoo(supernet_checkpoint, tmp_path, capsys):
    zoo = tmp_path / "zoo"
    code, _, stderr = run_cli(
        capsys, "export", "--checkpoint", supernet_checkpoint, "--arch", "min", "--arch", "max",
        "--out-dir", zoo, "--default-model", "fashion-mnist-max", *FAST,
    )  # fmt: skip
    assert code == 0, stderr
    manifest = _check_zoo(zoo, ["fashion-mnist-min", "fashion-mnist-max"])
    assert manifest["defaultModel"] == "fashion-mnist-max"
    assert manifest["zoo"]["source"]["checkpoint"] == str(supernet_checkpoint)
    calibrated = tmp_path / "mid.pt"
    arch_file = tmp_path / "mid.json"
    arch_file.write_text(json.dumps(SPACE.sample(random.Random(5)).to_dict()))
    run_cli(
        capsys,
        "calibrate",
        "--checkpoint",
        supernet_checkpoint,
        "--arch",
        arch_file,
        "--out",
        calibrated,
        *FAST[:4],
    )
    code, _, stderr = run_cli(
        capsys,
        "export",
        "--checkpoint",
        calibrated,
        "--out-dir",
        zoo,
        "--max-batches",
        "1",
        "--eval-batch-size",
        "32",
    )
    assert code == 0, stderr
    _check_zoo(zoo, ["fashion-mnist-min", "fashion-mnist-max", "fashion-mnist-mid"])


def test_search_then_export_its_picks(supernet_checkpoint, tmp_path, capsys):
    results = tmp_path / "search.json"
    search = [
        "search", SEARCH_CONFIG,
        f"checkpoint={supernet_checkpoint}", f"output={results}",
        "evolution.population_size=3", "evolution.mutate_size=2", "evolution.crossover_size=1",
        "evolution.iterations=2", "fitness.holdout_size=64", "fitness.calib_batches=1",
        "fitness.calib_batch_size=16", "fitness.eval_batch_size=64", "targets_mflops=[8,16,42.2]",
    ]  # fmt: skip
    code, stdout, stderr = run_cli(capsys, *search)
    assert code == 0, stderr
    data = json.loads(results.read_text())
    # Every evaluation was journalled: the same search again replays them all, with the same results.
    journal = tmp_path / "search.journal.jsonl"
    assert len(journal.read_text().splitlines()) == 1 + data["evaluatedCount"]
    code, _, stderr = run_cli(capsys, *search)
    assert code == 0 and f"resuming: {data['evaluatedCount']} evaluations recorded" in stderr
    assert json.loads(results.read_text()) == data
    assert data["space"] == "fashion_mnist" and json.loads(stdout)["evaluated"] == data["evaluatedCount"]
    assert data["fitness"]["holdoutSize"] == 64 and data["fitness"]["calibrationPool"] == 60000 - 64
    assert "training split" in data["fitness"]["split"]
    assert len(data["history"]) == 2 and data["evaluatedCount"] <= 3 + 3
    for candidate in data["archive"]:
        assert 6.0 <= candidate["mflops"] <= 42.2 and candidate["samples"] == 64
    picks = [t["pick"] for t in data["targets"] if t["pick"]]
    assert picks and all(p["mflops"] <= t["targetMflops"] for t, p in zip(data["targets"], picks) if p)
    zoo = tmp_path / "zoo"
    code, _, stderr = run_cli(
        capsys, "export", "--checkpoint", supernet_checkpoint, "--search-results", results, "--out-dir", zoo,
        "--name-prefix", "fm-", *FAST,
    )  # fmt: skip
    assert code == 0, stderr
    unique = {json.dumps(p["arch"], sort_keys=True): p for p in picks}
    manifest = _check_zoo(zoo, [f"fm-{round(p['mflops'], 2):g}m" for p in unique.values()])
    assert {m["mflops"] for m in manifest["models"]} == {round(p["mflops"], 4) for p in unique.values()}


def test_official_layout_import_and_export(tmp_path, capsys):
    torch.manual_seed(3)
    reference = reference_state_dict_from_supernet(AlphaNetSupernet(SPACE))
    official = tmp_path / "alphanet_pretrained.pth.tar"
    torch.save({"state_dict": reference, "epoch": 1}, official, _use_new_zipfile_serialization=False)
    config = CONFIGS / "fashion_mnist.yaml"
    converted = tmp_path / "official.pt"
    code, stdout, stderr = run_cli(
        capsys,
        "import-official",
        official,
        "--space",
        "fashion_mnist",
        "--config",
        config,
        "--out",
        converted,
    )
    assert code == 0, stderr
    assert json.loads(stdout)["mappedTensors"] == len(AlphaNetSupernet(SPACE).state_dict())
    code, stdout, _ = run_cli(capsys, "evaluate", "--checkpoint", converted, "--arch", "min", *FAST)
    assert code == 0
    zoo = tmp_path / "zoo"
    code, _, stderr = run_cli(
        capsys, "export", "--official-checkpoint", official, "--space", "fashion_mnist", "--config", config,
        "--arch", "min", "--out-dir", zoo, *FAST,
    )  # fmt: skip
    assert code == 0, stderr
    manifest = _check_zoo(zoo, ["fashion-mnist-min"])
    assert manifest["zoo"]["source"]["checkpoint"] == "official-alphanet"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--checkpoint", "/nonexistent/ckpt.pt", "--arch", "min"], "checkpoint not found"),
        (["evaluate", "--checkpoint", "{ckpt}", "--arch", "a9"], "unknown arch 'a9'"),
        (["evaluate", "--checkpoint", "{ckpt}"], "--arch is required"),
        (["evaluate", "--checkpoint", "{ckpt}", "--arch", "min", "data.nope=1"], "unknown key 'data.nope'"),
        (["evaluate", "--checkpoint", "{ckpt}", "--arch", "min", "--space", "imagenet"], "only apply with"),
        (
            ["calibrate", "--checkpoint", "{ckpt}", "--arch", "min", "--out", "x.pt", "--calib-batches", "0"],
            ">= 1",
        ),
        (
            [
                "calibrate",
                "--checkpoint",
                "{ckpt}",
                "--arch",
                "min",
                "--out",
                "{ckpt}/x.pt",
                "--calib-batches",
                "1",
            ],
            "{ckpt}",
        ),
        (["export", "--checkpoint", "{ckpt}", "--out-dir", "zoo"], "choose sub-networks"),
        (["export", "--checkpoint", "{ckpt}", "--pareto", "--out-dir", "zoo"], "--pareto needs"),
        (["export", "--checkpoint", "{ckpt}", "--arch", "min", "--opset", "11", "--out-dir", "z"], "--opset"),
        (["search", SEARCH_CONFIG], "exactly one of checkpoint"),
        (["search", SEARCH_CONFIG, "checkpoint=x", "evolution.bogus=1"], "unknown key"),
        (["search", "/nonexistent.yaml"], "search config file not found"),
        (["latency", "--space", "nope", "--out", "t.json"], "unknown space 'nope'"),
        (["import-official", "/nonexistent.pth.tar", "--out", "x.pt"], "not found"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    argv, message, supernet_checkpoint, tmp_path, capsys, monkeypatch
):
    argv = [a.replace("{ckpt}", str(supernet_checkpoint)) for a in argv]
    message = message.replace("{ckpt}", str(supernet_checkpoint))
    if argv[0] != "search":
        monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(capsys, *argv)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr


def test_official_weights_default_to_the_reference_evaluation_budget():
    cfg = load_config(None)
    args = argparse.Namespace(calib_batches=None, calib_batch_size=None, calib_seed=5)
    official = SubnetSource(SPACE, cfg, None, "official-alphanet", official=True)
    ours = SubnetSource(SPACE, cfg, None, "runs/x")
    assert calibration_settings(args, official) == CalibrationSettings(64, 256, 5)
    expected = (cfg["validation"]["calib_batches"], cfg["validation"]["calib_batch_size"])
    assert (calibration_settings(args, ours).batches, calibration_settings(args, ours).batch_size) == expected
    args = argparse.Namespace(calib_batches=3, calib_batch_size=7, calib_seed=1)
    assert calibration_settings(args, official) == CalibrationSettings(3, 7, 1)
