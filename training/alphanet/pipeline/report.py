"""The pipeline report: ``<run_dir>/pipeline-report.json`` (everything, machine-readable) and
``pipeline-report.md`` (stage durations, each model's PyTorch vs onnxruntime-node top-1, parity max
difference, latency, the refused models with their reasons, the acceptance targets). Written even
when a stage fails."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .stages import format_seconds
from .targets import targets_section

REPORT_JSON = "pipeline-report.json"
REPORT_MD = "pipeline-report.md"


def _pct(value: float | None) -> str:
    return "--" if value is None else f"{value * 100:.2f}"


def report_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Pipeline report: {report['zoo']['name']}",
        "",
        f"- status: **{report['status']}**" + (f" -- {report['error']}" if report.get("error") else ""),
        f"- started {report['startedAt']}, finished {report.get('finishedAt', '--')}, "
        f"total {format_seconds(report.get('seconds', 0.0))}",
        f"- config: `{report['configFile']}`; run directory: `{report['runDir']}`; zoo: `{report['zooDir']}`",
        f"- command: `{report['command']}`",
        "",
        "## Stages",
        "",
        "| # | stage | status | duration | notes |",
        "|---:|---|---|---:|---|",
    ]
    for i, stage in enumerate(report["stages"], 1):
        details = stage.get("details", {})
        note = details.get("summary") or details.get("error") or ""
        lines.append(
            f"| {i} | {stage['name']} | {stage['status']} | {format_seconds(stage['seconds'])} | "
            f"{str(note).replace('|', '/')} |"
        )
    models = report.get("models", [])
    if models:
        lines += [
            "",
            "## Models",
            "",
            "| model | status | MFLOPs | params | PyTorch top-1 % | ORT top-1 % | delta (points) "
            "| parity max abs diff | latency p50 / p95 ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for model in models:
            ort = model.get("ort") or {}
            delta = ort.get("delta")
            parity = model.get("parityMaxAbsDiff")
            latency = model.get("latencyMs")
            delta_text = "--" if delta is None else f"{delta * 100:+.2f}"
            parity_text = "--" if parity is None else f"{parity:.2e}"
            latency_text = "--" if not latency else f"{latency['p50']:.3f} / {latency['p95']:.3f}"
            pytorch_top1 = (model.get("pytorch") or {}).get("top1")
            lines.append(
                f"| `{model['name']}` | {model['status']} | {model['mflops']:.2f} | {model['params']:,} | "
                f"{_pct(pytorch_top1)} | {_pct(ort.get('top1'))} | {delta_text} | {parity_text} | "
                f"{latency_text} |"
            )
        refused = [m for m in models if m["status"] == "refused"]
        if refused:
            lines += ["", "## Refused (not published)", ""]
            lines += [f"- `{m['name']}`: {'; '.join(m['reasons'])}" for m in refused]
    if report.get("targets"):
        lines += ["", "## Targets", "", targets_section(report["targets"], report["evaluation"]["split"])]
    if report.get("refusal"):
        lines += ["", f"Nothing was published: {report['refusal']}."]
    if report.get("publish"):
        publish = report["publish"]
        lines += [
            "",
            "## Publish",
            "",
            f"- published {', '.join(publish['models'])} into `{publish['zooDir']}`",
            f"- files written: {len(publish['written'])}, reused: {len(publish['reused'])}, "
            f"garbage-collected: {len(publish['removed'])}, previous generation kept: "
            f"{len(publish['keptPrevious'])}",
        ]
    if report.get("reload"):
        lines += ["", "## Reload", "", f"- {json.dumps(report['reload'])}"]
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = run_dir / REPORT_JSON, run_dir / REPORT_MD
    for path, text in zip(paths, (json.dumps(report, indent=2) + "\n", report_markdown(report))):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return paths
