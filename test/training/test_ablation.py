"""The distillation-loss ablation: arms run one at a time into their own resumable run directories,
the same archs evaluated for every arm (min, middle, max and the published family, frozen on first
use), results merged into ablation.json / ablation.md, and shown in the zoo's model card."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from alphanet.checkpoint import load_checkpoint
from alphanet.export.manifest import build_manifest, build_model_entry
from alphanet.models import complexity
from alphanet.pipeline.ablation import summarize, table_markdown
from alphanet.pipeline.ablation_archs import family_archs, middle_arch
from alphanet.pipeline.config import load_pipeline_config
from alphanet.space import load_space
from pipeline_helpers import FMNIST_PIPELINE, run_cli

SPACE = load_space("fashion_mnist")
TRAIN_OVERRIDES = (
    "source.train.overrides=[data.max_train_samples=48, data.holdout_size=16, data.batch_size=16, "
    "data.max_val_samples=100, "
    "validation.every_epochs=0, checkpoint.keep_every_epochs=0, log.every_steps=1, runtime.threads=1]"
)


def test_middle_arch_is_the_median_choice_of_every_gene():
    mid = middle_arch(SPACE)
    SPACE.validate(mid)
    low, high = (complexity(SPACE, a, 10).mflops for a in (SPACE.min_arch(), SPACE.max_arch()))
    assert low < complexity(SPACE, mid, 10).mflops < high
    for gene, value in zip(SPACE.choices(), SPACE.encode(mid)):
        assert value == gene.options[(len(gene.options) - 1) // 2]


def test_summary_is_mean_and_sample_std_over_seeds():
    data = {
        "armsOrder": ["alpha_divergence", "kl"],
        "archs": [{"name": "min", "roles": ["min"], "mflops": 2.23}],
        "evaluation": {"samples": 10000, "split": "test"},
        "runs": {
            "alpha_divergence": {"0": {"epochs": 5, "results": {"min": {"top1": 0.80}}},
                                 "1": {"epochs": 5, "results": {"min": {"top1": 0.84}}}},
            "kl": {"0": {"epochs": 5, "results": {"min": {"top1": 0.81}}}},
        },
    }  # fmt: skip
    summary = summarize(data)
    assert summary["alpha_divergence"]["min"]["mean"] == pytest.approx(0.82)
    assert summary["alpha_divergence"]["min"]["std"] == pytest.approx(0.0282842712, rel=1e-6)
    assert summary["kl"]["min"] == {"mean": 0.81, "std": None, "min": 0.81, "max": 0.81, "n": 1}
    table = table_markdown(data)
    assert "| min (min) | 2.23 | **82.00 ± 2.83 (n=2)** | 81.00 (n=1) |" in table
    assert "seeds [0, 1]; 5 training epochs; only `loss.distill` differs between arms.\n" in table
    data["trainingOverrides"] = ["data.batch_size=64", "loss.distill_ramp_epochs=1.5"]
    table = table_markdown(data)
    assert "(every arm: `data.batch_size=64`, `loss.distill_ramp_epochs=1.5`).\n" in table


def _published_zoo(zoo: Path) -> dict:
    """A zoo manifest naming one family member (files are not needed by the ablation)."""
    zoo.mkdir()
    arch = SPACE.sample(random.Random(3))
    onnx = zoo / "fmnist-x.onnx"
    onnx.write_bytes(b"placeholder")
    entry = build_model_entry(
        name="fmnist-x", onnx_file=onnx, mflops=complexity(SPACE, arch, 10).mflops, params=1, data=SPACE.data,
        resolution=arch.resolution, labels=[str(i) for i in range(10)], space_name=SPACE.name, arch=arch,
        opset=17, top1=0.5, evaluation={"dataset": "fashion-mnist", "split": "test", "samples": 100},
    )  # fmt: skip
    manifest = build_manifest(zoo_name="z", description="", models=[entry])
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_a_member_of_an_earlier_definition_of_the_space_is_skipped_with_a_message(tmp_path):
    # The bundled space was redesigned under the same name (resolution 20 dropped): a zoo published
    # before that must not fail every arm's evaluation after hours of training.
    manifest = _published_zoo(tmp_path / "zoo")
    stale = dict(manifest["models"][0], name="fmnist-stale")
    stale["arch"] = dict(stale["arch"], resolution=20)
    manifest["models"].append(stale)
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps(manifest))
    cfg = load_pipeline_config(FMNIST_PIPELINE, [f"publish.zoo_dir={tmp_path / 'zoo'}"])
    said: list[str] = []
    records, origin = family_archs(cfg, SPACE, 10, said.append)
    names = [r["name"] for r in records]
    assert "fmnist-x" in names and "fmnist-stale" not in names
    assert origin.startswith("published family")
    assert any("skipping published model fmnist-stale" in line and "resolution" in line for line in said)


def test_arms_run_separately_share_archs_and_merge(tmp_path, capsys):
    zoo, out = tmp_path / "zoo", tmp_path / "ablation"
    _published_zoo(zoo)
    common = [
        "--config", FMNIST_PIPELINE, "--out-dir", out, "--seeds", "0",
        f"run_dir={tmp_path / 'run'}", f"publish.zoo_dir={zoo}", TRAIN_OVERRIDES,
        "calibration.batches=1", "calibration.batch_size=16", "evaluation.batch_size=100",
    ]  # fmt: skip
    code, stdout, stderr = run_cli(capsys, "ablation", "--arms", "kl", "--epochs", "1", *common)
    assert code == 0, stderr
    data = json.loads((out / "ablation.json").read_text())
    assert sorted(a["name"] for a in data["archs"]) == ["fmnist-x", "max", "mid", "min"]
    assert [a["mflops"] for a in data["archs"]] == sorted(a["mflops"] for a in data["archs"])
    assert data["archsFrom"].startswith("published family")
    assert list(data["runs"]) == ["kl"]
    run = data["runs"]["kl"]["0"]
    assert (
        run["epochs"] == 1 and run["step"] == 2 and set(run["results"]) == {"min", "mid", "max", "fmnist-x"}
    )
    assert all(0.0 <= r["top1"] <= 1.0 and r["samples"] == 100 for r in run["results"].values())
    assert load_checkpoint(out / "kl-seed0" / "checkpoints" / "last.pt")["config"]["loss"]["distill"] == "kl"
    assert json.loads(stdout)["summary"]["kl"]["min"]["n"] == 1

    # A zoo published from that arm (a new family: min and s4): its model card carries the
    # ablation table so far.
    s4 = json.dumps(["min", {"name": "s4", "arch": SPACE.sample(random.Random(4)).to_dict()}])
    code, _, stderr = run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", out / "kl-seed0",
        "--run-dir", tmp_path / "run", "--zoo-dir", zoo, f"ablation.dir={out}", "family.mode=named",
        f"family.archs={s4}", "calibration.batches=1", "calibration.batch_size=16",
        "validation.latency_runs=2", "validation.intra_op_threads=1",
    )  # fmt: skip
    assert code == 0, stderr
    card = (zoo / "README.md").read_text()
    assert "## Ablation: distillation loss" in card and "`kl` top-1 %" in card and "`none`" not in card
    # Someone adds a reading of the results below the card's notes marker.
    (zoo / "README.md").write_text(card + "\n### What the ablation says\n\nwritten by hand\n")

    # Another arm later, after the published family changed: every recorded arch plus the new
    # member s4, and the published model card is brought up to date.
    code, stdout, stderr = run_cli(
        capsys, "ablation", "--arms", "none", "--epochs", "1", *common, f"ablation.dir={out}"
    )
    assert code == 0, stderr
    data = json.loads((out / "ablation.json").read_text())
    assert set(data["runs"]) == {"kl", "none"}
    assert set(data["runs"]["none"]["0"]["results"]) == set(run["results"]) | {"fmnist-s4"}
    assert "new archs fmnist-s4" in stderr and "rerun those arms with --no-train" in stderr
    assert [a["roles"] for a in data["archs"] if a["name"] == "min"] == [["min", "family"]]
    state = load_checkpoint(out / "none-seed0" / "checkpoints" / "last.pt")
    assert state["config"]["loss"]["distill"] == "none" and state["config"]["seed"] == 0
    table = (out / "ablation.md").read_text()
    assert "`kl` top-1 %" in table and "`none` top-1 %" in table and "fmnist-x (family)" in table
    assert json.loads(stdout)["modelCard"] == str(zoo / "README.md")
    card = (zoo / "README.md").read_text()
    assert "`kl` top-1 %" in card and "`none` top-1 %" in card and "| `fmnist-min` |" in card
    assert card.endswith("\n### What the ablation says\n\nwritten by hand\n"), "hand-written notes kept"

    # Rerunning an arm does not train it again and fills in the new arch; a different epoch budget
    # is refused. Without ablation.dir these runs are not the ablation the card shows (its default
    # is <run_dir>/ablation): the card is left as is.
    code, _, stderr = run_cli(capsys, "ablation", "--arms", "kl", "--epochs", "1", *common)
    assert code == 0 and "not training again" in stderr
    assert "model card left as is" in stderr and (zoo / "README.md").read_text() == card
    data = json.loads((out / "ablation.json").read_text())
    assert set(data["runs"]["kl"]["0"]["results"]) == set(data["runs"]["none"]["0"]["results"])
    # Once more: the arm's results are of its checkpoint and cover every arch, so they are kept.
    evaluated_at = data["runs"]["kl"]["0"]["evaluatedAt"]
    code, _, stderr = run_cli(capsys, "ablation", "--arms", "kl", "--epochs", "1", *common)
    assert code == 0 and "evaluated already (step 2), kept" in stderr
    assert json.loads((out / "ablation.json").read_text())["runs"]["kl"]["0"]["evaluatedAt"] == evaluated_at
    code, _, stderr = run_cli(capsys, "ablation", "--arms", "kl", "--epochs", "2", *common)
    assert code == 2 and "was trained with train.epochs=1" in stderr
    # Another distillation schedule is another experiment too.
    ramped = [
        arg.replace("]", ",loss.distill_ramp_epochs=0.5]") if arg == TRAIN_OVERRIDES else arg
        for arg in common
    ]
    code, _, stderr = run_cli(capsys, "ablation", "--arms", "kl", "--epochs", "1", *ramped)
    assert code == 2 and "was trained with loss.distill_ramp_epochs=0.0" in stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--arms", "kl,bogus"], "--arms: unknown bogus"),
        (["--arms", "kl,kl"], "lists a value twice"),
        (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["source.train.config=null", "source.checkpoint=/x.pt"], "needs source.train.config"),
        (["--arms", "kl", "--no-train"], "has no checkpoint"),
    ],
)
def test_ablation_user_errors(argv, message, tmp_path, capsys):
    code, _, stderr = run_cli(
        capsys,
        "ablation",
        "--config",
        FMNIST_PIPELINE,
        "--out-dir",
        tmp_path / "a",
        f"run_dir={tmp_path}",
        *argv,
    )
    assert code == 2
    assert stderr.strip().splitlines()[-1].startswith("error: ") and message in stderr, stderr
