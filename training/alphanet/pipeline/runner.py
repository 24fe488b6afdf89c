"""The pipeline, stage by stage (see the package docstring); prints a line at the start and end of
every stage and always leaves ``<run_dir>/pipeline-report.{json,md}``.

Outcomes: ``published`` (every member, or the accepted ones unless ``publish.require_all``),
``refused`` (validation refused what would be published, or ``targets.enforce`` is set and a
target failed: nothing is published, the old zoo stays),
``incomplete`` (training stopped early; rerunning resumes it), ``failed`` (an error; the old zoo
stays), ``reload-failed`` (published, but the server did not take it: it keeps the old one).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..checkpoint import CHECKPOINT_DIR
from ..engine.subnet_eval import CalibrationSettings
from ..errors import UserError
from ..export.manifest import default_description, utc_now_iso, validate_manifest
from ..export.sources import OFFICIAL_SOURCE, model_device
from ..logging_utils import training_totals
from ..models import complexity
from ..paths import git_commit, repo_path
from .ablation import ablation_dir
from .add_cascades import pipeline_cascades
from .cascades import SplitInfo as CascadeSplit
from .config import PIPELINE
from .dataset_file import EvalTensors, write_dataset_file
from .family import select_family
from .members import (
    MemberResult,
    calibrate_members,
    evaluate_members,
    export_members,
    load_eval_tensors,
    manifest_labels,
)
from .baselines import read_baselines, report_recipe
from .model_card import card_files
from .publish import publish_zoo
from .reload import TOKEN_ENV, ReloadFailed, post_reload, read_pid, send_sighup
from .report import write_report
from .stages import StageLog, format_seconds
from .targets import missed, report_targets
from .supernet_source import SourceResult, TrainingIncomplete, load_pipeline_source
from .validation import host_description, judge, run_validator, validator_command

STAGES = 9
STAGING_DIR = "staging"
VALIDATION_DIR = "validation"


@dataclass
class PipelineOutcome:
    status: str
    report: dict[str, Any]
    report_path: Path


def _training_info(result: SourceResult) -> dict[str, Any]:
    """How the supernet was trained: the checkpoint's config and the run's metrics.jsonl totals."""
    if result.kind == "official" or result.checkpoint is None:
        return {}
    info: dict[str, Any] = {"config": result.source.cfg}
    checkpoint = result.checkpoint
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else checkpoint.parent
    info.update(training_totals(run_dir) or {})
    return info


def _model_record(result: MemberResult, full_split: bool, space_name: str) -> dict[str, Any]:
    member, validation = result.member, result.validation
    record: dict[str, Any] = {
        "name": member.name,
        "label": member.label,
        "origin": member.origin,
        "status": "accepted" if result.accepted else "refused",
        "reasons": result.reasons,
        "arch": {"space": space_name, **member.arch.to_dict()},
        "mflops": round(member.mflops, 4),
        "params": member.params,
        "calibration": result.calibration,
        "pytorch": dict(result.pytorch) if result.pytorch else None,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
    }
    if member.search:
        record["search"] = member.search
    if "ortTop1" in validation:
        record["ort"] = {
            "top1": validation["ortTop1"],
            "top5": validation.get("ortTop5"),
            "samples": validation["ortSamples"],
            "pytorchTop1SameSamples": result.pytorch_on_validation_set["top1"],
            "delta": validation["top1Delta"],
            "fullSplit": full_split,
        }
    for key in ("parityMaxAbsDiff", "latencyMs", "executionProvider", "warnings"):
        if key in validation:
            record[key] = validation[key]
    return record


def final_manifest(
    results: list[MemberResult],
    tensors: EvalTensors,
    cfg: dict[str, Any],
    staging: dict[str, Any],
    host: str,
    say,
) -> dict[str, Any]:
    """The staging manifest amended for publishing: accepted members only, with their final
    figures and latency, and the default model (validated)."""
    entries = []
    for result in results:
        if not result.accepted:
            continue
        entry = dict(result.entry)
        validation = result.validation
        evaluation = {"dataset": tensors.dataset, "split": tensors.split}
        if tensors.full_split and "ortTop1" in validation:
            # The whole split was re-measured in the serving runtime: publish that figure.
            entry["top1"] = validation["ortTop1"]
            if validation.get("ortTop5") is not None:
                entry["top5"] = validation["ortTop5"]
            entry["evaluation"] = {
                **evaluation,
                "samples": validation["ortSamples"],
                "runtime": "onnxruntime-node",
            }
        else:
            entry["top1"], entry["top5"] = result.pytorch["top1"], result.pytorch["top5"]
            entry["evaluation"] = {**evaluation, "samples": result.pytorch["samples"], "runtime": "pytorch"}
        latency = validation.get("latencyMs")
        if latency:
            entry["latencyMs"] = {"p50": latency["p50"], "p95": latency["p95"], "batchSize": 1, "host": host}
        entries.append(entry)
    manifest = {key: value for key, value in staging.items() if key not in ("models", "defaultModel")}
    default = cfg["zoo"]["default_model"]
    if default is not None:
        matches = [r for r in results if default in (r.member.label, r.member.name)]
        if not matches:
            raise UserError(f"zoo.default_model '{default}' is not a member of the family")
        if matches[0].accepted:
            manifest["defaultModel"] = matches[0].member.name
        else:
            say(f"zoo.default_model '{default}' was refused by validation: the manifest names no default")
    manifest["models"] = entries
    validate_manifest(manifest)
    return manifest


def run_pipeline(
    cfg: dict[str, Any],
    *,
    config_file: str,
    command: str,
    reload_pid: str | None = None,
    stream: TextIO | None = None,
) -> PipelineOutcome:
    run_dir = Path(cfg["run_dir"])
    zoo_dir = Path(cfg["publish"]["zoo_dir"])
    check_reload_settings(cfg, reload_pid)
    log = StageLog(STAGES, stream=stream)
    started = time.monotonic()
    report: dict[str, Any] = {
        "status": "running",
        "startedAt": utc_now_iso(),
        "configFile": repo_path(config_file),
        "command": command,
        "runDir": repo_path(run_dir),
        "zooDir": repo_path(zoo_dir),
        "zoo": {"name": cfg["zoo"]["name"], "description": cfg["zoo"]["description"]},
        "config": PIPELINE.with_repo_paths(cfg),
        "gitCommit": git_commit(),
        "stages": [],
        "models": [],
    }
    results: list[MemberResult] = []
    status = "failed"
    try:
        status = _run_stages(cfg, log, report, results, run_dir, zoo_dir, reload_pid)
    except TrainingIncomplete as exc:
        status, report["error"] = "incomplete", str(exc)
        raise
    except BaseException as exc:
        report["error"] = str(exc) or type(exc).__name__
        raise
    finally:
        report["status"] = status
        report["stages"] = log.to_list()
        report["finishedAt"] = utc_now_iso()
        report["seconds"] = round(time.monotonic() - started, 3)
        json_path, md_path = write_report(run_dir, report)
        log.say(f"report: {md_path} ({status}, {format_seconds(report['seconds'])})")
    return PipelineOutcome(status, report, json_path)


def _run_stages(cfg, log: StageLog, report, results, run_dir: Path, zoo_dir: Path, reload_pid) -> str:
    with log.stage("source", _source_title(cfg)) as rec:
        source_result = load_pipeline_source(cfg, log.say)
        rec.details.update(source_result.details)
        rec.details["summary"] = f"{source_result.kind}: {source_result.details.get('status')}"
    source = source_result.source
    space, num_classes = source.space, source.supernet.num_classes
    report["source"] = {
        "kind": source_result.kind,
        "checkpoint": repo_path(source_result.checkpoint) if source_result.checkpoint else OFFICIAL_SOURCE,
        "training": {
            **_training_info(source_result),
            **(
                {
                    "configFile": repo_path(cfg["source"]["train"]["config"]),
                    "overrides": cfg["source"]["train"]["overrides"],
                }
                if source_result.kind == "train"
                else {}
            ),
        },
    }
    report["space"] = {
        "name": space.name,
        "mflopsMin": complexity(space, space.min_arch(), num_classes).mflops,
        "mflopsMax": complexity(space, space.max_arch(), num_classes).mflops,
    }
    with log.stage("family", f"pick the family ({cfg['family']['mode']})") as rec:
        members, details = select_family(cfg, source_result, log.say)
        rec.details.update(details)
    report["family"] = {k: v for k, v in details.items() if k != "summary"}
    results.extend(MemberResult(m) for m in members)

    device = model_device(source.cfg)
    calibration = CalibrationSettings(**cfg["calibration"])
    with log.stage("calibrate", f"BN recalibration of {len(results)} members") as rec:
        rec.details.update(calibrate_members(source, results, calibration, device, log.say))
        rec.details["summary"] = f"{calibration.batches} x {calibration.batch_size} training images each"

    batch_size = cfg["evaluation"]["batch_size"]
    with log.stage("evaluate", "PyTorch top-1 on the evaluation split") as rec:
        tensors = load_eval_tensors(source.cfg, cfg["validation"]["max_samples"], batch_size, num_classes)
        rec.details.update(evaluate_members(source, results, tensors, batch_size, device, log.say))
        rec.details["summary"] = ", ".join(f"{r.member.name} {r.pytorch['top1']:.4f}" for r in results)
    report["evaluation"] = rec.details.copy()

    zoo_source = {
        "space": space.name,
        "checkpoint": OFFICIAL_SOURCE
        if source_result.kind == "official"
        else repo_path(source_result.checkpoint),
        "pipelineConfig": report["configFile"],
    }
    if source_result.kind == "train":
        zoo_source["trainingConfig"] = repo_path(cfg["source"]["train"]["config"])
    if report["gitCommit"]:
        zoo_source["gitCommit"] = report["gitCommit"]
    description = cfg["zoo"]["description"] or default_description(
        space.name, None if source_result.kind == "official" else source.cfg.get("loss")
    )
    report["zoo"]["description"] = description
    staging = run_dir / STAGING_DIR
    with log.stage("export", f"ONNX export of {len(results)} members into {repo_path(staging)}") as rec:
        labels = manifest_labels(source, cfg["zoo"]["labels_file"], tensors)
        zoo_info = {"name": cfg["zoo"]["name"], "description": description, "source": zoo_source}
        opset = cfg["export"]["opset"]
        staged = export_members(source, results, staging, labels, tensors, opset, zoo_info, log.say)
        rec.details["summary"] = f"{len(results)} ONNX files, opset {cfg['export']['opset']}"

    with log.stage("validate", "onnxruntime-node: parity, top-1, latency on this host") as rec:
        validation_dir = run_dir / VALIDATION_DIR
        dataset = validation_dir / "eval.azdata"
        size = write_dataset_file(dataset, tensors, space.data)
        log.say(f"wrote {tensors.count} evaluation images to {dataset} ({size / 1e6:.1f} MB)")
        command = validator_command(cfg, staging, dataset, validation_dir / "zoo-validation.json")
        log.say("running " + " ".join(command))
        validator_report = run_validator(command, validation_dir / "zoo-validation.json", log.say)
        judge(results, validator_report, cfg)
        accepted = [r for r in results if r.accepted]
        rec.details["validatorReport"] = repo_path(validation_dir / "zoo-validation.json")
        rec.details["summary"] = f"{len(accepted)}/{len(results)} accepted"
        for result in results:
            if not result.accepted:
                log.say(f"REFUSED {result.member.name}: {'; '.join(result.reasons)}")
    provider = validator_report.get("executionProvider")
    host = host_description(provider, cfg["validation"]["intra_op_threads"])
    report["latencyHost"] = host
    report["models"] = [_model_record(r, tensors.full_split, space.name) for r in results]

    refused = [r for r in results if not r.accepted]
    if not accepted or (refused and cfg["publish"]["require_all"]):
        why = (
            "every member was refused" if not accepted else "publish.require_all is set and some were refused"
        )
        log.say(f"nothing published ({why}); {zoo_dir} is unchanged")
        report["refusal"] = f"validation: {why}"
        return "refused"
    report["baselines"] = read_baselines(cfg["baselines"]["dir"], report_recipe(report))
    report["targets"] = report_targets(report)
    failed = missed(report["targets"] or [])
    for check in failed:
        log.say(f"target {check['status']}: {check['target']} (measured: {check['measured']})")
    if failed and cfg["targets"]["enforce"]:
        report[
            "refusal"
        ] = f"targets.enforce is set and {len(failed)} of {len(report['targets'])} targets failed"
        log.say(f"nothing published ({report['refusal']}); {zoo_dir} is unchanged")
        return "refused"

    with log.stage("manifest", "final manifest and cascades (picked on held-out images)") as rec:
        manifest = final_manifest(results, tensors, cfg, staged, host, log.say)
        cascades, rec.details["cascades"] = pipeline_cascades(
            cfg,
            source.cfg,
            space.data,
            staging,
            manifest["models"],
            dataset,
            CascadeSplit(tensors.dataset, tensors.split, tensors.count),
            host,
            log.say,
        )
        if cascades:
            manifest["cascades"] = cascades
            validate_manifest(manifest)
        report["cascades"] = rec.details["cascades"]
        rec.details["summary"] = f"{len(manifest['models'])} models, {len(cascades)} cascades"

    with log.stage("publish", f"atomic publish into {repo_path(zoo_dir)}") as rec:
        side_files: dict[str, bytes | str] = {}
        if cfg["publish"]["model_card"]:
            report["chart"] = True
            report["finishedAt"] = utc_now_iso()
            side_files.update(card_files(report, space, manifest, ablation_dir(cfg), zoo_dir))
        published = publish_zoo(manifest, staging, zoo_dir, side_files=side_files)
        report["publish"] = published.to_dict()
        for record in report["models"]:
            if record["status"] == "accepted":
                record["status"] = "published"
        rec.details["summary"] = (
            f"{len(published.written)} files written, {len(published.reused)} reused, "
            f"{len(published.removed)} removed"
        )

    pid_spec = reload_pid or cfg["publish"]["reload_pid_file"]
    url = cfg["publish"]["reload_url"]
    with log.stage("reload", "tell the running server") as rec:
        outcomes = []
        try:
            if pid_spec:
                outcomes.append(send_sighup(read_pid(str(pid_spec))))
            if url:
                outcomes.append(post_reload(url, cfg["publish"]["reload_timeout_s"]))
        except ReloadFailed as exc:
            report["reload"] = {"ok": False, "error": str(exc)}
            rec.status = "failed"
            rec.details["summary"] = str(exc)
            return "reload-failed"
        if not outcomes:
            rec.status = "skipped"
            rec.details["summary"] = "no --reload-pid, publish.reload_pid_file or publish.reload_url"
        else:
            report["reload"] = {"ok": True, "results": outcomes}
            rec.details["summary"] = "; ".join(
                o["method"] + (f" to pid {o['pid']}" if "pid" in o else f" {o['url']}: HTTP {o['status']}")
                for o in outcomes
            )
    return "published"


def check_reload_settings(cfg: dict[str, Any], reload_pid: str | None) -> None:
    """Fail before hours of work, not after, when the reload target cannot work."""
    pid_spec = reload_pid or cfg["publish"]["reload_pid_file"]
    if pid_spec:
        read_pid(str(pid_spec))
    if cfg["publish"]["reload_url"] and not os.environ.get(TOKEN_ENV):
        raise UserError(f"publish.reload_url needs the admin token in the environment variable {TOKEN_ENV}")


def _source_title(cfg: dict[str, Any]) -> str:
    source = cfg["source"]
    if source["train"]["config"]:
        return f"train the supernet ({repo_path(source['train']['config'])}, resumable)"
    if source["checkpoint"]:
        return f"load the supernet checkpoint {repo_path(source['checkpoint'])}"
    return f"import the official AlphaNet checkpoint {repo_path(source['official'])}"


__all__ = ["PipelineOutcome", "run_pipeline", "final_manifest", "check_reload_settings"]
