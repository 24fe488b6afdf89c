"""The distillation-loss ablation: the same supernet training per arm (``loss.distill`` =
alpha_divergence | kl | none) and seed, everything else equal, then the same sub-networks
evaluated for every arm.

Each (arm, seed) trains in its own run directory ``<dir>/<arm>-seed<seed>`` and resumes there when
rerun, so arms can run one at a time (``--arms kl``), in the background, and be interrupted. After
training, every arm evaluates the same archs: the smallest, a fixed middle one (``ablation.middle``:
``mid`` = the median choice of every gene, or any arch spec), the largest, and every member of the
published family (read from the zoo's manifest). The archs are recorded in ``ablation.json``: a
later arm evaluates every recorded arch even if the published family has changed since, plus any
new member (earlier arms get it when rerun with ``--no-train``), so all arms share the same archs.
Each arch is BN-recalibrated (pipeline ``calibration`` settings) and evaluated on the whole
evaluation split; a rerun keeps an arm's recorded results when they are of its current checkpoint
and cover every arch.

``<dir>/ablation.json`` accumulates the results of every arm and seed (read-modify-write under a
lock, so arms may also run concurrently); ``<dir>/ablation.md`` is the table of mean +- sample
standard deviation over seeds.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..checkpoint import CHECKPOINT_DIR, LAST, load_checkpoint
from ..config import config_from_dict
from ..engine.subnet_eval import CalibrationSettings
from ..errors import UserError
from ..export.manifest import utc_now_iso
from ..logging_utils import training_totals
from ..paths import repo_path
from ..export.sources import load_supernet_source, model_device
from ..space import load_space
from .config import source_kind
from .ablation_archs import arch_records_from_json, family_archs, jsonable_archs, union_archs
from .family import Member
from .members import MemberResult, calibrate_members, evaluate_members, load_eval_tensors
from .stages import StageLog, format_seconds
from .supernet_source import train_supernet, training_config

RESULTS_FILE = "ablation.json"
TABLE_FILE = "ablation.md"
FORMAT_VERSION = 1


def ablation_dir(cfg: dict[str, Any], override: str | None = None) -> Path:
    if override:
        return Path(override).resolve()
    if cfg["ablation"]["dir"]:
        return Path(cfg["ablation"]["dir"])
    return Path(cfg["run_dir"]) / "ablation"


def arm_overrides(arm: str, seed: int, epochs: int | None) -> list[str]:
    overrides = [f"loss.distill={arm}", f"seed={seed}"]
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    return overrides


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".ablation.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_results(directory: Path) -> dict[str, Any] | None:
    path = directory / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc}); move it away to start the ablation over"
        ) from None
    if not isinstance(data, dict) or data.get("formatVersion") != FORMAT_VERSION:
        raise UserError(f"{path} is not an ablation results file of this version")
    return data


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """Per arm and arch: mean, sample std (n > 1), min, max and n over the seeds evaluated."""
    summary: dict[str, Any] = {}
    for arm, seeds in data.get("runs", {}).items():
        per_arch: dict[str, list[float]] = {}
        for run in seeds.values():
            for name, accuracy in run.get("results", {}).items():
                per_arch.setdefault(name, []).append(accuracy["top1"])
        summary[arm] = {}
        for name, values in per_arch.items():
            mean = sum(values) / len(values)
            std = (
                math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
                if len(values) > 1
                else None
            )
            summary[arm][name] = {
                "mean": mean,
                "std": std,
                "min": min(values),
                "max": max(values),
                "n": len(values),
            }
    return summary


def _cell(stats: dict[str, Any] | None, best: bool) -> str:
    if stats is None:
        return "--"
    text = f"{stats['mean'] * 100:.2f}"
    text += f" ± {stats['std'] * 100:.2f}" if stats["std"] is not None else ""
    text += f" (n={stats['n']})"
    return f"**{text}**" if best else text


def table_markdown(data: dict[str, Any]) -> str:
    """The results as a markdown table: archs x arms, top-1 % mean ± std over seeds (best in bold)."""
    summary = summarize(data)
    arms = [a for a in data.get("armsOrder", []) if a in summary] + sorted(
        a for a in summary if a not in data.get("armsOrder", [])
    )
    if not arms:
        return "_No arm has been evaluated yet._\n"
    lines = [
        "| sub-network | MFLOPs | " + " | ".join(f"`{a}` top-1 %" for a in arms) + " |",
        "|---|---:|" + "---:|" * len(arms),
    ]
    for record in data["archs"]:
        name = record["name"]
        cells = {arm: summary[arm].get(name) for arm in arms}
        means = [c["mean"] for c in cells.values() if c is not None]
        best = max(means) if len(means) > 1 else None
        label = f"{name} ({', '.join(record['roles'])})"
        row = [
            _cell(cells[a], best is not None and cells[a] is not None and cells[a]["mean"] == best)
            for a in arms
        ]
        lines.append(f"| {label} | {record['mflops']:.2f} | " + " | ".join(row) + " |")
    seeds = sorted({int(s) for runs in data.get("runs", {}).values() for s in runs})
    epochs = sorted({run.get("epochs") for runs in data.get("runs", {}).values() for run in runs.values()})
    evaluation = data.get("evaluation", {})
    note = (
        f"\nTop-1 on {evaluation.get('samples', '?')} {evaluation.get('split', '')} "
        f"images after BN recalibration; mean ± sample standard deviation over seeds {seeds}; "
        f"{', '.join(map(str, epochs))} training epochs; only `loss.distill` differs between arms"
    )
    # The settings every arm shares beyond the training config (e.g. a distillation schedule of a
    # pilot): the table must say what it measured.
    shared = data.get("trainingOverrides") or []
    note += f" (every arm: {', '.join(f'`{o}`' for o in shared)}).\n" if shared else ".\n"
    return "\n".join(lines) + "\n" + note


def run_ablation(
    cfg: dict[str, Any],
    arms: list[str],
    seeds: list[int],
    epochs: int | None,
    directory: Path,
    *,
    train: bool = True,
    stream=None,
) -> dict[str, Any]:
    """Train (resumably) and evaluate every requested (arm, seed); returns the merged results."""
    if source_kind(cfg) != "train":
        raise UserError("the ablation trains supernets: the pipeline config needs source.train.config")
    log = StageLog(total=len(arms) * len(seeds) * 2, prefix="ablation", stream=stream)
    base_cfg = training_config(cfg)
    space = load_space(base_cfg["space"])
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        existing = read_results(directory)
    known = arch_records_from_json(existing["archs"]) if existing is not None else []
    if known:
        log.say(
            f"evaluating the {len(known)} archs recorded in {directory / RESULTS_FILE} (and any new ones)"
        )
    settings = CalibrationSettings(**cfg["calibration"])
    for arm in arms:
        for seed in seeds:
            overrides = arm_overrides(arm, seed, epochs)
            train_cfg = training_config(cfg, overrides)
            run_dir = directory / f"{arm}-seed{seed}"
            with log.stage(
                f"train {arm} seed {seed}", f"loss.distill={arm}, seed={seed} -> {run_dir}"
            ) as rec:
                _check_same_run(run_dir, train_cfg)
                if train:
                    rec.details.update(
                        train_supernet(
                            train_cfg,
                            run_dir,
                            time_limit_min=cfg["source"]["train"]["time_limit_min"],
                            nproc_per_node=cfg["source"]["train"]["nproc_per_node"],
                            config_path=cfg["source"]["train"]["config"],
                            overrides=[*cfg["source"]["train"]["overrides"], *overrides],
                            say=log.say,
                        )
                    )
                elif not (run_dir / CHECKPOINT_DIR / LAST).is_file():
                    raise UserError(f"{run_dir} has no checkpoint (drop --no-train to train it)")
            with log.stage(
                f"evaluate {arm} seed {seed}", "BN recalibration + test top-1 of every arch"
            ) as rec:
                # The checkpoint is read once: its step decides whether the recorded results stand,
                # and only an arm evaluated (again) needs the supernet built from it.
                last = run_dir / CHECKPOINT_DIR / LAST
                state = load_checkpoint(last)
                if state.get("space") != space.name:
                    raise UserError(
                        f"{run_dir} holds a '{state.get('space')}' supernet, expected '{space.name}'"
                    )
                current, origin = family_archs(cfg, space, state["num_classes"], log.say)
                archs = union_archs(known, current)
                added = [r["name"] for r in archs if all(r["archConfig"] != k["archConfig"] for k in known)]
                if known and added:
                    log.say(
                        f"new archs {', '.join(added)} (the published family changed): earlier arms lack "
                        "them; rerun those arms with --no-train to fill the table"
                    )
                known = archs
                with _locked(directory):
                    data = read_results(directory)
                if _results_current(data, arm, seed, state["step"], archs):
                    # A rerun after an interruption (or on the next machine) costs minutes per arm.
                    rec.details["summary"] = f"evaluated already (step {state['step']}), kept"
                    continue
                source = load_supernet_source(last, cfg["data_overrides"], state=state)
                run = _evaluate_run(source, state, archs, settings, cfg, run_dir, log.say)
                data = _merge(directory, arm, seed, run, archs, origin, cfg, train_cfg)
                rec.details["summary"] = ", ".join(
                    f"{name} {acc['top1']:.4f}" for name, acc in run["results"].items()
                )
    (directory / TABLE_FILE).write_text(table_markdown(data))
    log.say(f"results: {directory / RESULTS_FILE}, table: {directory / TABLE_FILE}")
    return data


def _check_same_run(run_dir: Path, train_cfg: dict[str, Any]) -> None:
    """A resumed arm must be the same experiment (loss, seed, epochs) as the checkpoint holds."""
    last = run_dir / CHECKPOINT_DIR / LAST
    if not last.is_file():
        return
    # Resolved onto today's defaults: a checkpoint older than a key has the key's default.
    stored = config_from_dict(load_checkpoint(last)["config"])
    for key in (
        ("loss", "distill"),
        ("loss", "distill_start_epochs"),
        ("loss", "distill_ramp_epochs"),
        ("loss", "distill_weight"),
        ("seed",),
        ("train", "epochs"),
    ):
        ours, theirs = train_cfg, stored
        for part in key:
            ours, theirs = ours[part], theirs[part]
        if ours != theirs:
            raise UserError(
                f"{run_dir} was trained with {'.'.join(key)}={theirs}, this ablation asks for {ours}; "
                "use another --out-dir to keep experiments apart"
            )


def _results_current(data: dict[str, Any] | None, arm: str, seed: int, step: int, archs) -> bool:
    """Whether the arm's recorded evaluation is of the checkpoint at ``step`` and covers every
    arch (otherwise it is evaluated again)."""
    run = (data or {}).get("runs", {}).get(arm, {}).get(str(seed))
    if run is None or any(record["name"] not in run.get("results", {}) for record in archs):
        return False
    return run.get("step") == step


def _evaluate_run(source, state, archs, settings, cfg, run_dir: Path, say) -> dict[str, Any]:
    device = model_device(source.cfg)
    num_classes = source.supernet.num_classes
    members = [
        MemberResult(Member(r["name"], r["name"], r["archConfig"], r["mflops"], r["params"], "ablation"))
        for r in archs
    ]
    start = time.monotonic()
    calibrate_members(source, members, settings, device, say)
    tensors = load_eval_tensors(source.cfg, None, cfg["evaluation"]["batch_size"], num_classes)
    evaluate_members(source, members, tensors, cfg["evaluation"]["batch_size"], device, say)
    train_seconds = (training_totals(run_dir) or {}).get("seconds")
    return {
        "checkpoint": repo_path(run_dir / CHECKPOINT_DIR / LAST),
        "step": state["step"],
        "epochs": state["config"]["train"]["epochs"],
        "trainingSeconds": train_seconds,
        "evaluatedAt": utc_now_iso(),
        "evaluationSeconds": round(time.monotonic() - start, 2),
        "results": {m.member.name: dict(m.pytorch) for m in members},
        "evaluation": {"dataset": tensors.dataset, "split": tensors.split, "samples": tensors.count},
    }


def _merge(directory, arm, seed, run, archs, origin, cfg, train_cfg) -> dict[str, Any]:
    with _locked(directory):
        data = read_results(directory) or {
            "formatVersion": FORMAT_VERSION,
            "space": train_cfg["space"],
            "trainingConfig": cfg["source"]["train"]["config"]
            and repo_path(cfg["source"]["train"]["config"]),
            "trainingOverrides": list(cfg["source"]["train"]["overrides"]),
            "archsFrom": origin,
            "archs": jsonable_archs(archs),
            "armsOrder": list(cfg["ablation"]["arms"]),
            "calibration": dict(cfg["calibration"]),
            "runs": {},
        }
        stored = arch_records_from_json(data["archs"])
        data["archs"] = jsonable_archs(union_archs(stored, archs))
        if origin is not None:
            data["archsFrom"] = origin
        data["evaluation"] = run.pop("evaluation")
        data.setdefault("runs", {}).setdefault(arm, {})[str(seed)] = run
        data["summary"] = summarize(data)
        data["updatedAt"] = utc_now_iso()
        _write_atomically(directory / RESULTS_FILE, json.dumps(data, indent=2) + "\n")
    return data


def describe_run(data: dict[str, Any]) -> str:
    runs = data.get("runs", {})
    parts = []
    for arm, seeds in runs.items():
        for seed, run in seeds.items():
            seconds = run.get("trainingSeconds")
            parts.append(f"{arm}/seed {seed}: {format_seconds(seconds) if seconds else '?'} training")
    return "; ".join(parts)
