"""The same config and seed give the same checkpoint, search result and published manifest.

A tiny end-to-end run (train -> search -> pipeline publish) is compared with the figures recorded
from it in ``golden/tiny_run.json``. Those figures were recorded before the training code was
reorganised into library functions under thin CLIs, so this test is what proves the
reorganisation changed no result. Volatile fields (times, host, paths of temporary directories,
ONNX bytes, which the exporter of another torch version may lay out differently) are left out.

Regenerate (only for an intended change of results): ``ALPHANET_UPDATE_GOLDEN=1 pytest ...``.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest
import yaml

from alphanet.checkpoint import load_checkpoint, save_checkpoint
from alphanet.config import config_from_dict
from conftest import GOLDEN_DIR, fmnist_available
from pipeline_helpers import FMNIST_PIPELINE, fast_overrides, run_cli

pytestmark = pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")

GOLDEN = GOLDEN_DIR / "tiny_run.json"
SEARCH_CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "search" / "fashion_mnist.yaml"
SEARCH_OVERRIDES = [
    "evolution.population_size=4",
    "evolution.mutate_size=2",
    "evolution.crossover_size=2",
    "evolution.iterations=1",
    "constraints.min_mflops=0",
    "constraints.max_mflops=1000",
    "constraints.flops_step=0.05",
    "fitness.holdout_size=16",
    "fitness.calib_batches=1",
    "fitness.calib_batch_size=16",
    "fitness.eval_batch_size=16",
]
VOLATILE_MODEL_KEYS = {"file", "sha256", "reference", "latencyMs"}


def _checkpoint_digest(path: Path) -> dict:
    state = load_checkpoint(path)
    tensors = {
        key: [float(value.double().sum()), float(value.double().abs().sum())]
        for key, value in state["model"].items()
        if value.is_floating_point()
    }
    return {
        "step": state["step"],
        "epoch": state["epoch"],
        "config": {**state["config"], "space": "<tiny space file>"},
        "tensors": tensors,
    }


def _search_digest(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {
        "evaluatedCount": data["evaluatedCount"],
        "paretoFront": [(e["arch"], e["mflops"], e["top1"]) for e in data["paretoFront"]],
        "targets": [(t["targetMflops"], t["pick"] and t["pick"]["arch"]) for t in data["targets"]],
    }


def _manifest_digest(path: Path) -> dict:
    manifest = json.loads(path.read_text())
    models = [{k: v for k, v in m.items() if k not in VOLATILE_MODEL_KEYS} for m in manifest["models"]]
    zoo = {k: v for k, v in manifest["zoo"].items() if k not in ("createdAt", "source")}
    return {"zoo": zoo, "models": models, "defaultModel": manifest.get("defaultModel")}


# Trained weights: the CPU's vector width (AVX2 or AVX-512) changes the order floats are summed in,
# and a few SGD steps carry that to ~4e-5 in a tensor's sum (measured between the two CPUs of this
# project's machines); a change of logic (loss, lr, data order, init) moves them far more.
TRAINED_TENSOR_TOLERANCE = 2e-4


def _close(actual, expected, where: str, tolerance: float = 1e-6) -> None:
    """Equal, with floats equal to ``tolerance`` (relative, and absolute near zero)."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert math.isclose(
            actual, expected, rel_tol=tolerance, abs_tol=tolerance
        ), f"{where}: {actual} != {expected}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{where}: keys differ"
        for key in expected:
            _close(actual[key], expected[key], f"{where}.{key}", tolerance)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: lengths differ"
        for index, (a, e) in enumerate(zip(actual, expected)):
            _close(a, e, f"{where}[{index}]", tolerance)
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_a_tiny_run_reproduces_the_recorded_checkpoint_search_and_manifest(tiny_cfg, tmp_path, capsys):
    tiny_cfg["data"].update(holdout_size=16, holdout_seed=3)  # search on images training never saw
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_cfg, sort_keys=False))
    run_dir = tmp_path / "supernet"
    code, _, stderr = run_cli(capsys, "train", "--config", config, "--run-dir", run_dir, "--no-progress")
    assert code == 0, stderr
    checkpoint = run_dir / "checkpoints" / "last.pt"

    search_out = tmp_path / "search.json"
    code, _, stderr = run_cli(
        capsys, "search", SEARCH_CONFIG, f"checkpoint={run_dir}", f"output={search_out}",
        "targets_mflops=[1,2,100]", "data_overrides=[data.max_val_samples=100]", *SEARCH_OVERRIDES,
    )  # fmt: skip
    assert code == 0, stderr

    zoo = tmp_path / "zoo"
    code, _, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(tmp_path / "pipeline", zoo, "family.mode=search", "family.archs=[max]",
                        "family.search.pick=targets", "family.search.targets_mflops=[1,2,100]",
                        f"family.search.overrides=[{', '.join(SEARCH_OVERRIDES)}]"),
    )  # fmt: skip
    assert code == 0, stderr

    actual = {
        "checkpoint": _checkpoint_digest(checkpoint),
        "search": json.loads(json.dumps(_search_digest(search_out))),
        "manifest": _manifest_digest(zoo / "manifest.json"),
    }
    if os.environ.get("ALPHANET_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    tensors = actual["checkpoint"].pop("tensors")
    _close(
        tensors,
        expected["checkpoint"].pop("tensors"),
        "tiny run.checkpoint.tensors",
        TRAINED_TENSOR_TOLERANCE,
    )
    _close(actual, expected, "tiny run")


RESUMABLE_RUN = GOLDEN_DIR / "resumable_run"


def test_a_checkpoint_written_before_the_refactor_resumes_with_resume_auto(tiny_space_file, tmp_path, capsys):
    """A run in progress (checkpoint of the code before the refactor: 3 of 6 steps) finishes."""
    run_dir = tmp_path / "run"
    state = load_checkpoint(RESUMABLE_RUN / "checkpoints" / "last.pt")
    assert state["step"] == 3
    stored = copy.deepcopy(state["config"])
    state["config"]["space"] = str(tiny_space_file)  # it was written next to a space file elsewhere
    save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
    code, stdout, stderr = run_cli(capsys, "train", "--run-dir", run_dir, "--resume", "auto", "--no-progress")
    assert code == 0, stderr
    assert "differs from the checkpoint" not in stderr
    summary = json.loads(stdout)
    assert summary["status"] == "completed" and summary["step"] == 6 and summary["epoch"] == 2
    resumed = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    # The same settings; keys added to the config since then take their defaults.
    assert {**resumed["config"], "space": stored["space"]} == config_from_dict(stored)
