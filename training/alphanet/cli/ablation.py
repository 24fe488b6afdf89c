"""``alphanet ablation``: the distillation-loss ablation (alpha-divergence vs KL vs none).

Examples::

    npm run ablation -- --config training/configs/pipeline/fashion_mnist.yaml \\
        --arms alpha_divergence,kl,none --seeds 0,1 --epochs 10
    npm run ablation -- --config training/configs/pipeline/fashion_mnist.yaml --arms kl   # one arm
    npm run ablation -- --config training/configs/pipeline/fashion_mnist.yaml --no-train  # re-evaluate

Every (arm, seed) trains in ``<dir>/<arm>-seed<seed>`` with the pipeline's training config (only
``loss.distill`` and ``seed`` differ) and resumes there when rerun; results accumulate in
``<dir>/ablation.json`` and ``<dir>/ablation.md``. Exit status 3: a training stopped early
(time limit / signal); rerun the same command to resume it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ..loss import DISTILL_CHOICES
from ..pipeline.config import load_pipeline_config
from ._command import add_command, add_overrides

EXIT_INCOMPLETE = 3


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "ablation",
        "train and evaluate one supernet per distillation loss (ablation)",
        "Train the same supernet with loss.distill = each arm and each seed, then evaluate "
        "the smallest, a fixed middle, the largest sub-network and every member of the published family "
        "for every arm. Progress on stderr, a JSON summary on stdout.",
        __doc__,
    )
    parser.add_argument("--config", type=Path, required=True, help="pipeline config YAML (its source.train)")
    parser.add_argument(
        "--arms",
        help=f"comma-separated loss.distill values ({', '.join(DISTILL_CHOICES)}; default: ablation.arms)",
    )
    parser.add_argument("--seeds", help="comma-separated seeds (default: ablation.seeds)")
    parser.add_argument(
        "--epochs", type=int, help="train.epochs of every arm (default: the training config's)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="results directory (default: ablation.dir or <run_dir>/ablation, the one the model card "
        "shows; another directory leaves the card as is)",
    )
    parser.add_argument(
        "--no-train", action="store_true", help="only evaluate existing checkpoints (no training or resuming)"
    )
    add_overrides(parser, "pipeline-config overrides")


def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UserError(f"--{what} must list at least one value")
    if len(set(items)) != len(items):
        raise UserError(f"--{what} lists a value twice: {text}")
    return items


def run(args: argparse.Namespace) -> int:
    from ..pipeline.ablation import ablation_dir, run_ablation
    from ..pipeline.model_card import refresh_model_card
    from ..pipeline.supernet_source import TrainingIncomplete

    cfg = load_pipeline_config(args.config, args.overrides)
    arms = _split(args.arms, "arms") if args.arms else list(cfg["ablation"]["arms"])
    unknown = [a for a in arms if a not in DISTILL_CHOICES]
    if unknown:
        raise UserError(f"--arms: unknown {', '.join(unknown)} (choices: {', '.join(DISTILL_CHOICES)})")
    if args.seeds:
        try:
            seeds = [int(s) for s in _split(args.seeds, "seeds")]
        except ValueError:
            raise UserError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    else:
        seeds = list(cfg["ablation"]["seeds"])
    if args.epochs is not None and args.epochs < 1:
        raise UserError("--epochs must be >= 1")
    directory = ablation_dir(cfg, str(args.out_dir) if args.out_dir else None)
    try:
        data = run_ablation(cfg, arms, seeds, args.epochs, directory, train=not args.no_train)
    except TrainingIncomplete as exc:
        print(f"training incomplete: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    # The published zoo's model card shows the configured ablation (ablation.dir): bring it up to
    # date. An --out-dir elsewhere is an experiment apart (a pilot) and must not replace it.
    shown = ablation_dir(cfg).resolve()
    card = None
    if directory.resolve() == shown:
        card = refresh_model_card(Path(cfg["run_dir"]), Path(cfg["publish"]["zoo_dir"]), directory)
        if card is not None:
            print(f"[ablation] updated the ablation section of {card}", file=sys.stderr)
    else:
        print(
            f"[ablation] model card left as is: it shows the ablation in {shown} (ablation.dir), "
            f"not {directory}",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "results": str(directory / "ablation.json"),
                "table": str(directory / "ablation.md"),
                "modelCard": str(card) if card else None,
                "summary": data["summary"],
            }
        )
    )
    return 0
