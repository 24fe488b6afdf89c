"""Stage 1: where the supernet comes from.

* ``source.train``: train it with the sandwich-rule trainer into ``<run_dir>/supernet``. Rerunning
  the same command resumes that directory's last checkpoint (exactly, RNG states included) and a
  finished run is not trained again. ``nproc_per_node > 1`` launches the same training under
  torchrun (one process per GPU) as a child process.
* ``source.checkpoint``: an existing supernet checkpoint (file or run directory).
* ``source.official``: the published AlphaNet checkpoint, imported through the explicit key
  mapping (reference layout -> ours).

Whatever the origin, the result is a `SubnetSource` with ``data_overrides`` applied, ready for
BN recalibration and evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CHECKPOINT_DIR, LAST, load_checkpoint, resolve_checkpoint_path
from ..config import load_config
from ..errors import UserError
from ..export.sources import SubnetSource, load_official_source, load_supernet_source
from ..paths import REPO_ROOT, repo_path
from .config import source_kind

SUPERNET_DIR = "supernet"


class TrainingIncomplete(Exception):
    """Training stopped before its last epoch (time limit, signal); rerunning resumes it."""


TORCHRUN_LOGS = "torchrun-logs"  # per-rank stdout/stderr of a torchrun launch, inside the run directory


@dataclass
class SourceResult:
    source: SubnetSource
    kind: str  # train | checkpoint | official
    checkpoint: Path | None  # the supernet checkpoint file (None for the official one)
    details: dict[str, Any] = field(default_factory=dict)


def training_run_dir(cfg: dict[str, Any]) -> Path:
    return Path(cfg["run_dir"]) / SUPERNET_DIR


def training_config(cfg: dict[str, Any], extra_overrides: list[str] | None = None) -> dict[str, Any]:
    train = cfg["source"]["train"]
    return load_config(train["config"], [*train["overrides"], *(extra_overrides or [])])


def _checkpoint_progress(path: Path) -> dict[str, Any]:
    state = load_checkpoint(path)
    return {"epoch": state["epoch"], "step": state["step"], "epochs": state["config"]["train"]["epochs"]}


def train_supernet(
    train_cfg: dict[str, Any],
    run_dir: Path,
    *,
    time_limit_min: float | None,
    nproc_per_node: int,
    config_path: str,
    overrides: list[str],
    say,
) -> dict[str, Any]:
    """Train (or resume, or skip when finished) a supernet into ``run_dir``; returns details.

    Raises `TrainingIncomplete` when the trainer stopped before the configured last epoch.
    """
    last = run_dir / CHECKPOINT_DIR / LAST
    epochs = int(train_cfg["train"]["epochs"])
    state = None
    if last.is_file():
        state = load_checkpoint(last)
        if state["epoch"] >= epochs:
            say(f"supernet already trained: {last} is at epoch {state['epoch']}/{epochs}; not training again")
            return {
                "status": "already-trained",
                "epoch": state["epoch"],
                "step": state["step"],
                "resumed": False,
            }
        say(f"resuming {last} at epoch {state['epoch']}/{epochs}, step {state['step']}")
    else:
        say(f"training a new supernet into {run_dir} ({epochs} epochs)")
    resumed = state is not None
    if nproc_per_node > 1:
        status = _train_with_torchrun(
            run_dir, config_path, overrides, nproc_per_node, time_limit_min, resumed
        )
    else:
        from ..engine.trainer import TrainingDiverged, train
        from ..logging_utils import setup_logging

        setup_logging()
        try:
            result = train(train_cfg, run_dir, resume_state=state, time_limit_min=time_limit_min)
        except TrainingDiverged as exc:
            raise UserError(str(exc)) from None
        status = result.status
    progress = _checkpoint_progress(last)
    if status != "completed" or progress["epoch"] < epochs:
        raise TrainingIncomplete(
            f"training stopped ({status}) at epoch {progress['epoch']}/{epochs}, step {progress['step']}; "
            "rerun the same command to resume it"
        )
    return {"status": "trained", "resumed": resumed, **progress}


def _train_with_torchrun(
    run_dir: Path,
    config_path: str,
    overrides: list[str],
    nproc: int,
    time_limit_min: float | None,
    resumed: bool,
) -> str:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        # torch 1.13 on Python 3.11 cannot parse the default "--redirects 0" / "--tee 0" (IntFlag
        # iteration skips the zero member): redirect every rank's stdout into the run's log
        # directory and tee it back, which works there and on torch 2.x.
        "--redirects",
        "1",
        "--tee",
        "1",
        "--log_dir",
        str(run_dir / TORCHRUN_LOGS),
        "-m",
        "alphanet",
        "train",
        "--config",
        config_path,
        "--run-dir",
        str(run_dir),
        "--resume",
        "auto",
    ]
    if time_limit_min is not None:
        command += ["--time-limit-min", str(time_limit_min)]
    command += overrides
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT / "training"), os.environ.get("PYTHONPATH")])
        ),
    }
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        raise UserError(
            f"torchrun training failed with exit status {completed.returncode} ({' '.join(command)})"
        )
    summary = summary_line(completed.stdout)
    if summary is None:
        raise UserError("torchrun training printed no summary")
    return json.loads(summary)["status"]


def summary_line(stdout: str) -> str | None:
    """The trainer's last JSON summary in torchrun's output: rank 0's line, which teeing prefixes
    with ``[default0]:`` (a bare line when the trainer ran without torchrun)."""
    lines = []
    for line in stdout.splitlines():
        if line.startswith("[default0]:"):
            line = line.split(":", 1)[1]
        if line.startswith("{"):
            lines.append(line)
    return lines[-1] if lines else None


def load_pipeline_source(cfg: dict[str, Any], say) -> SourceResult:
    """Run stage 1 and return the loaded supernet source."""
    kind = source_kind(cfg)
    data_overrides = list(cfg["data_overrides"])
    source_cfg = cfg["source"]
    if kind == "train":
        train = source_cfg["train"]
        run_dir = training_run_dir(cfg)
        train_cfg = training_config(cfg)
        details = train_supernet(
            train_cfg,
            run_dir,
            time_limit_min=train["time_limit_min"],
            nproc_per_node=train["nproc_per_node"],
            config_path=train["config"],
            overrides=list(train["overrides"]),
            say=say,
        )
        checkpoint = run_dir / CHECKPOINT_DIR / LAST
        source = load_supernet_source(checkpoint, data_overrides)
        details["runDir"] = repo_path(run_dir)
    elif kind == "checkpoint":
        checkpoint = resolve_checkpoint_path(source_cfg["checkpoint"])
        source = load_supernet_source(checkpoint, data_overrides)
        details = {"status": "loaded"}
    else:
        official = Path(source_cfg["official"])
        config = Path(source_cfg["training_config"]) if source_cfg["training_config"] else None
        say(f"importing the official AlphaNet checkpoint {official} (space '{source_cfg['space']}')")
        source = load_official_source(official, source_cfg["space"], config, data_overrides)
        checkpoint = None
        details = {"status": "imported", "officialCheckpoint": repo_path(official)}
    threads = source.cfg["runtime"]["threads"]
    if threads:
        torch.set_num_threads(threads)
    details["space"] = source.space.name
    details["numClasses"] = source.supernet.num_classes
    if checkpoint is not None:
        details["checkpoint"] = repo_path(checkpoint)
    return SourceResult(source, kind, checkpoint, details)
