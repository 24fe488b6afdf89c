"""``flops``: analytic MFLOPs (MACs of conv + linear / 1e6) and parameters of sub-networks."""

from __future__ import annotations

import argparse
import json

from ..models import complexity
from ..space import load_space
from ._command import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "flops",
        "MFLOPs and parameters of sub-networks",
        "Analytic MFLOPs (multiply-accumulates of conv and linear layers / 1e6, as the "
        "reference counts) and effective parameter counts of sub-networks of a space.",
    )
    parser.add_argument(
        "--space", default="imagenet", metavar="NAME|FILE", help="space name or YAML path (default: imagenet)"
    )
    parser.add_argument(
        "--arch",
        action="append",
        metavar="ARCH",
        help="min | max | a named arch | a JSON/YAML arch file; repeatable (default: min, named archs, max)",
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="classifier size (default: the space's)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (an object for one --arch, else a list)"
    )


def run(args: argparse.Namespace) -> int:
    space = load_space(args.space)
    specs = args.arch or ["min", *space.archs, "max"]
    rows = []
    for spec in specs:
        arch = space.resolve(spec)
        cost = complexity(space, arch, args.num_classes)
        rows.append(
            {
                "space": space.name,
                "arch": spec,
                "mflops": round(cost.mflops, 4),
                "params": cost.params,
                "config": arch.to_dict(),
            }
        )
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows))
    else:
        width = max(len(r["arch"]) for r in rows)
        print(f"{'arch':<{width}}  {'res':>4}  {'MFLOPs':>10}  {'params':>12}")
        for r in rows:
            res = r["config"]["resolution"]
            print(f"{r['arch']:<{width}}  {res:>4}  {r['mflops']:>10.2f}  {r['params']:>12,}")
    return 0
