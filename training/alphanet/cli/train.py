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
import time
from pathlib import Path

import yaml

from ..checkpoint import CHECKPOINT_DIR, LAST, load_checkpoint
from ..config import apply_overrides, config_from_dict, load_config
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


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def _run_dir_of_checkpoint(path: Path) -> Path:
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent


def load_baseline(spec: str) -> dict:
    """``FILE:NAME`` -> that entry of the file's ``baselines`` mapping, with its name."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise UserError(f"--baseline must be FILE:NAME, got '{spec}'")
    try:
        entries = yaml.safe_load(Path(path).read_text())["baselines"]
    except FileNotFoundError:
        raise UserError(f"--baseline: no such file {path}") from None
    except (yaml.YAMLError, TypeError, KeyError) as exc:
        raise UserError(f"--baseline: {path} has no 'baselines' mapping ({exc})") from None
    if not isinstance(entries, dict) or name not in entries:
        known = ", ".join(entries) if isinstance(entries, dict) else "none"
        raise UserError(f"--baseline: {path} has no baseline '{name}' (known: {known})")
    return {"name": name, **entries[name]}


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

    resume = args.resume
    if resume == "auto":
        if not args.run_dir:
            raise UserError("--resume auto needs --run-dir")
        candidate = Path(args.run_dir) / CHECKPOINT_DIR / LAST
        resume = str(candidate) if candidate.is_file() else None
        if resume is None and not args.config:
            raise UserError(f"--resume auto: no checkpoint in {args.run_dir} and no --config to start from")

    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        stored = config_from_dict(state["config"])
        cfg = apply_overrides(load_config(args.config) if args.config else stored, overrides)
        if args.baseline:
            cfg["baseline"] = load_baseline(args.baseline)
        elif stored.get("baseline"):
            cfg["baseline"] = stored["baseline"]
        changed = _changed_keys(stored, cfg)
        if changed:
            changed_text = ", ".join(changed)
            print(
                f"warning: resumed run's config differs from the checkpoint's in: {changed_text}",
                file=sys.stderr,
            )
        run_dir = Path(args.run_dir) if args.run_dir else _run_dir_of_checkpoint(Path(resume))
    else:
        if not args.config:
            raise UserError("--config is required (or --resume a checkpoint / run directory)")
        cfg = load_config(args.config, overrides)
        if args.baseline:
            cfg["baseline"] = load_baseline(args.baseline)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{Path(args.config).stem}-{stamp}"
        if (run_dir / CHECKPOINT_DIR / LAST).exists():
            raise UserError(f"{run_dir} already holds a run; use --resume {run_dir} or another --run-dir")

    setup_logging()
    try:
        result = train(
            cfg,
            run_dir,
            resume_state=state,
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
        print(
            json.dumps(
                {
                    "status": result.status,
                    "step": result.step,
                    "epoch": result.epoch,
                    "runDir": str(run_dir),
                    "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                    "validation": result.validation,
                }
            )
        )
    return 0
