"""The family picked in search mode is monotone on the held-out split (a costlier member is kept
only if it is at most 0.2 points below every cheaper one), picking never reads the test split,
and the model card reports test-split monotonicity without acting on it."""

from __future__ import annotations

import copy

import pytest

from alphanet.checkpoint import load_checkpoint, save_checkpoint
from alphanet.data import loader
from alphanet.export.sources import load_supernet_source
from alphanet.models import complexity
from alphanet.pipeline.config import load_pipeline_config
from alphanet.pipeline.family import Member, monotone_members, select_family
from alphanet.pipeline.model_card import monotonicity_text
from alphanet.pipeline.supernet_source import SourceResult
from conftest import GOLDEN_DIR, fmnist_available
from pipeline_helpers import FMNIST_PIPELINE

SEARCH_OVERRIDES = (
    "family.search.overrides=[evolution.population_size=3, evolution.mutate_size=1, "
    "evolution.crossover_size=1, evolution.iterations=1, constraints.min_mflops=0, "
    "constraints.max_mflops=1000, fitness.calib_batches=1, fitness.calib_batch_size=16, "
    "fitness.eval_batch_size=16]"
)


def _member(name: str, mflops: float, holdout_top1: float) -> Member:
    member = Member(name, name, None, mflops, 1, "search")
    member.search = {"holdoutTop1": holdout_top1}
    return member


def test_a_member_below_a_cheaper_one_by_more_than_the_tolerance_is_dropped():
    members = [
        _member("c", 3.0, 0.847),  # 0.3 points below the cheaper "a": dropped
        _member("a", 1.0, 0.850),
        _member("b", 2.0, 0.849),  # 0.1 point below "a": within the tolerance, kept
        _member("d", 4.0, 0.848),  # 0.2 points below "a": at the limit, kept
        _member("e", 5.0, 0.860),
    ]
    kept, dropped = monotone_members(members)
    assert [m.name for m in kept] == ["a", "b", "d", "e"]
    assert dropped == [{"name": "c", "holdoutTop1": 0.847, "cheaper": "a", "cheaperHoldoutTop1": 0.850}]


@pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")
def test_search_mode_picks_on_held_out_images_only(tiny_space_file, tmp_path, monkeypatch):
    state = load_checkpoint(GOLDEN_DIR / "resumable_run" / "checkpoints" / "last.pt")
    state["config"] = copy.deepcopy(state["config"])
    state["config"]["space"] = str(tiny_space_file)
    checkpoint = save_checkpoint(tmp_path / "last.pt", state)
    cfg = load_pipeline_config(
        FMNIST_PIPELINE,
        [f"run_dir={tmp_path / 'run'}", f"source.checkpoint={checkpoint}", "source.train.config=null",
         "family.mode=search", "family.archs=[max]", "family.search.targets_mflops=[1000]", SEARCH_OVERRIDES],
    )  # fmt: skip
    source = load_supernet_source(checkpoint, cfg["data_overrides"])
    real, reads = loader.FashionMNIST, []

    def training_split_only(root, split):
        reads.append(split)
        assert split == "train", "the family stage read the test split"
        return real(root, split)

    monkeypatch.setattr(loader, "FashionMNIST", training_split_only)
    said: list[str] = []
    members, details = select_family(cfg, SourceResult(source, "checkpoint", checkpoint), said.append)
    scored = {m.name: m.search["holdoutTop1"] for m in members}
    assert members and all(0.0 <= top1 <= 1.0 for top1 in scored.values())
    max_mflops = complexity(source.space, source.space.max_arch(), 10).mflops
    dropped = {d["name"] for d in details["droppedNotMonotone"]}
    max_name = f"fmnist-{round(max_mflops, 2):g}m"  # family.archs=[max]: scored on held-out images too
    assert max_name in scored or max_name in dropped
    assert reads and set(reads) == {"train"}
    kept, again = monotone_members(members)
    assert kept == members and again == []  # what was published is monotone on the held-out split


def _record(name: str, mflops: float, top1: float, status: str = "published") -> dict:
    return {"name": name, "mflops": mflops, "status": status, "pytorch": {"top1": top1}, "ort": None}


def test_the_model_card_reports_test_split_monotonicity_without_acting_on_it():
    report = {"evaluation": {"split": "test"}, "models": [_record("a", 1.0, 0.85), _record("b", 2.0, 0.849)]}
    assert "no member is more than 0.2 points below a cheaper one" in monotonicity_text(report)
    report["models"].append(_record("c", 3.0, 0.845))
    report["models"].append(_record("x", 4.0, 0.10, status="refused"))  # not published: not judged
    text = monotonicity_text(report)
    assert "`c` (84.50%) is 0.50 points below the cheaper `a` (85.00%)" in text and "`x`" not in text
    assert "reported only" in text
