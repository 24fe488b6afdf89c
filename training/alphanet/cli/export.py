"""``alphanet export``: calibrated sub-networks -> ONNX + reference pairs + zoo manifest.

Examples::

    python3 -m alphanet export --checkpoint runs/fmnist --arch min --arch max --out-dir zoo/
    python3 -m alphanet export --checkpoint runs/fmnist --search-results search.json --out-dir zoo/
    python3 -m alphanet export --official-checkpoint alphanet_pretrained.pth.tar --all-named \\
        --labels imagenet_labels.txt --out-dir zoo/ data.root=/data/imagenet
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine.search_run import read_search_results, search_picks
from ..errors import UserError
from ..export.onnx import DEFAULT_OPSET, MIN_OPSET
from ..export.subnet_zoo import ZooSettings, export_subnets
from ..space import ArchConfig, SearchSpace
from . import _subnet_options as options
from ._command import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "export",
        "export calibrated sub-networks to ONNX and a zoo manifest",
        "For every selected sub-network: recalibrate BN (unless the checkpoint is already a "
        "calibrated sub-network), evaluate top-1/top-5 on the evaluation split, export ONNX (BN folded, "
        "dynamic batch, input 'input', output 'logits'), write a reference input/output pair, and merge "
        "its entry into OUT_DIR/manifest.json (docs/zoo-contract.md).",
    )
    options.add_source_options(parser)
    select = parser.add_argument_group("which sub-networks")
    select.add_argument(
        "--arch", action="append", metavar="SPEC", help="min | max | named arch | arch file; repeatable"
    )
    select.add_argument(
        "--all-named", action="store_true", help="every named arch of the space (e.g. a0 … a6)"
    )
    select.add_argument("--search-results", type=Path, metavar="JSON", help="export a search's target picks")
    select.add_argument(
        "--pareto", action="store_true", help="with --search-results: export the whole Pareto front"
    )
    zoo = parser.add_argument_group("zoo")
    zoo.add_argument(
        "--out-dir", type=Path, required=True, metavar="DIR", help="zoo directory (created if needed)"
    )
    zoo.add_argument("--name-prefix", metavar="TEXT", help="model name prefix (default: '<space>-')")
    zoo.add_argument("--zoo-name", metavar="NAME", help="zoo name (default: 'alphanet-<space>')")
    zoo.add_argument("--description", metavar="TEXT", help="zoo description")
    zoo.add_argument("--default-model", metavar="NAME", help="the manifest's defaultModel")
    zoo.add_argument("--labels", type=Path, metavar="FILE", help="label names (one per line or a JSON list)")
    zoo.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, metavar="N", help=f"ONNX opset (>= {MIN_OPSET})"
    )
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--max-batches", type=int, metavar="N", help="evaluate only the first N batches")
    evaluation.add_argument("--eval-batch-size", type=int, metavar="N", help="default: data.eval_batch_size")
    options.add_calibration_options(parser)


def _search_picks(path: Path, space: SearchSpace, pareto: bool) -> list[tuple[str, ArchConfig]]:
    picks = search_picks(read_search_results(path), space, "pareto" if pareto else "targets", str(path))
    if not picks:
        raise UserError(f"{path} has no {'Pareto front' if pareto else 'target picks'} to export")
    return [(p.label, p.arch) for p in picks]


def _selection(args: argparse.Namespace, source) -> list[tuple[str, ArchConfig | None]]:
    space = source.space
    selected = options.resolve_archs(space, args.arch)
    if args.all_named:
        if not space.archs:
            raise UserError(f"space '{space.name}' has no named archs")
        selected += [(name, arch) for name, arch in space.archs.items()]
    if args.search_results is not None:
        selected += _search_picks(args.search_results, space, args.pareto)
    elif args.pareto:
        raise UserError("--pareto needs --search-results")
    if source.static is not None:
        if selected:
            raise UserError(
                "a calibrated sub-network checkpoint exports itself; drop --arch/--all-named/--search-results"
            )
        return [(Path(source.origin).stem, None)]
    if not selected:
        raise UserError("choose sub-networks with --arch, --all-named or --search-results")
    return selected


@options.file_errors_are_user_errors
def run(args: argparse.Namespace) -> int:
    source = options.load_source(args)
    settings = ZooSettings(
        out_dir=args.out_dir,
        name_prefix=args.name_prefix,
        zoo_name=args.zoo_name,
        description=args.description,
        default_model=args.default_model,
        labels_file=args.labels,
        opset=args.opset,
        eval_batch_size=args.eval_batch_size,
        max_batches=args.max_batches,
    )

    def report(entry: dict, accuracy: dict) -> None:
        print(
            f"{entry['name']}: {entry['mflops']:.2f} MFLOPs, {entry['params']} params, top-1 "
            f"{accuracy['top1']:.4f} ({accuracy['samples']} {accuracy['split']} images) -> {entry['file']}",
            file=sys.stderr,
        )

    calibration = options.calibration_settings(args, source)
    manifest = export_subnets(
        source, _selection(args, source), calibration, options.device_of(source), settings, report
    )
    models = [m["name"] for m in manifest["models"]]
    print(json.dumps({"manifest": str(args.out_dir / "manifest.json"), "models": models}))
    return 0
