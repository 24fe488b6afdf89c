"""``train``: sandwich-rule supernet training (single process, or one process per rank under torchrun).

Examples::

    python3 -m alphanet train --config configs/fashion_mnist.yaml --run-dir runs/fmnist
    python3 -m alphanet train --resume runs/fmnist                      # continue exactly
    python3 -m alphanet train --config configs/fashion_mnist.yaml --run-dir runs/fm \\
        --resume auto --time-limit-min 30 optim.lr=0.2 loss.distill=kl
    torchrun --nproc_per_node 2 -m alphanet train --config configs/fashion_mnist.yaml --run-dir runs/ddp
    # (torch 1.13 on Python 3.11: add "--redirects 1 --tee 1" after torchrun; its default fails to parse)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..engine.training_run import load_baseline, plan_training_run
from ..errors import UserError
from ..logging_utils import setup_logging
from ._command import add_command, add_overrides


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        "train a supernet (sandwich rule + in-place distillation)",
        "Train an AlphaNet supernet. Prints a JSON summary on stdout when it stops; "
        "metrics go to <run-dir>/metrics.jsonl, checkpoints to <run-dir>/checkpoints/.",
        __doc__,
    )
    parser.add_argument(
        "--config", metavar="FILE", help="training config YAML (e.g. configs/fashion_mnist.yaml)"
    )
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help="output directory (default: the resumed run, else runs/<config>-<time>)",
    )
    parser.add_argument(
        "--resume",
        metavar="CKPT|DIR|auto",
        help="checkpoint file or run directory to continue exactly; 'auto' = the run dir's checkpoint if any",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop (with a checkpoint) after this many steps of this invocation",
    )
    parser.add_argument(
        "--time-limit-min",
        type=float,
        metavar="MIN",
        help="checkpoint and stop cleanly after this many minutes",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE:NAME",
        help="train one fixed network of a baselines file instead of the supernet, with the same "
        "recipe (e.g. configs/baselines/fashion_mnist.yaml:cnn-6.6m)",
    )
    parser.add_argument("--epochs", type=int, metavar="N", help="shortcut for train.epochs=N")
    parser.add_argument("--seed", type=int, metavar="N", help="shortcut for seed=N")
    parser.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    add_overrides(parser, "config overrides, e.g. optim.lr=0.2")


def run(args: argparse.Namespace) -> int:
    from ..distributed import cleanup_distributed
    from ..engine.trainer import TrainingDiverged, train

    if args.max_steps is not None and args.max_steps < 1:
        raise UserError("--max-steps must be >= 1")
    if args.time_limit_min is not None and args.time_limit_min <= 0:
        raise UserError("--time-limit-min must be > 0")
    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    baseline = load_baseline(args.baseline) if args.baseline else None
    plan = plan_training_run(args.config, args.run_dir, args.resume, overrides, baseline)
    if plan.changed_keys:
        changed = ", ".join(plan.changed_keys)
        print(f"warning: resumed run's config differs from the checkpoint's in: {changed}", file=sys.stderr)

    setup_logging()
    try:
        result = train(
            plan.cfg,
            plan.run_dir,
            resume_state=plan.resume_state,
            max_steps=args.max_steps,
            time_limit_min=args.time_limit_min,
            progress=not args.no_progress,
        )
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup_distributed()
    if int(os.environ.get("RANK", "0")) == 0:  # one summary, from the main rank
        summary = {
            "status": result.status,
            "step": result.step,
            "epoch": result.epoch,
            "runDir": str(plan.run_dir),
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "validation": result.validation,
        }
        print(json.dumps(summary))
    return 0
