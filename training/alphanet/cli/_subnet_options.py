"""Options shared by the sub-network commands (calibrate, evaluate, export): where the weights
come from, training-config overrides, BN-calibration budget, arch selection."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Callable

import torch

from ..engine.subnet_eval import CalibrationSettings
from ..errors import UserError
from ..export.sources import SubnetSource, load_any_source, load_official_source, model_device
from ..space import ArchConfig, SearchSpace
from ._command import add_overrides


def add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("weights")
    which = group.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="supernet training checkpoint (file or run directory), or a calibrated sub-network "
        "checkpoint written by 'calibrate'",
    )
    which.add_argument(
        "--official-checkpoint",
        type=Path,
        metavar="PATH",
        help="the published AlphaNet supernet (alphanet_pretrained.pth.tar), imported on the fly",
    )
    group.add_argument(
        "--space", help="search space of --official-checkpoint (default: imagenet)", metavar="NAME"
    )
    group.add_argument(
        "--config",
        type=Path,
        metavar="YAML",
        help="training config providing the data settings for --official-checkpoint "
        "(default: training/configs/imagenet.yaml)",
    )
    add_overrides(
        parser,
        "training-config overrides applied to the checkpoint's config, e.g. data.root=/data/imagenet "
        "runtime.device=cpu",
    )


def add_calibration_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("BN recalibration (training images, training augmentation)")
    group.add_argument(
        "--calib-batches",
        type=int,
        metavar="N",
        help="batches to forward (default: 64 for the official weights, as the reference's evaluation; "
        "else the config's validation.calib_batches)",
    )
    group.add_argument(
        "--calib-batch-size",
        type=int,
        metavar="N",
        help="images per batch (default: 256 for the official weights; else validation.calib_batch_size)",
    )
    group.add_argument(
        "--calib-seed", type=int, default=5, metavar="N", help="shuffle seed (default: 5, as the reference)"
    )


def load_source(args: argparse.Namespace) -> SubnetSource:
    """The weights named on the command line, with the config overrides applied."""
    if args.checkpoint is not None:
        if args.space is not None or args.config is not None:
            raise UserError("--space and --config only apply with --official-checkpoint")
        source = load_any_source(args.checkpoint, args.overrides)
    else:
        source = load_official_source(
            args.official_checkpoint, args.space or "imagenet", args.config, args.overrides
        )
    threads = source.cfg["runtime"]["threads"]
    if threads:
        torch.set_num_threads(threads)
    return source


def device_of(source: SubnetSource) -> torch.device:
    return model_device(source.cfg)


# test_alphanet.py / eval_alphanet_models.yml: the budget behind the published A0-A6 accuracies.
REFERENCE_EVAL_CALIBRATION = CalibrationSettings(batches=64, batch_size=256, seed=5)


def calibration_settings(args: argparse.Namespace, source: SubnetSource) -> CalibrationSettings:
    """The command line's budget, else the reference evaluation budget for the official weights,
    else the training config's validation budget."""
    if source.official:
        batches, batch_size = REFERENCE_EVAL_CALIBRATION.batches, REFERENCE_EVAL_CALIBRATION.batch_size
    else:
        batches = source.cfg["validation"]["calib_batches"]
        batch_size = source.cfg["validation"]["calib_batch_size"]
    settings = CalibrationSettings(
        batches=batches if args.calib_batches is None else args.calib_batches,
        batch_size=batch_size if args.calib_batch_size is None else args.calib_batch_size,
        seed=args.calib_seed,
    )
    settings.validate()
    return settings


def resolve_archs(space: SearchSpace, specs: list[str] | None) -> list[tuple[str, ArchConfig]]:
    """(label, arch) for every ``--arch``: ``min``, ``max``, a named arch or a JSON/YAML file."""
    resolved = []
    for spec in specs or []:
        label = Path(spec).stem if spec.lower().endswith((".json", ".yaml", ".yml")) else spec
        resolved.append((label, space.resolve(spec)))
    return resolved


def file_errors_are_user_errors(
    run: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    """Report an unreadable/unwritable path (permissions, full disk, a directory where a file is
    expected) as one line instead of a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise UserError(f"{where}{exc.strerror or exc}") from None

    return wrapper
