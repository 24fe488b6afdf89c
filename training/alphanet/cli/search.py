"""``alphanet search``: evolutionary search over a trained supernet; writes a results JSON.

Examples::

    python3 -m alphanet search configs/search/fashion_mnist.yaml checkpoint=runs/fmnist
    python3 -m alphanet search configs/search/fashion_mnist.yaml checkpoint=runs/fmnist \\
        evolution.iterations=4 targets_mflops=[3,5,8] output=runs/fmnist/search.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..engine.latency_table import LatencyTable
from ..engine.search import EvolutionarySearch
from ..engine.search_config import calibration_settings, load_search_config, search_settings
from ..engine.subnet_eval import HoldoutFitness
from ..export.sources import load_official_source, load_supernet_source, model_device
from ._subnet_options import file_errors_are_user_errors
from ._command import add_command, add_overrides

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "search",
        "evolutionary architecture search over a trained supernet",
        "Evolutionary search (AlphaNet reference, section 7): FLOPs-constrained population, "
        "mutation and crossover, Pareto archive by FLOPs bins; fitness = top-1 after BN recalibration "
        "on images held out from the training split. Writes the archive, the Pareto front and the "
        "best candidate at or below each FLOPs target to a JSON file.",
    )
    parser.add_argument("config", type=Path, help="search config YAML (see training/configs/search/)")
    add_overrides(
        parser,
        "search-config overrides, e.g. checkpoint=runs/fmnist constraints.max_mflops=8 "
        "data_overrides=[data.root=/data]",
    )


@file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    cfg = load_search_config(args.config, args.overrides)
    if cfg["checkpoint"] is not None:
        source = load_supernet_source(Path(cfg["checkpoint"]), cfg["data_overrides"])
    else:
        source = load_official_source(
            Path(cfg["official_checkpoint"]),
            cfg["space"] or "imagenet",
            Path(cfg["training_config"]) if cfg["training_config"] else None,
            cfg["data_overrides"],
        )
    settings = search_settings(cfg)
    latency = None
    if cfg["constraints"]["latency_table"]:
        table = LatencyTable.load(Path(cfg["constraints"]["latency_table"]))
        latency = lambda arch: table.predict(source.space, arch)  # noqa: E731
    fitness_cfg = cfg["fitness"]
    fitness = HoldoutFitness(
        source,
        calibration_settings(cfg),
        fitness_cfg["holdout_size"],
        fitness_cfg["holdout_seed"],
        fitness_cfg["eval_batch_size"],
        fitness_cfg["max_eval_batches"],
        model_device(source.cfg),
    )
    search = EvolutionarySearch(source.space, settings, fitness, latency, source.supernet.num_classes)

    def report(generation: int, summary: dict) -> None:
        print(
            f"generation {generation + 1}/{settings.iterations}: {summary['newlyEvaluated']} new, "
            f"archive {summary['archiveSize']} bins, best top-1 {summary['bestTop1']:.4f} "
            f"at {summary['bestTop1Mflops']:.2f} MFLOPs",
            file=sys.stderr,
        )

    result = search.run(on_generation=report)
    extra = {"checkpoint": source.origin, "fitness": fitness.describe()}
    if cfg["constraints"]["latency_table"]:
        extra["latencyTable"] = cfg["constraints"]["latency_table"]
    data = result.to_dict(targets=cfg["targets_mflops"], extra=extra)
    output = Path(cfg["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(output)
    for target in data["targets"]:
        pick = target["pick"]
        if pick is None:
            print(
                f"target {target['targetMflops']} MFLOPs: no evaluated candidate at or below it",
                file=sys.stderr,
            )
        else:
            print(
                f"target {target['targetMflops']} MFLOPs: {pick['mflops']:.2f} MFLOPs, "
                f"top-1 {pick['top1']:.4f}",
                file=sys.stderr,
            )
    print(
        json.dumps(
            {
                "output": str(output),
                "evaluated": data["evaluatedCount"],
                "paretoFront": len(data["paretoFront"]),
            }
        )
    )
    return 0
