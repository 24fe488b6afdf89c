"""``alphanet evaluate``: top-1 / top-5 of sub-networks after BN recalibration, as JSON.

Examples::

    python3 -m alphanet evaluate --checkpoint runs/fmnist --arch min --arch max
    python3 -m alphanet evaluate --checkpoint runs/fmnist/min.pt          # calibrated checkpoint
    python3 -m alphanet evaluate --official-checkpoint alphanet_pretrained.pth.tar --arch a0 \\
        data.root=/data/imagenet
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine.subnet_eval import evaluate_subnets
from ..paths import repo_path
from . import _subnet_options as options
from ._command import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "evaluate",
        "top-1/top-5 of sub-networks (with BN recalibration)",
        "Evaluate sub-networks on the evaluation split (Fashion-MNIST test set, or the "
        "image tree's data.val_dir). Sub-networks of a supernet are recalibrated first; a calibrated "
        "checkpoint from 'calibrate' is used as is (unless --recalibrate). Prints JSON.",
    )
    options.add_source_options(parser)
    parser.add_argument(
        "--arch",
        action="append",
        metavar="SPEC",
        help="min | max | named arch | JSON/YAML arch file; repeatable (required with a supernet)",
    )
    parser.add_argument("--max-batches", type=int, metavar="N", help="evaluate only the first N batches")
    parser.add_argument("--eval-batch-size", type=int, metavar="N", help="default: data.eval_batch_size")
    parser.add_argument(
        "--recalibrate", action="store_true", help="recalibrate a calibrated checkpoint again"
    )
    parser.add_argument("--out", type=Path, metavar="PATH", help="also write the JSON results here")
    options.add_calibration_options(parser)


@options.file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    source = options.load_source(args)
    settings = options.calibration_settings(args, source)
    device = options.device_of(source)
    targets = options.resolve_archs(source.space, args.arch) or [(None, None)]
    results = evaluate_subnets(
        source, targets, settings, device, args.eval_batch_size, args.max_batches, args.recalibrate
    )
    output = {"source": repo_path(source.origin), "results": results}
    text = json.dumps(output, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0
