"""The training-then-publish pipeline end to end on Fashion-MNIST (tiny settings): publish from a
checkpoint, republish, refusal by validation, training that resumes instead of restarting,
the search family, and the report / model card artefacts. Validation runs the real
``npm run zoo:validate`` (onnxruntime-node); the reload tests live in test_pipeline_reload.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alphanet.checkpoint import load_checkpoint
from alphanet.export.manifest import check_model_files, validate_manifest
from alphanet.pipeline.dataset_file import read_dataset_file
from alphanet.pipeline.publish import OWNED_FILE_RE
from pipeline_helpers import (
    FMNIST_PIPELINE,
    fast_overrides,
    run_cli,
    synthetic_supernet_checkpoint,
    write_baseline_run,
)

STAGES = ["source", "family", "calibrate", "evaluate", "export", "validate", "manifest", "publish", "reload"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return synthetic_supernet_checkpoint(tmp_path_factory.mktemp("supernet") / "last.pt")


def _zoo(tmp_path: Path) -> Path:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.schema.json").write_text("{}\n")  # a bystander the publisher must not touch
    return zoo


def _manifest(zoo: Path) -> dict:
    manifest = json.loads((zoo / "manifest.json").read_text())
    validate_manifest(manifest)
    assert check_model_files(manifest, zoo) == {}
    return manifest


def test_publish_from_a_checkpoint_then_republish(checkpoint, tmp_path, capsys):
    zoo, run_dir = _zoo(tmp_path), tmp_path / "run"
    recipe = load_checkpoint(checkpoint)["config"]  # the baselines' recipe is the supernet's
    write_baseline_run(run_dir / "baselines", "cnn-1m", "plain_cnn", 1.0, 0.5, recipe=recipe)
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(run_dir, zoo, "family.mode=named", "family.archs=[min,max]", "zoo.default_model=max"),
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "published" and summary["published"] == ["fmnist-min", "fmnist-max"]
    for index, stage in enumerate(STAGES, 1):
        assert f"==> [{index}/9] {stage}:" in stderr and f"<== [{index}/9] {stage}:" in stderr

    manifest = _manifest(zoo)
    assert manifest["defaultModel"] == "fmnist-max"
    assert manifest["zoo"]["source"]["checkpoint"] == str(checkpoint)
    for model in manifest["models"]:
        assert OWNED_FILE_RE.match(model["file"]) and OWNED_FILE_RE.match(model["reference"]["file"])
        # The whole (200-image) split was re-measured in onnxruntime-node: that figure is published.
        assert model["evaluation"] == {
            "dataset": "fashion-mnist",
            "split": "test",
            "samples": 200,
            "runtime": "onnxruntime-node",
        }
        assert (
            model["latencyMs"]["batchSize"] == 1
            and 0 < model["latencyMs"]["p50"] <= model["latencyMs"]["p95"]
        )
        assert "onnxruntime-node cpu" in model["latencyMs"]["host"]
    assert (zoo / "manifest.schema.json").read_text() == "{}\n"

    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["status"] == "published"
    assert [s["name"] for s in report["stages"]] == STAGES
    assert (
        all(s["status"] == "done" for s in report["stages"][:-1])
        and report["stages"][-1]["status"] == "skipped"
    )
    assert all(s["seconds"] >= 0 for s in report["stages"])
    for record, model in zip(report["models"], manifest["models"]):
        assert record["status"] == "published" and record["reasons"] == []
        assert record["ort"]["top1"] == model["top1"] and record["ort"]["samples"] == 200
        assert abs(record["ort"]["top1"] - record["pytorch"]["top1"]) <= 0.001
        assert 0 <= record["parityMaxAbsDiff"] <= 1e-4
        assert record["latencyMs"]["p50"] == model["latencyMs"]["p50"]
    markdown = (run_dir / "pipeline-report.md").read_text()
    assert "| `fmnist-max` | published |" in markdown and "| 6 | validate | done |" in markdown

    card = (zoo / "README.md").read_text()
    assert "| `fmnist-min` | 6.87 |" in card and "![top-1 against MFLOPs and latency](pareto.png)" in card
    assert "npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml" in card
    assert "_No ablation results yet" in card
    assert "| `cnn-1m` | plain CNN | 1.00 | 0.123 M | 20 | 49.90 | 50.00 |" in card
    # The config's targets (not enforced): random weights miss the accuracy ones, and say so.
    assert "## Targets" in card and "| ≥ 6 members | 2 | **missed by 4 members** |" in card
    assert report["targets"] and "of 6 targets met." in card
    assert json.loads((zoo / "baselines.json").read_text())["baselines"][0]["name"] == "cnn-1m"
    assert (zoo / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A baseline that finishes after the publish: --refresh-card brings the card, chart and
    # baselines.json up to date (hand-written notes kept) without touching the manifest.
    write_baseline_run(run_dir / "baselines", "cnn-40m", "plain_cnn", 40.0, 0.97, recipe=recipe)
    other = {**recipe, "optim": {**recipe["optim"], "weight_decay": 10 * recipe["optim"]["weight_decay"]}}
    write_baseline_run(run_dir / "baselines", "cnn-other-recipe", "plain_cnn", 2.0, 0.99, recipe=other)
    (zoo / "README.md").write_text(card + "a note kept by hand\n")
    manifest_bytes, chart = (zoo / "manifest.json").read_bytes(), (zoo / "pareto.png").read_bytes()
    refresh = fast_overrides(run_dir, zoo, "family.mode=named", "family.archs=[min,max]")
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--refresh-card", *refresh
    )
    assert code == 0, stderr
    assert json.loads(stdout)["status"] == "refreshed"
    refreshed = (zoo / "README.md").read_text()
    assert "| `cnn-40m` | plain CNN | 40.00 |" in refreshed and refreshed.endswith("a note kept by hand\n")
    created = f"(zoo created {manifest['zoo']['createdAt']})"  # the same zoo: the same header
    assert created in card.splitlines()[4] and refreshed.splitlines()[4] == card.splitlines()[4]
    assert "points below the plain CNN `cnn-40m` (97.00% at 40.00 MFLOPs)" in refreshed  # the bar's verdict
    assert "`cnn-other-recipe`" not in refreshed.split("The bar")[1]  # another recipe is no bar
    assert (
        f"- `cnn-other-recipe`: optim.weight_decay {other['optim']['weight_decay']!r}, the family's"
        in refreshed
    )
    assert [b["name"] for b in json.loads((zoo / "baselines.json").read_text())["baselines"]] == [
        "cnn-1m",
        "cnn-40m",
        "cnn-other-recipe",
    ]
    assert (zoo / "manifest.json").read_bytes() == manifest_bytes and (
        zoo / "pareto.png"
    ).read_bytes() != chart
    assert [b["name"] for b in json.loads((run_dir / "pipeline-report.json").read_text())["baselines"]] == [
        "cnn-1m", "cnn-40m", "cnn-other-recipe"
    ]  # fmt: skip
    code, _, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--refresh-card",
        *fast_overrides(tmp_path / "other-run", zoo, "family.mode=named"),
    )  # fmt: skip
    assert code == 1 and "nothing refreshed" in stderr

    header, images, labels = read_dataset_file(run_dir / "validation" / "eval.azdata")
    assert header["count"] == 200 and images.shape == (200, 1, 28, 28) and header["input"]["size"] == 28
    assert labels.min() >= 0 and labels.max() < 10

    # Republish a smaller family, validated on an evenly spaced subset: the PyTorch figure on the
    # whole split is published then; the unchanged model's files are reused, the dropped model's
    # files stay as the previous generation.
    first_files = {m["name"]: m["file"] for m in manifest["models"]}
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(run_dir, zoo, "family.mode=named", "family.archs=[min]", "validation.max_samples=50"),
    )  # fmt: skip
    assert code == 0, stderr
    manifest = _manifest(zoo)
    (model,) = manifest["models"]
    assert model["evaluation"]["runtime"] == "pytorch" and model["evaluation"]["samples"] == 200
    assert "defaultModel" not in manifest
    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["models"][0]["ort"]["samples"] == 50 and not report["models"][0]["ort"]["fullSplit"]
    assert first_files["fmnist-min"] in report["publish"]["reused"]  # deterministic export
    assert first_files["fmnist-max"] in report["publish"]["keptPrevious"]
    assert (zoo / first_files["fmnist-max"]).is_file()


def test_refused_models_are_not_published_and_the_old_zoo_stays(checkpoint, tmp_path, capsys):
    zoo, run_dir = _zoo(tmp_path), tmp_path / "run"
    (zoo / "manifest.json").write_text('{"previous": "zoo"}\n')
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(
            run_dir, zoo, "family.mode=named", "family.archs=[min]", "validation.reference_tolerance=0"
        ),
    )  # fmt: skip
    assert code == 1
    summary = json.loads(stdout)
    assert summary["status"] == "refused" and summary["published"] == []
    assert "ONNX output differs from PyTorch" in summary["refused"]["fmnist-min"][0]
    assert "REFUSED fmnist-min" in stderr and "nothing was published" in stderr
    assert (zoo / "manifest.json").read_text() == '{"previous": "zoo"}\n'
    assert sorted(p.name for p in zoo.iterdir()) == ["manifest.json", "manifest.schema.json"]
    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["status"] == "refused" and report["models"][0]["status"] == "refused"
    assert [s["name"] for s in report["stages"]] == STAGES[:6]
    assert "## Refused (not published)" in (run_dir / "pipeline-report.md").read_text()


def test_a_family_that_misses_an_enforced_target_is_not_published(checkpoint, tmp_path, capsys):
    zoo, run_dir = _zoo(tmp_path), tmp_path / "run"
    (zoo / "manifest.json").write_text('{"previous": "zoo"}\n')
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(run_dir, zoo, "family.mode=named", "family.archs=[min]", "targets.enforce=true"),
    )  # fmt: skip
    assert code == 1
    summary = json.loads(stdout)
    # Validation accepted the member (random weights export faithfully); the targets refused it.
    assert summary["status"] == "refused" and summary["published"] == [] and summary["refused"] == {}
    assert (
        "≥ 6 members" in summary["failedTargets"] and "largest member ≥ 94.00 %" in summary["failedTargets"]
    )
    assert "nothing was published: targets.enforce is set and 5 of 6 targets failed" in stderr
    assert "target missed: ≥ 6 members (measured: 1)" in stderr
    assert (zoo / "manifest.json").read_text() == '{"previous": "zoo"}\n'
    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["status"] == "refused" and [s["name"] for s in report["stages"]] == STAGES[:6]
    statuses = {c["target"]: c["status"] for c in report["targets"]}
    assert statuses["no member more than 0.2 points below a cheaper one"] == "met"
    assert statuses["every member ≥ every plain-CNN baseline of equal or lower MFLOPs"] == "unchecked"
    markdown = (run_dir / "pipeline-report.md").read_text()
    assert "| ≥ 6 members | 1 | **missed by 5 members** |" in markdown and "1 of 6 targets met." in markdown


TRAIN_OVERRIDES = (
    "source.train.overrides=[data.max_train_samples=80, data.holdout_size=16, data.batch_size=32, "
    "data.max_val_samples=100, "
    "train.epochs=2, validation.every_epochs=0, checkpoint.every_steps=1, checkpoint.keep_every_epochs=0, "
    "log.every_steps=1, runtime.threads=1]"
)


def test_training_resumes_instead_of_restarting_and_a_search_picks_the_family(tmp_path, capsys):
    zoo, run_dir = _zoo(tmp_path), tmp_path / "run"
    base = [
        "pipeline", "--config", FMNIST_PIPELINE,
        *fast_overrides(run_dir, zoo, TRAIN_OVERRIDES, "family.mode=named", "family.archs=[min]"),
    ]  # fmt: skip
    # 1. A time limit stops training at once: exit 3, nothing published, a report saying so.
    code, _, stderr = run_cli(capsys, *base, "source.train.time_limit_min=0.000001")
    assert code == 3 and "rerun the same command to resume" in stderr
    assert json.loads((run_dir / "pipeline-report.json").read_text())["status"] == "incomplete"
    assert not (zoo / "manifest.json").exists()
    last = run_dir / "supernet" / "checkpoints" / "last.pt"
    stopped_at = load_checkpoint(last)["step"]
    assert 0 <= stopped_at < 3
    # 2. Further along (as an interrupted run would leave it): one more step.
    code, _, stderr = run_cli(
        capsys, "train", "--resume", run_dir / "supernet", "--max-steps", "1", "--no-progress"
    )
    assert code == 0, stderr
    assert load_checkpoint(last)["step"] == stopped_at + 1
    # 3. The same pipeline command resumes there and finishes (2 epochs x 2 steps).
    code, stdout, stderr = run_cli(capsys, *base)
    assert code == 0, stderr
    assert f"resuming {last} at epoch " in stderr and f"/2, step {stopped_at + 1}\n" in stderr
    state = load_checkpoint(last)
    assert state["step"] == 4 and state["epoch"] == 2
    starts = [
        json.loads(line)
        for line in (run_dir / "supernet" / "metrics.jsonl").read_text().splitlines()
        if '"type": "start"' in line
    ]
    assert [s["step"] for s in starts] == [0, stopped_at, stopped_at + 1]  # never restarted from scratch
    report = json.loads((run_dir / "pipeline-report.json").read_text())
    assert report["source"]["kind"] == "train" and report["source"]["training"]["steps"] == 4
    assert "Training time:" in (zoo / "README.md").read_text()
    # 4. Finished training is not repeated; the family now comes from a (tiny) evolutionary search.
    search = (
        "family.search.overrides=[evolution.population_size=3, evolution.iterations=1, "
        "fitness.holdout_size=16, fitness.calib_batches=1, fitness.calib_batch_size=16, "
        "fitness.eval_batch_size=16]"
    )
    code, stdout, stderr = run_cli(
        capsys,
        *base,
        "family.mode=search",
        "family.archs=[]",
        search,
        "family.search.targets_mflops=[8,42.2]",
    )
    assert code == 0, stderr
    assert "not training again" in stderr
    assert load_checkpoint(last)["step"] == 4
    results = json.loads((run_dir / "search.json").read_text())
    picks = {json.dumps(t["pick"]["arch"], sort_keys=True) for t in results["targets"] if t["pick"]}
    manifest = _manifest(zoo)
    assert len(manifest["models"]) == len(picks) >= 1
    assert all(m["name"].startswith("fmnist-") and m["name"].endswith("m") for m in manifest["models"])
    assert all(m["mflops"] <= 42.2 for m in manifest["models"])
    # 5. The search is reused when nothing changed.
    code, _, stderr = run_cli(
        capsys,
        *base,
        "family.mode=search",
        "family.archs=[]",
        search,
        "family.search.targets_mflops=[8,42.2]",
    )
    assert code == 0, stderr
    assert "reusing the search results" in stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["zoo.nope=1"], "unknown key 'zoo.nope'"),
        (["zoo.name=Bad Name"], "zoo.name must match"),
        (["source.checkpoint=/x.pt"], "exactly one of source.train.config, source.checkpoint"),
        (["family.mode=named", "family.archs=[]"], "needs a non-empty family.archs"),
        (["family.mode=named", "family.archs=[a9]", "source.train.config=null", "source.checkpoint={ckpt}"],
         "unknown arch 'a9'"),
        (["validation.top1_tolerance=-1"], "validation.top1_tolerance must be >= 0"),
        (["publish.reload_url=ftp://x"], "must be an http(s) URL"),
        (["calibration.batches=zero"], "calibration.batches must be an integer"),
    ],
)  # fmt: skip
def test_configuration_errors_are_one_line_with_exit_code_2(extra, message, checkpoint, tmp_path, capsys):
    extra = [e.replace("{ckpt}", str(checkpoint)) for e in extra]
    code, _, stderr = run_cli(
        capsys,
        "pipeline",
        "--config",
        FMNIST_PIPELINE,
        "--run-dir",
        tmp_path / "run",
        "--zoo-dir",
        tmp_path,
        *extra,
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], stderr
