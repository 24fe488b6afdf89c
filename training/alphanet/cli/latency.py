"""``alphanet latency``: measure a latency lookup table for a space on this host.

Examples::

    python3 -m alphanet latency --space fashion_mnist --out runs/latency_fmnist.json
    python3 -m alphanet latency --space imagenet --arch a0 --arch a6 --out a0_a6.json --threads 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..engine.latency_table import DEFAULT_CACHE_FLUSH_MB, LatencyTable, arch_units, space_units
from ..errors import UserError
from ..space import load_space
from ._subnet_options import file_errors_are_user_errors
from ._command import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "latency",
        "measure a per-block latency lookup table on this host",
        "Time every unit (input resize, stem, each MBConv block variant, head) that the "
        "space's sub-networks can contain, as exported (BN folded, float32, eval mode), and save the "
        "table as JSON for 'search' (constraints.latency_table). An existing table at --out is "
        "extended, not re-measured, when it was measured with the same settings.",
    )
    parser.add_argument("--space", required=True, metavar="NAME", help="search space name or YAML path")
    parser.add_argument("--out", type=Path, required=True, metavar="JSON", help="table to write (or extend)")
    parser.add_argument(
        "--arch",
        action="append",
        metavar="SPEC",
        help="only the units of these archs (default: the whole space)",
    )
    parser.add_argument("--batch-size", type=int, default=1, metavar="N", help="batch size timed (default 1)")
    parser.add_argument(
        "--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--repeats", type=int, default=20, metavar="N", help="timed runs per unit (minimum kept)"
    )
    parser.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed runs per unit")
    parser.add_argument(
        "--cache-flush-mb",
        type=int,
        default=DEFAULT_CACHE_FLUSH_MB,
        metavar="MB",
        help="buffer written before every timed run to evict the CPU caches, as inside a whole network "
        f"(default {DEFAULT_CACHE_FLUSH_MB}: more than L2, less than the last-level cache; 0 = no flush)",
    )


@file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 0 or args.cache_flush_mb < 0:
        raise UserError("--batch-size and --repeats must be >= 1, --warmup and --cache-flush-mb >= 0")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    space = load_space(args.space)
    if args.arch:
        units = {u.key: u for spec in args.arch for u in arch_units(space, space.resolve(spec))}.values()
    else:
        units = space_units(space)
    table = LatencyTable(batch_size=args.batch_size, cache_flush_mb=args.cache_flush_mb)
    if args.out.is_file():
        existing = LatencyTable.load(args.out)
        settings = ("batch_size", "threads", "host", "cache_flush_mb", "statistic")
        if any(getattr(existing, k) != getattr(table, k) for k in settings):
            raise UserError(
                f"{args.out} was measured with other settings (batch {existing.batch_size}, "
                f"{existing.threads} threads, {existing.cache_flush_mb} MB cache flush, host "
                f"'{existing.host}'); write a new table instead"
            )
        table = existing

    def progress(index: int, total: int, unit) -> None:
        if index % 25 == 0:
            print(f"measuring {index + 1}/{total}: {unit.key}", file=sys.stderr)

    measured = table.measure(list(units), warmup=args.warmup, repeats=args.repeats, progress=progress)
    table.save(args.out)
    print(json.dumps({"out": str(args.out), "measured": measured, "entries": len(table.entries)}))
    return 0
