"""``alphanet calibrate``: extract one sub-network, recalibrate its BN statistics, save it.

Examples::

    python3 -m alphanet calibrate --checkpoint runs/fmnist --arch min --out runs/fmnist/min.pt
    python3 -m alphanet calibrate --official-checkpoint alphanet_pretrained.pth.tar --arch a0 \\
        --out a0.pt data.root=/data/imagenet
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine.subnet_eval import calibrate_arch, calibration_images
from ..errors import UserError
from ..export.sources import save_static_checkpoint
from ..models import complexity
from . import _subnet_options as options
from ._command import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "calibrate",
        "extract a sub-network and recalibrate its BN statistics",
        "Extract one sub-network from a supernet, re-estimate its BatchNorm statistics on "
        "training images (reference semantics) and save it as a standalone calibrated checkpoint, "
        "usable by 'evaluate' and 'export' without the supernet.",
    )
    options.add_source_options(parser)
    parser.add_argument(
        "--arch",
        required=True,
        metavar="SPEC",
        help="min | max | a named arch (e.g. a0) | a JSON/YAML arch file",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="calibrated checkpoint to write"
    )
    options.add_calibration_options(parser)


@options.file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    source = options.load_source(args)
    if source.supernet is None:
        raise UserError(
            "--checkpoint is already a calibrated sub-network; calibrate needs a supernet checkpoint"
        )
    ((label, arch),) = options.resolve_archs(source.space, [args.arch])
    settings = options.calibration_settings(args, source)
    device = options.device_of(source)
    static, record = calibrate_arch(source, arch, calibration_images(source, settings, device), device)
    save_static_checkpoint(args.out, static, source.space, source.cfg, source.classes, record, source.origin)
    cx = complexity(source.space, arch, static.num_classes)
    summary = {
        "out": str(args.out),
        "arch": {"space": source.space.name, **arch.to_dict()},
        "mflops": round(cx.mflops, 4),
        "params": cx.params,
        "calibration": record,
    }
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0
