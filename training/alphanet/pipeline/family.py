"""Stage 2: the model family to publish.

* ``family.mode: named`` -- the listed archs: ``min``, ``max``, a named arch of the space (``a0``),
  an arch file, or an inline ``{name, arch}`` mapping.
* ``family.mode: search`` -- the evolutionary search (`run_search`) over the loaded supernet, then
  the best candidate at or below each ``targets_mflops`` (duplicates merged). Its results are
  kept in ``<run_dir>/search.json`` and reused by a rerun with the same checkpoint and settings;
  an interrupted search resumes from ``<run_dir>/search.journal.jsonl`` (its evaluations so far).
  ``family.archs`` are added. With ``family.drop_below_plain_cnns``, a member is dropped when a
  plain CNN of ``baselines.dir`` that costs no more MFLOPs scored higher on the same held-out
  images. Then the family is made monotone on the held-out split: a member is kept only if its
  held-out top-1 is at least every cheaper member's minus 0.2 points. The evaluation split, which
  the model card reports, never steers the picks.

Model names are ``zoo.model_prefix`` + the member's label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.search_config import load_search_config
from ..engine.search_journal import SearchJournal, journal_path, search_identity
from ..engine.search_run import (
    holdout_fitness,
    read_search_results,
    run_search,
    search_picks,
    write_search_results,
)
from ..errors import UserError
from ..export.zoo_writer import model_name
from ..models import complexity
from ..paths import repo_path
from ..space import ArchConfig, SearchSpace
from .baselines import held_out_plain_cnns, plain_cnns_within, read_baselines
from .supernet_source import SourceResult

SEARCH_RESULTS = "search.json"
# A costlier member must be at least this accurate as every cheaper one, less this (0.2 points).
MONOTONE_TOLERANCE = 0.002
SEARCH_FINGERPRINT = "search.fingerprint.json"


@dataclass
class Member:
    """One sub-network of the family."""

    label: str
    name: str
    arch: ArchConfig
    mflops: float
    params: int
    origin: str  # named | search
    search: dict[str, Any] = field(default_factory=dict)


def _member(space: SearchSpace, num_classes: int, prefix: str, label: str, arch: ArchConfig, origin: str):
    cx = complexity(space, arch, num_classes)
    return Member(label, model_name(prefix, label), arch, cx.mflops, cx.params, origin)


def named_family(entries: list[Any], space: SearchSpace, num_classes: int, prefix: str) -> list[Member]:
    members: list[Member] = []
    for entry in entries:
        if isinstance(entry, str):
            label = Path(entry).stem if entry.lower().endswith((".json", ".yaml", ".yml")) else entry
            arch = space.resolve(entry)
        else:
            label = entry["name"]
            try:
                arch = ArchConfig.from_dict(entry["arch"])
                space.validate(arch)
            except UserError as exc:
                raise UserError(f"family.archs entry '{label}': {exc}") from None
        members.append(_member(space, num_classes, prefix, label, arch, "named"))
    _check_unique(members)
    return members


def _check_unique(members: list[Member]) -> None:
    seen_names: dict[str, str] = {}
    seen_archs: dict[ArchConfig, str] = {}
    for member in members:
        if member.name in seen_names:
            raise UserError(f"family: two members are both named '{member.name}'")
        if member.arch in seen_archs:
            raise UserError(
                f"family: '{member.label}' is the same arch as '{seen_archs[member.arch]}'; list it once"
            )
        seen_names[member.name] = member.label
        seen_archs[member.arch] = member.label


def search_config(cfg: dict[str, Any], result: SourceResult) -> dict[str, Any]:
    """The family search's config: ``family.search.config`` with its overrides, searching the
    pipeline's supernet at the pipeline's targets with its data overrides."""
    search = cfg["family"]["search"]
    values: dict[str, Any] = {
        "output": str(Path(cfg["run_dir"]) / SEARCH_RESULTS),
        "targets_mflops": [float(t) for t in search["targets_mflops"]],
        "data_overrides": list(cfg["data_overrides"]),
    }
    if result.kind == "official":
        values.update(official_checkpoint=cfg["source"]["official"], space=cfg["source"]["space"])
        values["training_config"] = cfg["source"]["training_config"]
    else:
        values["checkpoint"] = str(result.checkpoint)
    return load_search_config(Path(search["config"]), search["overrides"], values)


def _fingerprint(cfg: dict[str, Any], result: SourceResult, settings: dict[str, Any]) -> dict[str, Any]:
    weights = result.checkpoint if result.checkpoint is not None else Path(cfg["source"]["official"])
    return search_identity(weights, settings)


def search_family(cfg: dict[str, Any], result: SourceResult, prefix: str, say) -> tuple[list[Member], dict]:
    """Search the supernet (or reuse the results of the same search on the same weights)."""
    settings = search_config(cfg, result)
    output = Path(settings["output"])
    fingerprint_path = output.parent / SEARCH_FINGERPRINT
    fingerprint = _fingerprint(cfg, result, settings)
    data = None
    if output.is_file() and fingerprint_path.is_file():
        try:
            if json.loads(fingerprint_path.read_text()) == fingerprint:
                data = read_search_results(output)
        except ValueError:
            data = None
    reused = data is not None
    if data is not None:
        say(f"reusing the search results {output} (same weights and search settings)")
    else:
        say(f"evolutionary search ({cfg['family']['search']['config']}) -> {output}")
        fingerprint_path.unlink(missing_ok=True)
        iterations = settings["evolution"]["iterations"]

        def progress(generation: int, summary: dict[str, Any]) -> None:
            say(
                f"search generation {generation + 1}/{iterations}: {summary['newlyEvaluated']} new, "
                f"best top-1 {summary['bestTop1']:.4f} at {summary['bestTop1Mflops']:.2f} MFLOPs"
            )

        journal = SearchJournal(journal_path(output), fingerprint)
        if journal.known:
            say(
                f"resuming the search: {len(journal.known)} evaluations recorded in {repo_path(journal.path)}"
            )
        data = run_search(settings, source=result.source, on_generation=progress, journal=journal)
        if journal.replayed:
            say(f"search: {journal.replayed} evaluations replayed from the journal, not repeated")
        write_search_results(data, output)
        fingerprint_path.write_text(json.dumps(fingerprint, indent=2) + "\n")
    space, num_classes = result.source.space, result.source.supernet.num_classes
    members = family_from_search_results(data, space, num_classes, prefix, cfg["family"]["search"]["pick"])
    # family.archs in search mode: always publish these too (e.g. `max`, which a search seeded with
    # the smallest subnet rarely samples), labelled by MFLOPs like the search picks.
    have = {m.arch for m in members}
    for extra in named_family(cfg["family"]["archs"], space, num_classes, prefix):
        if extra.arch not in have:
            label = f"{round(extra.mflops, 2):g}m"
            members.append(_member(space, num_classes, prefix, label, extra.arch, "named"))
            have.add(extra.arch)
    _check_unique(members)
    _score_on_holdout(members, settings, result.source)
    below: list[dict[str, Any]] = []
    if cfg["family"]["drop_below_plain_cnns"]:
        recipe = None if result.kind == "official" else result.source.cfg
        cnns = _held_out_bar(cfg, data.get("fitness") or {}, recipe, say)
        members, below = members_above_plain_cnns(members, cnns)
        for record in below:
            say(
                f"dropped {record['name']}: held-out top-1 {record['holdoutTop1']:.4f} is below the plain "
                f"CNN {record['plainCnn']} ({record['plainCnnHoldoutTop1']:.4f} at "
                f"{record['plainCnnMflops']:.2f} MFLOPs)"
            )
        if not members:
            raise UserError(
                "family: every pick is below a plain-CNN baseline of equal or lower MFLOPs on the held-out "
                "images (family.drop_below_plain_cnns); nothing would be worth publishing -- train the "
                "supernet longer, or set family.drop_below_plain_cnns=false to publish it anyway"
            )
    members, dropped = monotone_members(members)
    for record in dropped:
        say(
            f"dropped {record['name']}: held-out top-1 {record['holdoutTop1']:.4f} is more than "
            f"{MONOTONE_TOLERANCE * 100:.1f} points below the cheaper {record['cheaper']} "
            f"({record['cheaperHoldoutTop1']:.4f})"
        )
    details = {
        "searchResults": repo_path(output),
        "reused": reused,
        "evaluated": data.get("evaluatedCount"),
        "droppedBelowPlainCnn": below,
        "droppedNotMonotone": dropped,
    }
    return members, details


def _held_out_bar(
    cfg: dict[str, Any], fitness: dict[str, Any], recipe: dict[str, Any] | None, say
) -> list[dict[str, Any]]:
    """The plain-CNN baselines of ``baselines.dir`` that family picking can hold members to (scored
    on the search fitness's own held-out images, trained by the supernet's recipe ``recipe``),
    saying which ones it cannot and why."""
    baselines = read_baselines(cfg["baselines"]["dir"], recipe)
    cnns = held_out_plain_cnns(baselines, fitness)

    def why(b: dict[str, Any]) -> str:
        if b["status"] != "complete":
            return "unfinished"
        return "another recipe" if b.get("recipeDifferences") else "other held-out images"

    others = [
        f"{b['name']} ({why(b)})"
        for b in baselines
        if b not in cnns and (b["status"] != "complete" or b["kind"] == "plain_cnn")
    ]
    if others:
        say("baselines not held to: " + ", ".join(others))
    return cnns


def members_above_plain_cnns(
    members: list[Member], cnns: list[dict[str, Any]]
) -> tuple[list[Member], list[dict[str, Any]]]:
    """(kept, dropped): a member is dropped when a plain CNN trained alone that costs no more MFLOPs
    scored higher on the same held-out images (``cnns``: `held_out_plain_cnns`) -- its users would
    be better served by that cheaper textbook network. Ties are kept."""
    kept, dropped = [], []
    for member in members:
        top1 = member.search["holdoutTop1"]
        better = [c for c in plain_cnns_within(cnns, {"mflops": member.mflops}) if c["heldOutTop1"] > top1]
        if not better:
            kept.append(member)
            continue
        best = max(better, key=lambda c: c["heldOutTop1"])
        dropped.append(
            {
                "name": member.name,
                "mflops": member.mflops,
                "holdoutTop1": top1,
                "plainCnn": best["name"],
                "plainCnnMflops": best["mflops"],
                "plainCnnHoldoutTop1": best["heldOutTop1"],
            }
        )
    return kept, dropped


def _score_on_holdout(members: list[Member], settings: dict[str, Any], source) -> None:
    """Held-out top-1 (the search's own fitness) of the members the search did not score
    (``family.archs`` extras); the evaluation split is never read."""
    unscored = [m for m in members if m.search.get("holdoutTop1") is None]
    if not unscored:
        return
    fitness = holdout_fitness(settings, source)
    for member in unscored:
        member.search = {**member.search, "holdoutTop1": fitness(member.arch)["top1"]}


def monotone_members(members: list[Member]) -> tuple[list[Member], list[dict[str, Any]]]:
    """(kept, dropped): a member is kept only if its held-out top-1 is at least that of every
    cheaper member minus `MONOTONE_TOLERANCE`, so paying more FLOPs never buys a worse model.
    Only held-out figures are compared (``member.search["holdoutTop1"]``), never the test split."""
    kept, dropped = [], []
    ordered = sorted(members, key=lambda m: m.mflops)
    for member in ordered:
        top1 = member.search["holdoutTop1"]
        cheaper = [m for m in ordered if m.mflops < member.mflops]
        best = max(cheaper, key=lambda m: m.search["holdoutTop1"], default=None)
        if best is not None and top1 < best.search["holdoutTop1"] - MONOTONE_TOLERANCE:
            dropped.append(
                {
                    "name": member.name,
                    "holdoutTop1": top1,
                    "cheaper": best.name,
                    "cheaperHoldoutTop1": best.search["holdoutTop1"],
                }
            )
        else:
            kept.append(member)
    return kept, dropped


def family_from_search_results(
    data: dict[str, Any], space: SearchSpace, num_classes: int, prefix: str, pick: str = "targets"
) -> list[Member]:
    """One member per distinct per-target pick (``pick: targets``) or per Pareto-front member
    (``pick: pareto``) of a search results document, ordered by MFLOPs."""
    members = []
    for found in search_picks(data, space, pick, "the search results"):
        member = _member(space, num_classes, prefix, found.label, found.arch, "search")
        member.search = {"holdoutTop1": found.holdout_top1, "targetsMflops": found.targets_mflops}
        members.append(member)
    if not members:
        raise UserError(
            "the search results: no FLOPs target has a pick (every target is below the smallest candidate)"
        )
    ordered = sorted(members, key=lambda m: m.mflops)
    _check_unique(ordered)
    return ordered


def select_family(cfg: dict[str, Any], result: SourceResult, say) -> tuple[list[Member], dict[str, Any]]:
    """Run stage 2; members are ordered by MFLOPs."""
    prefix = cfg["zoo"]["model_prefix"]
    space, num_classes = result.source.space, result.source.supernet.num_classes
    if cfg["family"]["mode"] == "named":
        members = named_family(cfg["family"]["archs"], space, num_classes, prefix)
        details: dict[str, Any] = {"mode": "named"}
    else:
        members, details = search_family(cfg, result, prefix, say)
        details["mode"] = "search"
    members.sort(key=lambda m: m.mflops)
    details["members"] = [m.name for m in members]
    details["summary"] = f"{len(members)} members: " + ", ".join(
        f"{m.name} ({m.mflops:.2f} MFLOPs)" for m in members
    )
    return members, details
