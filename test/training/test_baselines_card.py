"""Baselines in the model card (pipeline.baselines): read from their runs, compared with the family
on the same split, drawn on the chart, carried with the published zoo."""

from __future__ import annotations

import json
from pathlib import Path

from alphanet.pipeline.baselines import (
    BASELINES_FILE,
    bar_violations,
    baselines_section,
    comparable,
    published_baselines,
    read_baselines,
    recipe_differences,
)
from alphanet.pipeline.model_card import pareto_chart
from pipeline_helpers import write_baseline_run

EVALUATION = {"dataset": "fashion-mnist", "split": "test"}


def _model(name: str, mflops: float, top1: float) -> dict:
    return {"name": name, "mflops": mflops, "status": "published", "pytorch": {"top1": top1}}


def _top1(model: dict) -> float:
    return model["pytorch"]["top1"]


def test_reads_finished_runs_and_lists_unfinished_ones(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-b", "plain_cnn", 6.5, 0.93)
    write_baseline_run(tmp_path, "alphanet-min", "arch", 6.9, 0.92)
    (tmp_path / "cnn-a" / "checkpoints").mkdir(parents=True)
    (tmp_path / "cnn-a" / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "not-a-run").mkdir()  # no config: not a training run, ignored
    records = read_baselines(tmp_path)
    assert [(r["name"], r["status"]) for r in records] == [
        ("alphanet-min", "complete"),
        ("cnn-a", "incomplete"),
        ("cnn-b", "complete"),
    ]
    assert (
        records[2]["kind"] == "plain_cnn"
        and records[2]["top1"] == 0.93
        and records[2]["heldOutTop1"] == 0.929
    )
    assert read_baselines(None) == [] and read_baselines(tmp_path / "absent") == []


def test_the_bar_counts_only_plain_cnns_of_equal_or_lower_cost(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-small", "plain_cnn", 6.5, 0.93)
    write_baseline_run(tmp_path, "cnn-large", "plain_cnn", 41.0, 0.95)
    write_baseline_run(tmp_path, "alphanet-max", "arch", 42.0, 0.99)  # an arch baseline is not the bar
    baselines = read_baselines(tmp_path)
    models = [_model("m-7", 6.9, 0.925), _model("m-20", 20.0, 0.94), _model("m-42", 42.2, 0.951)]
    violations = bar_violations(models, baselines, _top1)
    assert len(violations) == 1 and violations[0].startswith(
        "`m-7` (92.50% at 6.90 MFLOPs) is 0.50 points below"
    )
    # m-20 beats cnn-small (cnn-large costs more, so it does not count); m-42 beats both
    assert bar_violations([_model("m-20", 20.0, 0.94)], baselines, _top1) == []
    assert bar_violations([_model("m-42", 42.2, 0.949)], baselines, _top1) != []


def test_section_gives_the_table_and_the_verdict(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-small", "plain_cnn", 6.5, 0.93)
    write_baseline_run(tmp_path, "cnn-other-split", "plain_cnn", 6.0, 0.99, split="train")
    baselines = read_baselines(tmp_path)
    assert [b["name"] for b in comparable(baselines, EVALUATION)] == ["cnn-small"]
    text = baselines_section(baselines, [_model("m-7", 6.9, 0.94)], EVALUATION, _top1)
    assert "| `cnn-small` | plain CNN | 6.50 | 0.123 M | 20 | 92.90 | 93.00 |" in text
    assert "left out of the comparison: cnn-other-split" in text
    assert text.endswith(
        "every member is at least as accurate as every plain-CNN baseline of equal or lower MFLOPs."
    )
    missed = baselines_section(baselines, [_model("m-7", 6.9, 0.92)], EVALUATION, _top1)
    assert "missed by 1 of 1 members:\n\n- `m-7` (92.00% at 6.90 MFLOPs) is 1.00 points below" in missed
    assert "below the plain CNN `cnn-small` (93.00% at 6.50 MFLOPs)" in missed
    arch_only = [b for b in read_baselines(tmp_path) if b["name"] == "cnn-small"]
    arch_only[0]["kind"] = "arch"
    assert "No finished plain-CNN baseline" in baselines_section(arch_only, [], EVALUATION, _top1)
    assert baselines_section([], [], EVALUATION, _top1).startswith("_No baselines were given")


def test_chart_draws_baselines_and_the_zoo_carries_them(tmp_path: Path) -> None:
    write_baseline_run(tmp_path / "runs", "cnn-small", "plain_cnn", 6.5, 0.93)
    baselines = read_baselines(tmp_path / "runs")
    models = [{"name": "m-7", "mflops": 6.9, "top1": 0.94}]
    plain, with_baselines = pareto_chart(models, "t"), pareto_chart(models, "t", None, baselines)
    assert with_baselines[:8] == b"\x89PNG\r\n\x1a\n" and with_baselines != plain
    assert published_baselines(tmp_path) == []  # nothing published yet
    (tmp_path / BASELINES_FILE).write_text(json.dumps({"baselines": baselines}))
    assert published_baselines(tmp_path) == baselines


def _recipe(**changes) -> dict:
    recipe = {
        "space": "fashion_mnist_28px",
        "data": {"dataset": "fashion_mnist", "batch_size": 64},
        "train": {"epochs": 20, "dropout": 0.1, "drop_connect": 0.0, "grad_clip_value": 1.0},
        "loss": {"distill": "none", "label_smoothing": 0.1},
        "optim": {"lr": 0.05, "weight_decay": 5e-5, "nesterov": True},
    }
    for key, value in changes.items():
        section, leaf = key.split("__")
        recipe[section][leaf] = value
    return recipe


def test_a_baseline_of_another_recipe_is_not_the_bar(tmp_path):
    family = _recipe()
    # What differs by design is no difference: the distillation of the supernet's students, the
    # batch split across processes, and the space (the network) as long as its augmentation matches.
    same = {
        **_recipe(loss__distill="alpha_divergence", data__batch_size=128),
        "space": "configs/pilots/28px-members.yaml",
    }
    assert recipe_differences(same, family) == []
    assert recipe_differences(_recipe(optim__weight_decay=5e-4, train__epochs=5), family) == [
        "train.epochs 5, the family's 20",
        "optim.weight_decay 0.0005, the family's 5e-05",
    ]
    erasing = {**_recipe(), "space": "configs/pilots/28px-random-erasing.yaml"}
    assert recipe_differences(erasing, family) == [
        "data.train_augment.random_erasing {'probability': 0.5, 'area': [0.02, 0.4], 'aspect': [0.3, 3.3], "
        "'value': 'random'}, the family's None"
    ]
    # A run's recorded augmentation wins over its space file, which may be gone (not a difference).
    gone = {**_recipe(), "space": "configs/pilots/no-longer-here.yaml"}
    assert recipe_differences(gone, family) == []
    assert recipe_differences(gone, family, run_augment={"kind": "none"})[0].startswith("data.train_augment.")

    write_baseline_run(tmp_path, "cnn-same", "plain_cnn", 6.5, 0.93, recipe=same)
    write_baseline_run(
        tmp_path, "cnn-other", "plain_cnn", 6.0, 0.99, recipe=_recipe(optim__weight_decay=5e-4)
    )
    records = read_baselines(tmp_path, family)
    assert [b["recipeDifferences"] for b in records] == [
        ["optim.weight_decay 0.0005, the family's 5e-05"],
        [],
    ]
    assert [b["name"] for b in comparable(records, EVALUATION)] == ["cnn-same"]
    section = baselines_section(records, [_model("m", 7.0, 0.94)], EVALUATION, _top1)
    assert "- `cnn-other`: optim.weight_decay 0.0005, the family's 5e-05" in section
    assert "every member is at least as accurate" in section  # cnn-other (99 %) is not the bar
    assert all("recipeDifferences" not in b for b in read_baselines(tmp_path))  # no recipe: not checked
