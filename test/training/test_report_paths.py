"""Generated reports and the model card name files by repository-relative paths, never by the
absolute directories of the machine that ran the pipeline."""

from __future__ import annotations

import json

import pytest

from alphanet import paths
from alphanet.pipeline import runner  # noqa: F401 - bound to the real repository before the test moves it
from alphanet.checkpoint import load_checkpoint, save_checkpoint
from conftest import GOLDEN_DIR, TRAINING_DIR, fmnist_available
from pipeline_helpers import FMNIST_PIPELINE, fast_overrides, run_cli, synthetic_supernet_checkpoint

SEARCH_CONFIG = TRAINING_DIR / "configs" / "search" / "fashion_mnist.yaml"


def test_repo_path_is_relative_inside_the_repository_and_unchanged_outside(tmp_path):
    assert paths.repo_path(paths.REPO_ROOT / "models" / "manifest.json") == "models/manifest.json"
    assert paths.repo_path(tmp_path / "x.pt") == str(tmp_path / "x.pt")
    assert paths.repo_path("official-alphanet") == "official-alphanet"  # a name, not a file


@pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")
def test_pipeline_report_and_model_card_name_no_absolute_path(tmp_path, capsys, monkeypatch):
    # Pretend tmp_path is the repository (as runs/ and models/ are on a training machine).
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    checkpoint = synthetic_supernet_checkpoint(tmp_path / "runs" / "supernet" / "last.pt")
    zoo, run_dir = tmp_path / "zoo", tmp_path / "runs" / "pipeline"
    code, _, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(run_dir, zoo, "family.mode=named", "family.archs=[min]"),
    )  # fmt: skip
    assert code == 0, stderr
    for path in (run_dir / "pipeline-report.json", run_dir / "pipeline-report.md", zoo / "README.md"):
        text = path.read_text()
        assert str(tmp_path) not in text, f"{path.name} names an absolute path"
    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["source"]["checkpoint"] == "runs/supernet/last.pt"
    assert report["runDir"] == "runs/pipeline" and report["config"]["run_dir"] == "runs/pipeline"
    assert "Checkpoint: `runs/supernet/last.pt`" in (zoo / "README.md").read_text()
    manifest = json.loads((zoo / "manifest.json").read_text())
    assert manifest["zoo"]["source"]["checkpoint"] == "runs/supernet/last.pt"


@pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")
def test_search_results_name_the_checkpoint_by_its_repository_path(
    tiny_space_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    state = load_checkpoint(GOLDEN_DIR / "resumable_run" / "checkpoints" / "last.pt")
    state["config"]["space"] = str(tiny_space_file)
    save_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "last.pt", state)
    output = tmp_path / "runs" / "tiny" / "search.json"
    code, _, stderr = run_cli(
        capsys, "search", SEARCH_CONFIG, f"checkpoint={tmp_path / 'runs' / 'tiny'}", f"output={output}",
        "evolution.population_size=2", "evolution.iterations=1", "evolution.mutate_size=1",
        "evolution.crossover_size=1", "constraints.min_mflops=0", "fitness.calib_batches=1",
        "fitness.calib_batch_size=16", "fitness.eval_batch_size=16", "targets_mflops=[1000]",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(output.read_text())["checkpoint"] == "runs/tiny"
    assert str(tmp_path) not in output.read_text()
