"""``alphanet pipeline``: train (or load / import) a supernet, pick a family, recalibrate, export,
validate in onnxruntime-node, publish atomically into the zoo directory, reload the server.

Examples::

    npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml
    npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml --reload-pid server.pid
    python3 -m alphanet pipeline --config configs/pipeline/fashion_mnist.yaml \\
        --checkpoint runs/fmnist family.search.targets_mflops=[3,6,12]
    npm run pipeline -- --config training/configs/pipeline/fashion_mnist.yaml --refresh-card

Exit status: 0 published; 1 nothing published (every member refused, require_all, or a target
failed under targets.enforce) or the
server refused the reload; 2 usage / configuration error; 3 training stopped early (rerunning the
same command resumes it). The report is ``<run_dir>/pipeline-report.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..paths import repo_path
from ..pipeline.config import PIPELINE, load_pipeline_config
from ..pipeline.supernet_source import TrainingIncomplete
from ..pipeline.targets import missed
from ._command import add_command, add_overrides

EXIT_NOT_PUBLISHED = 1
EXIT_INCOMPLETE = 3


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "pipeline",
        "train/load a supernet, export a validated model family and publish it as a zoo",
        "The training-then-publish pipeline driven by one config file "
        "(training/configs/pipeline/*.yaml). Progress lines on stderr, a JSON summary on stdout.",
        __doc__,
    )
    parser.add_argument("--config", type=Path, required=True, help="pipeline config YAML")
    parser.add_argument("--run-dir", type=Path, help="override run_dir (checkpoints, staging, report)")
    parser.add_argument("--zoo-dir", type=Path, help="override publish.zoo_dir (default: models/)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", type=Path, help="use this supernet checkpoint instead of training")
    which.add_argument("--official", type=Path, help="import this official AlphaNet checkpoint instead")
    parser.add_argument(
        "--reload-pid", metavar="PID|PIDFILE", help="send SIGHUP to this server process after publishing"
    )
    parser.add_argument("--reload-url", help="POST here after publishing (token from $ADMIN_TOKEN)")
    parser.add_argument(
        "--refresh-card",
        action="store_true",
        help="only bring the published zoo's model card, chart and baselines.json up to date with the "
        "baseline runs (baselines.dir) and ablation results as they are now; nothing is trained, "
        "exported or republished",
    )
    add_overrides(parser, "pipeline-config overrides, e.g. zoo.default_model=a3")


def reproduce_command(args: argparse.Namespace) -> str:
    """The npm command that reruns this pipeline (paths relative to the repository root)."""
    argv = ["npm", "run", "pipeline", "--", "--config", repo_path(args.config.resolve())]
    for flag in ("run_dir", "zoo_dir", "checkpoint", "official"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", repo_path(Path(value).resolve())]
    return shlex.join(argv + [PIPELINE.shown_override(text) for text in args.overrides])


def run(args: argparse.Namespace) -> int:
    from ..pipeline.runner import run_pipeline

    # Flags are relative to the working directory (config values to the repository root).
    values: dict = {}
    if args.run_dir is not None:
        values["run_dir"] = str(args.run_dir.resolve())
    if args.zoo_dir is not None:
        values["publish.zoo_dir"] = str(args.zoo_dir.resolve())
    for flag, key in ((args.checkpoint, "source.checkpoint"), (args.official, "source.official")):
        if flag is not None:
            values.update({"source.train.config": None, "source.checkpoint": None, "source.official": None})
            values[key] = str(flag.resolve())
    if args.reload_url is not None:
        values["publish.reload_url"] = args.reload_url
    cfg = load_pipeline_config(args.config, args.overrides, values)
    if args.refresh_card:
        return refresh_card(cfg)
    try:
        outcome = run_pipeline(
            cfg, config_file=str(args.config), command=reproduce_command(args), reload_pid=args.reload_pid
        )
    except TrainingIncomplete as exc:
        print(f"training incomplete: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    models = outcome.report.get("models", [])
    summary = {
        "status": outcome.status,
        "zooDir": cfg["publish"]["zoo_dir"],
        "published": [m["name"] for m in models if m["status"] == "published"],
        "refused": {m["name"]: m["reasons"] for m in models if m["status"] == "refused"},
        "failedTargets": [c["target"] for c in missed(outcome.report.get("targets") or [])],
        "report": str(outcome.report_path),
    }
    print(json.dumps(summary))
    if outcome.status == "published":
        return 0
    message = {
        "refused": f"nothing was published: {outcome.report.get('refusal', 'refused')} (see the report)",
        "reload-failed": f"published, but the reload failed: {outcome.report.get('reload', {}).get('error')}",
    }[outcome.status]
    print(f"error: {message}", file=sys.stderr)
    return EXIT_NOT_PUBLISHED


def refresh_card(cfg: dict) -> int:
    from ..pipeline.ablation import ablation_dir
    from ..pipeline.model_card import refresh_model_card

    zoo_dir, run_dir = Path(cfg["publish"]["zoo_dir"]), Path(cfg["run_dir"])
    baselines = cfg["baselines"]["dir"]
    card = refresh_model_card(run_dir, zoo_dir, ablation_dir(cfg), Path(baselines) if baselines else None)
    if card is None:
        print(
            f"error: {repo_path(zoo_dir)} is not the zoo published by the run in {repo_path(run_dir)} "
            "(no report there, the report is not a published one with a model card, or the zoo has "
            "been republished since): nothing refreshed",
            file=sys.stderr,
        )
        return EXIT_NOT_PUBLISHED
    print(json.dumps({"status": "refreshed", "modelCard": repo_path(card)}))
    return 0
