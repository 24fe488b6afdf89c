"""``alphanet import-official``: convert the published AlphaNet checkpoint into our format.

Example::

    python3 -m alphanet import-official alphanet_pretrained.pth.tar --out runs/official/last.pt \\
        data.root=/data/imagenet

The result is a supernet checkpoint like the ones training writes (no optimizer state), so every
other command takes it with ``--checkpoint``. (They also accept ``--official-checkpoint`` and
import on the fly.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoint import FORMAT_VERSION, save_checkpoint
from ..export.official_checkpoint import build_key_mapping
from ..export.sources import OFFICIAL_SOURCE, load_official_source
from ._subnet_options import file_errors_are_user_errors
from ._command import add_command, add_overrides


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "import-official",
        "convert the official AlphaNet supernet checkpoint into this project's format",
        "Load alphanet_pretrained.pth.tar (AttentiveNAS key layout, DDP 'module.' prefix) "
        "through an explicit key mapping with shape checks and save it as a supernet checkpoint. "
        "Its BN running statistics are not meaningful (the reference trains with BN momentum 0): "
        "every sub-network is recalibrated by calibrate / evaluate / export.",
    )
    parser.add_argument("checkpoint", type=Path, help="the official checkpoint file")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="supernet checkpoint to write"
    )
    parser.add_argument(
        "--space", default="imagenet", metavar="NAME", help="search space (default: imagenet)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="YAML",
        help="training config stored with it (default: configs/imagenet.yaml)",
    )
    add_overrides(parser, "training-config overrides, e.g. data.root=/data/imagenet")


@file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    source = load_official_source(args.checkpoint, args.space, args.config, args.overrides)
    supernet = source.supernet
    mapping = build_key_mapping(supernet)
    state = {
        "format_version": FORMAT_VERSION,
        "model": supernet.state_dict(),
        "optimizer": None,
        "scheduler": None,
        "step": 0,
        "epoch": 0,
        "epoch_step": 0,
        "rng": None,
        "config": source.cfg,
        "space": source.space.name,
        "num_classes": supernet.num_classes,
        "classes": None,
        "source": OFFICIAL_SOURCE,
    }
    save_checkpoint(args.out, state)
    summary = {
        "out": str(args.out),
        "space": source.space.name,
        "mappedTensors": len(mapping.mapped),
        "droppedReferenceTensors": len(mapping.dropped),
    }
    print(json.dumps(summary))
    return 0
