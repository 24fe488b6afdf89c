"""Family picking holds members to the plain-CNN baselines (family.drop_below_plain_cnns): a pick
that a plain CNN of equal or lower MFLOPs beats on the same held-out images is dropped, baselines
scored on other images are not used, and the card says what was dropped and why."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from alphanet.checkpoint import load_checkpoint, save_checkpoint
from alphanet.errors import UserError
from alphanet.export.sources import load_supernet_source
from alphanet.pipeline.baselines import held_out_plain_cnns, read_baselines
from alphanet.pipeline.config import load_pipeline_config
from alphanet.pipeline.family import Member, members_above_plain_cnns, select_family
from alphanet.pipeline.model_card import _search_family_sentence
from alphanet.pipeline.supernet_source import SourceResult
from conftest import GOLDEN_DIR, fmnist_available
from pipeline_helpers import FMNIST_PIPELINE, write_baseline_run
from test_family_monotonicity import SEARCH_OVERRIDES

FITNESS = {
    "dataset": "fashion-mnist",
    "heldOutFromTraining": True,
    "holdoutSize": 5000,
    "holdoutSeed": 0,
    "maxEvalBatches": None,
}


def _member(name: str, mflops: float, holdout_top1: float) -> Member:
    member = Member(name, name, None, mflops, 1, "search")
    member.search = {"holdoutTop1": holdout_top1}
    return member


def test_baselines_carry_the_held_out_split_of_their_config(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-a", "plain_cnn", 6.5, 0.93, held_out=(5000, 3))
    write_baseline_run(tmp_path, "cnn-b", "plain_cnn", 7.0, 0.93)  # trained on every image
    unreadable = write_baseline_run(tmp_path, "cnn-c", "plain_cnn", 7.0, 0.93)
    (unreadable / "config.yaml").write_text("data: [not, a, mapping\n")
    not_a_mapping = write_baseline_run(tmp_path, "cnn-d", "plain_cnn", 7.0, 0.93)
    (not_a_mapping / "config.yaml").write_text("data: [1, 2]\n")
    splits = {r["name"]: r["heldOutSplit"] for r in read_baselines(tmp_path)}
    assert splits == {"cnn-a": {"size": 5000, "seed": 3}, "cnn-b": None, "cnn-c": None, "cnn-d": None}


def test_only_plain_cnns_scored_on_the_fitness_images_are_used(tmp_path: Path) -> None:
    write_baseline_run(tmp_path, "cnn-same", "plain_cnn", 6.5, 0.93, held_out=(5000, 0))
    write_baseline_run(tmp_path, "cnn-other-seed", "plain_cnn", 6.5, 0.99, held_out=(5000, 1))
    write_baseline_run(tmp_path, "cnn-other-size", "plain_cnn", 6.5, 0.99, held_out=(6000, 0))
    write_baseline_run(tmp_path, "cnn-no-held-out", "plain_cnn", 6.5, 0.99)
    write_baseline_run(tmp_path, "alphanet-min", "arch", 6.9, 0.99, held_out=(5000, 0))
    (tmp_path / "cnn-unfinished").mkdir()
    (tmp_path / "cnn-unfinished" / "config.yaml").write_text("seed: 0\n")
    baselines = read_baselines(tmp_path)
    assert [b["name"] for b in held_out_plain_cnns(baselines, FITNESS)] == ["cnn-same"]
    # A fitness that is not a whole held-out split never trained on compares with nothing.
    assert held_out_plain_cnns(baselines, {**FITNESS, "heldOutFromTraining": False}) == []
    assert held_out_plain_cnns(baselines, {**FITNESS, "maxEvalBatches": 2}) == []
    assert held_out_plain_cnns(baselines, {**FITNESS, "dataset": "mnist"}) == []


def test_a_member_beaten_by_an_equal_or_cheaper_plain_cnn_is_dropped() -> None:
    cnns = [
        {"name": "cnn-6", "kind": "plain_cnn", "mflops": 6.0, "heldOutTop1": 0.940},
        {"name": "cnn-40", "kind": "plain_cnn", "mflops": 40.0, "heldOutTop1": 0.948},
    ]
    members = [
        _member("m-5", 5.0, 0.900),  # cheaper than every CNN: nothing to answer to
        _member("m-6", 6.0, 0.939),  # as costly as cnn-6 and below it
        _member("m-7", 7.0, 0.940),  # a tie is kept
        _member("m-41", 41.0, 0.945),  # above cnn-6, below cnn-40
        _member("m-45", 45.0, 0.950),
    ]
    kept, dropped = members_above_plain_cnns(members, cnns)
    assert [m.name for m in kept] == ["m-5", "m-7", "m-45"]
    assert dropped == [
        {"name": "m-6", "mflops": 6.0, "holdoutTop1": 0.939, "plainCnn": "cnn-6", "plainCnnMflops": 6.0,
         "plainCnnHoldoutTop1": 0.940},
        {"name": "m-41", "mflops": 41.0, "holdoutTop1": 0.945, "plainCnn": "cnn-40", "plainCnnMflops": 40.0,
         "plainCnnHoldoutTop1": 0.948},
    ]  # fmt: skip
    assert members_above_plain_cnns(members, []) == (members, [])


def test_the_card_names_every_dropped_pick_and_the_rule() -> None:
    family = {"search": {"pick": "pareto"}, "archs": [], "drop_below_plain_cnns": True}
    picked = {
        "droppedBelowPlainCnn": [
            {"name": "m-41", "mflops": 41.0, "holdoutTop1": 0.945, "plainCnn": "cnn-40",
             "plainCnnMflops": 40.0, "plainCnnHoldoutTop1": 0.948},
        ],
        "droppedNotMonotone": [
            {"name": "m-9", "holdoutTop1": 0.91, "cheaper": "m-7", "cheaperHoldoutTop1": 0.94},
        ],
    }  # fmt: skip
    text = _search_family_sentence(family, picked)
    assert "a plain-CNN baseline of equal or lower MFLOPs beats on the same held-out images" in text
    assert "`m-41` (94.50% held-out, below the plain CNN `cnn-40`'s 94.80% at 40.00 MFLOPs)" in text
    assert "`m-9` (91.00% held-out, more than 0.2 points below the cheaper `m-7`'s 94.00%)" in text
    quiet = _search_family_sentence({**family, "drop_below_plain_cnns": False}, {})
    assert "plain-CNN" not in quiet and quiet.endswith("No pick was dropped.")


@pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")
def test_search_mode_drops_picks_below_a_plain_cnn_and_refuses_an_empty_family(tiny_space_file, tmp_path):
    state = load_checkpoint(GOLDEN_DIR / "resumable_run" / "checkpoints" / "last.pt")
    state["config"] = copy.deepcopy(state["config"])
    state["config"]["space"] = str(tiny_space_file)
    checkpoint = save_checkpoint(tmp_path / "last.pt", state)
    held_out = (state["config"]["data"]["holdout_size"], state["config"]["data"]["holdout_seed"])
    # A plain CNN that costs nothing: a perfect one beats every pick, a useless one none.
    recipe = state["config"]
    write_baseline_run(
        tmp_path / "perfect",
        "cnn-0m",
        "plain_cnn",
        0.0,
        1.0,
        held_out=held_out,
        held_out_top1=1.0,
        recipe=recipe,
    )
    write_baseline_run(
        tmp_path / "useless",
        "cnn-0m",
        "plain_cnn",
        0.0,
        0.0,
        held_out=held_out,
        held_out_top1=0.0,
        recipe=recipe,
    )
    write_baseline_run(
        tmp_path / "useless", "cnn-elsewhere", "plain_cnn", 0.0, 1.0, held_out=(0, 0), held_out_top1=1.0,
        recipe=recipe,
    )  # fmt: skip
    # A perfect plain CNN trained by another recipe is no bar: the picks stay.
    other = copy.deepcopy(recipe)
    other["optim"]["weight_decay"] *= 10
    write_baseline_run(
        tmp_path / "useless", "cnn-other-recipe", "plain_cnn", 0.0, 1.0, held_out=held_out, held_out_top1=1.0,
        recipe=other,
    )  # fmt: skip

    def family(baselines: str, *extra: str):
        cfg = load_pipeline_config(
            FMNIST_PIPELINE,
            [f"run_dir={tmp_path / 'run'}", f"source.checkpoint={checkpoint}", "source.train.config=null",
             "family.mode=search", "family.archs=[]", "family.search.targets_mflops=[1000]", SEARCH_OVERRIDES,
             f"baselines.dir={tmp_path / baselines}", *extra],
        )  # fmt: skip
        said: list[str] = []
        source = load_supernet_source(checkpoint, cfg["data_overrides"])
        return (*select_family(cfg, SourceResult(source, "checkpoint", checkpoint), said.append), said)

    with pytest.raises(UserError, match="every pick is below a plain-CNN baseline"):
        family("perfect")
    members, details, said = family(
        "perfect", "family.drop_below_plain_cnns=false"
    )  # the same search, reused
    assert members and details["droppedBelowPlainCnn"] == [] and details["reused"]
    members_kept, details, said = family("useless")
    assert [m.name for m in members_kept] == [m.name for m in members]
    assert details["droppedBelowPlainCnn"] == []
    assert any("not held to" in line and "cnn-elsewhere (other held-out images)" in line for line in said)
    assert any("cnn-other-recipe (another recipe)" in line for line in said)
