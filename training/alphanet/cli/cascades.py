"""``alphanet cascades``: add confidence cascades to an existing zoo (no retraining).

Examples::

    PYTHONPATH=training python3 -m alphanet cascades --zoo-dir models \\
        --training-config training/configs/fashion_mnist.yaml

Picks 2-3 stage cascades of the zoo's members on the training config's held-out images
(``data.holdout_size``, ``data.holdout_seed``), measures them on the evaluation split in
onnxruntime-node, and republishes the zoo atomically with them (model card and chart included).
The pipeline does the same at every publish.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._command import add_command, add_overrides


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "cascades",
        "add confidence cascades to an existing zoo (picked on held-out images) and republish it",
        "Builds cascades from a published zoo's ONNX files: per-member softmax outputs on the held-out "
        "images in onnxruntime-node, cascades picked on them, measured on the evaluation split, "
        "republished atomically. A JSON summary on stdout.",
        __doc__,
    )
    parser.add_argument(
        "--zoo-dir", type=Path, required=True, help="the zoo to add cascades to (e.g. models)"
    )
    parser.add_argument(
        "--training-config", type=Path, required=True, help="training config: dataset and held-out split"
    )
    parser.add_argument("--count", type=int, default=4, help="at most this many cascades (default 4)")
    parser.add_argument("--latency-runs", type=int, default=100, help="timed batch-1 runs per stage model")
    parser.add_argument(
        "--intra-op-threads", type=int, help="onnxruntime intra-op threads (default: all cores)"
    )
    parser.add_argument(
        "--heldout-note", help="caveat about the held-out images, written to the manifest and card"
    )
    parser.add_argument("--no-model-card", action="store_true", help="leave README.md and pareto.png alone")
    add_overrides(parser, "training-config overrides, e.g. data.root=/data/fmnist")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..pipeline.add_cascades import add_cascades

    if args.count < 1:
        raise UserError(f"--count must be >= 1, got {args.count}")
    result = add_cascades(
        args.zoo_dir.resolve(),
        args.training_config.resolve(),
        overrides=list(args.overrides),
        heldout_note=args.heldout_note,
        count=args.count,
        latency_runs=args.latency_runs,
        threads=args.intra_op_threads,
        model_card=not args.no_model_card,
        say=lambda line: print(line, file=sys.stderr),
    )
    print(json.dumps(result, indent=2))
    return 0
