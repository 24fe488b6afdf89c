"""Stage 2: the model family to publish.

* ``family.mode: named`` -- the listed archs: ``min``, ``max``, a named arch of the space (``a0``),
  an arch file, or an inline ``{name, arch}`` mapping.
* ``family.mode: search`` -- the evolutionary search (``alphanet search``) over the supernet, then
  the best candidate at or below each ``targets_mflops`` (duplicates merged). Its results are
  kept in ``<run_dir>/search.json`` and reused by a rerun with the same checkpoint and settings.

Model names are ``zoo.model_prefix`` + the member's label.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..export.zoo_writer import model_name
from ..models import complexity
from ..space import ArchConfig, SearchSpace
from .supernet_source import SourceResult

SEARCH_RESULTS = "search.json"
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


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _search_overrides(cfg: dict[str, Any], result: SourceResult, output: Path) -> list[str]:
    search = cfg["family"]["search"]
    overrides = list(search["overrides"])
    if result.kind == "official":
        overrides += [f"official_checkpoint={cfg['source']['official']}", f"space={cfg['source']['space']}"]
        if cfg["source"]["training_config"]:
            overrides.append(f"training_config={cfg['source']['training_config']}")
    else:
        overrides.append(f"checkpoint={result.checkpoint}")
    overrides += [
        f"output={output}",
        f"targets_mflops={json.dumps([float(t) for t in search['targets_mflops']])}",
        f"data_overrides={json.dumps(list(cfg['data_overrides']))}",
    ]
    return overrides


def _fingerprint(cfg: dict[str, Any], result: SourceResult, overrides: list[str]) -> dict[str, Any]:
    weights = result.checkpoint if result.checkpoint is not None else Path(cfg["source"]["official"])
    config = Path(cfg["family"]["search"]["config"])
    return {
        "weights": str(weights),
        "weightsSha256": _file_digest(weights),
        "searchConfigSha256": _file_digest(config) if config.is_file() else None,
        "overrides": overrides,
    }


def search_family(cfg: dict[str, Any], result: SourceResult, prefix: str, say) -> tuple[list[Member], dict]:
    from ..cli import search as search_cli

    run_dir = Path(cfg["run_dir"])
    output = run_dir / SEARCH_RESULTS
    fingerprint_path = run_dir / SEARCH_FINGERPRINT
    overrides = _search_overrides(cfg, result, output)
    fingerprint = _fingerprint(cfg, result, overrides)
    reused = False
    if output.is_file() and fingerprint_path.is_file():
        try:
            reused = json.loads(fingerprint_path.read_text()) == fingerprint
        except ValueError:
            reused = False
    if reused:
        say(f"reusing the search results {output} (same weights and search settings)")
    else:
        say(f"evolutionary search ({cfg['family']['search']['config']}) -> {output}")
        run_dir.mkdir(parents=True, exist_ok=True)
        fingerprint_path.unlink(missing_ok=True)
        namespace = argparse.Namespace(config=Path(cfg["family"]["search"]["config"]), overrides=overrides)
        # The search command prints its JSON summary on stdout; the pipeline keeps stdout for its own.
        with redirect_stdout(sys.stderr):
            search_cli.run(namespace)
        fingerprint_path.write_text(json.dumps(fingerprint, indent=2) + "\n")
    space, num_classes = result.source.space, result.source.supernet.num_classes
    members = family_from_search_results(output, space, num_classes, prefix, cfg["family"]["search"]["pick"])
    # family.archs in search mode: always publish these too (e.g. `max`, which a search seeded with
    # the smallest subnet rarely samples), labelled by MFLOPs like the search picks.
    have = {m.arch for m in members}
    for extra in named_family(cfg["family"]["archs"], space, num_classes, prefix):
        if extra.arch not in have:
            label = f"{round(extra.mflops, 2):g}m"
            members.append(_member(space, num_classes, prefix, label, extra.arch, "named"))
            have.add(extra.arch)
    _check_unique(members)
    data = json.loads(output.read_text())
    details = {"searchResults": str(output), "reused": reused, "evaluated": data.get("evaluatedCount")}
    return members, details


def family_from_search_results(
    path: Path, space: SearchSpace, num_classes: int, prefix: str, pick: str = "targets"
) -> list[Member]:
    """One member per distinct per-target pick (``pick: targets``) or per Pareto-front member
    (``pick: pareto``) of a ``search`` results file."""
    try:
        data = json.loads(Path(path).read_text())
        if data["space"] != space.name:
            raise UserError(f"{path} was searched in space '{data['space']}', not '{space.name}'")
        targets = data["targets"]
        if pick == "pareto":
            # Every Pareto-front member is its own "target": none is dominated on the held-out split.
            targets = [{"targetMflops": e["mflops"], "pick": e} for e in data["paretoFront"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a 'search' results file ({exc})") from None
    members: dict[ArchConfig, Member] = {}
    for target in targets:
        pick = target.get("pick")
        if not pick:
            continue
        arch = ArchConfig.from_dict(pick["arch"])
        space.validate(arch)
        if arch not in members:
            # Same label rule as `alphanet export --search-results`: the MFLOPs, e.g. "5.12m".
            label = f"{round(pick['mflops'], 2):g}m"
            member = _member(space, num_classes, prefix, label, arch, "search")
            member.search = {"holdoutTop1": pick.get("top1"), "targetsMflops": []}
            members[arch] = member
        members[arch].search["targetsMflops"].append(target["targetMflops"])
    if not members:
        raise UserError(f"{path}: no FLOPs target has a pick (every target is below the smallest candidate)")
    ordered = sorted(members.values(), key=lambda m: m.mflops)
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
