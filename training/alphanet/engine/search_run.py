"""The evolutionary search as a library call: a resolved search config (and optionally the
already loaded supernet) in, the results document out (archive, Pareto front, per-target picks,
fitness description). The ``search`` command and the pipeline's family stage both call it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from ..export.sources import SubnetSource, load_official_source, load_supernet_source, model_device
from ..paths import repo_path
from ..space import ArchConfig, SearchSpace
from .latency_table import LatencyTable
from .search import EvolutionarySearch
from .search_config import calibration_settings, search_settings
from .search_journal import SearchJournal
from .subnet_eval import HoldoutFitness

OnGeneration = Callable[[int, dict[str, Any]], None]


def search_source(cfg: dict[str, Any]) -> SubnetSource:
    """The supernet a search config names, with its ``data_overrides`` applied."""
    if cfg["checkpoint"] is not None:
        return load_supernet_source(Path(cfg["checkpoint"]), cfg["data_overrides"])
    return load_official_source(
        Path(cfg["official_checkpoint"]),
        cfg["space"] or "imagenet",
        Path(cfg["training_config"]) if cfg["training_config"] else None,
        cfg["data_overrides"],
    )


def holdout_fitness(cfg: dict[str, Any], source: SubnetSource) -> HoldoutFitness:
    """The search's fitness: held-out top-1 after BN recalibration, per the ``fitness`` section."""
    fitness = cfg["fitness"]
    return HoldoutFitness(
        source,
        calibration_settings(cfg),
        fitness["holdout_size"],
        fitness["holdout_seed"],
        fitness["eval_batch_size"],
        fitness["max_eval_batches"],
        model_device(source.cfg),
    )


def run_search(
    cfg: dict[str, Any],
    source: SubnetSource | None = None,
    on_generation: OnGeneration | None = None,
    journal: SearchJournal | None = None,
) -> dict[str, Any]:
    """Search ``source`` (default: the supernet ``cfg`` names) and return the results document;
    with ``journal``, evaluations recorded there by an interrupted run of the same search are
    replayed instead of repeated, and new ones are recorded."""
    source = source if source is not None else search_source(cfg)
    latency = None
    if cfg["constraints"]["latency_table"]:
        table = LatencyTable.load(Path(cfg["constraints"]["latency_table"]))
        latency = lambda arch: table.predict(source.space, arch)  # noqa: E731
    fitness = holdout_fitness(cfg, source)
    settings = search_settings(cfg)
    search = EvolutionarySearch(
        source.space, settings, fitness, latency, source.supernet.num_classes, journal
    )
    result = search.run(on_generation=on_generation)
    extra: dict[str, Any] = {"checkpoint": repo_path(source.origin), "fitness": fitness.describe()}
    if cfg["constraints"]["latency_table"]:
        extra["latencyTable"] = repo_path(cfg["constraints"]["latency_table"])
    return result.to_dict(targets=cfg["targets_mflops"], extra=extra)


def write_search_results(data: dict[str, Any], path: Path) -> None:
    """Write the results document atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_search_results(path: Path) -> dict[str, Any]:
    """A results document written by `write_search_results`."""
    if not path.is_file():
        raise UserError(f"search results not found: {path}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path} is not a 'search' results file ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a 'search' results file")
    return data


@dataclass
class SearchPick:
    """One distinct arch picked from a results document, labelled by its MFLOPs (e.g. "5.12m")."""

    label: str
    arch: ArchConfig
    mflops: float
    holdout_top1: float | None  # the search's fitness: held-out top-1 after BN recalibration
    targets_mflops: list[float] = field(default_factory=list)


def search_picks(data: dict[str, Any], space: SearchSpace, pick: str, where: str) -> list[SearchPick]:
    """The per-target picks (``pick="targets"``, duplicates merged) or every Pareto-front member
    (``pick="pareto"``: none is dominated on the held-out split), in the document's order."""
    try:
        if data["space"] != space.name:
            raise UserError(f"{where} was searched in space '{data['space']}', not '{space.name}'")
        if pick == "pareto":
            targets = [{"targetMflops": e["mflops"], "pick": e} for e in data["paretoFront"]]
        else:
            targets = list(data["targets"])
        picks: dict[ArchConfig, SearchPick] = {}
        for target in targets:
            record = target.get("pick")
            if not record:
                continue
            arch = ArchConfig.from_dict(record["arch"])
            space.validate(arch)
            if arch not in picks:
                label = f"{round(record['mflops'], 2):g}m"
                picks[arch] = SearchPick(label, arch, record["mflops"], record.get("top1"))
            picks[arch].targets_mflops.append(target["targetMflops"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{where} is not a 'search' results file ({exc})") from None
    return list(picks.values())
