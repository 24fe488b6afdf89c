"""``alphanet search``: evolutionary search over a trained supernet; writes a results JSON.

Examples::

    python3 -m alphanet search configs/search/fashion_mnist.yaml checkpoint=runs/fmnist
    python3 -m alphanet search configs/search/fashion_mnist.yaml checkpoint=runs/fmnist \\
        evolution.iterations=4 targets_mflops=[3,5,8] output=runs/fmnist/search.json

Every evaluation is appended to ``<output stem>.journal.jsonl`` as it happens: rerunning the same
command on the same weights after an interruption replays them and goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine.search_config import load_search_config
from ..checkpoint import resolve_checkpoint_path
from ..engine.search_journal import SearchJournal, journal_path, search_identity
from ..engine.search_run import run_search, search_source, write_search_results
from ._subnet_options import file_errors_are_user_errors
from ._command import add_command, add_overrides


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
    iterations = cfg["evolution"]["iterations"]

    def report(generation: int, summary: dict) -> None:
        print(
            f"generation {generation + 1}/{iterations}: {summary['newlyEvaluated']} new, "
            f"archive {summary['archiveSize']} bins, best top-1 {summary['bestTop1']:.4f} "
            f"at {summary['bestTop1Mflops']:.2f} MFLOPs",
            file=sys.stderr,
        )

    source = search_source(cfg)
    output = Path(cfg["output"])
    checkpoint = cfg["checkpoint"]
    weights = (
        resolve_checkpoint_path(checkpoint) if checkpoint is not None else Path(cfg["official_checkpoint"])
    )
    journal = SearchJournal(journal_path(output), search_identity(weights, cfg))
    if journal.known:
        print(f"resuming: {len(journal.known)} evaluations recorded in {journal.path}", file=sys.stderr)
    data = run_search(cfg, source=source, on_generation=report, journal=journal)
    write_search_results(data, output)
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
    summary = {
        "output": str(output),
        "evaluated": data["evaluatedCount"],
        "paretoFront": len(data["paretoFront"]),
    }
    print(json.dumps(summary))
    return 0
