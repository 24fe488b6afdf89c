"""Acceptance targets of a published family (pipeline.targets): each configured target is checked on
the evaluation split with the published figure, and says met, missed by how much, or unchecked."""

from __future__ import annotations

from pathlib import Path

import pytest

from alphanet.errors import UserError
from alphanet.pipeline.baselines import read_baselines
from alphanet.pipeline.config import load_pipeline_config
from alphanet.pipeline.targets import check_targets, missed, report_targets, targets_section
from pipeline_helpers import FMNIST_PIPELINE, write_baseline_run

EVALUATION = {"dataset": "fashion-mnist", "split": "test"}
ALL = {
    "largest_top1": 0.94,
    "cheapest_top1": 0.915,
    "min_members": 3,
    "min_mflops_span": 4,
    "plain_cnn_bar": True,
    "monotone": True,
    "enforce": False,
}


def _model(name: str, mflops: float, top1: float, ort: float | None = None) -> dict:
    record = {"name": name, "mflops": mflops, "status": "accepted", "pytorch": {"top1": top1}}
    if ort is not None:  # re-measured on the whole split in onnxruntime-node: that figure counts
        record["ort"] = {"top1": ort, "fullSplit": True}
    return record


def _by_target(checks: list[dict]) -> dict[str, dict]:
    return {c["target"]: c for c in checks}


def test_a_family_that_meets_every_target(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-6m", "plain_cnn", 6.0, 0.930)
    models = [_model("a", 7.0, 0.50, ort=0.931), _model("b", 14.0, 0.935), _model("c", 30.0, 0.941)]
    checks = check_targets(ALL, models, read_baselines(tmp_path), EVALUATION)
    assert [c["status"] for c in checks] == ["met"] * 6 and missed(checks) == []
    found = _by_target(checks)
    assert found["cheapest member ≥ 91.50 %"]["measured"] == "`a` (7.00 MFLOPs) 93.10 %"
    assert found["MFLOPs spanning ≥ 4×"]["measured"] == "4.3× (7.00–30.00 MFLOPs)"
    assert targets_section(checks, "test").endswith("6 of 6 targets met.")


def test_each_miss_says_by_how_much(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-6m", "plain_cnn", 6.0, 0.935)
    write_baseline_run(tmp_path, "cnn-other-split", "plain_cnn", 1.0, 0.99, split="train")  # not the bar
    models = [_model("a", 7.0, 0.910), _model("b", 12.0, 0.937), _model("c", 14.0, 0.932)]
    found = _by_target(check_targets(ALL, models, read_baselines(tmp_path), EVALUATION))
    assert found["largest member ≥ 94.00 %"]["shortfall"] == "0.80 points"
    assert found["cheapest member ≥ 91.50 %"]["shortfall"] == "0.50 points"
    assert found["≥ 3 members"]["status"] == "met"
    assert found["MFLOPs spanning ≥ 4×"]["shortfall"] == "2.0× (2.0× of 4×)"
    bar = found["every member ≥ every plain-CNN baseline of equal or lower MFLOPs"]
    assert bar["measured"] == "2 of 3 members below one; most: `a`, 2.50 points below `cnn-6m`"
    assert bar["shortfall"] == "2.50 points"
    monotone = found["no member more than 0.2 points below a cheaper one"]
    assert (
        monotone["measured"] == "1 of 3 members are; most: `c`, 0.50 points below `b`"
        and monotone["shortfall"] == "0.30 points"
    )
    text = targets_section(list(found.values()), "test")
    assert "| largest member ≥ 94.00 % | `c` (14.00 MFLOPs) 93.20 % | **missed by 0.80 points** |" in text
    assert text.endswith("1 of 6 targets met.")


def test_unset_targets_are_not_checked_and_a_bar_without_plain_cnns_is_unchecked() -> None:
    only_bar = {key: None for key in ALL} | {"plain_cnn_bar": True, "monotone": False, "enforce": False}
    (check,) = check_targets(only_bar, [_model("a", 7.0, 0.93)], [], EVALUATION)
    assert check["status"] == "unchecked" and missed([check]) == [check]
    assert "**not checked**" in targets_section([check], "test")
    none_set = {key: None for key in ALL} | {"plain_cnn_bar": False, "monotone": False, "enforce": True}
    report = {"config": {"targets": none_set}, "models": [_model("a", 7.0, 0.93)], "evaluation": EVALUATION}
    assert report_targets(report) is None and report_targets({"config": {}}) is None
    assert targets_section(None, "test").startswith("_No acceptance targets are set")


def test_the_report_counts_only_members_that_are_published() -> None:
    refused = _model("big", 50.0, 0.99) | {"status": "refused"}
    largest_only = {key: None for key in ALL} | {
        "plain_cnn_bar": False,
        "monotone": False,
        "largest_top1": 0.94,
    }
    report = {
        "config": {"targets": largest_only},
        "models": [_model("a", 7.0, 0.93), refused],
        "evaluation": EVALUATION,
    }
    (check,) = report_targets(report)
    assert check["measured"].startswith("`a`") and check["status"] == "missed"


@pytest.mark.parametrize(
    "override, message",
    [
        ("targets.largest_top1=94", "targets.largest_top1 is a fraction in [0, 1], got 94.0"),
        ("targets.cheapest_top1=-0.1", "targets.cheapest_top1 is a fraction in [0, 1]"),
        ("targets.min_members=0", "targets.min_members must be >= 1"),
        ("targets.min_mflops_span=0.5", "targets.min_mflops_span must be >= 1"),
        ("targets.enforce=maybe", "targets.enforce"),
    ],
)
def test_bad_targets_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_pipeline_config(FMNIST_PIPELINE, [override])
