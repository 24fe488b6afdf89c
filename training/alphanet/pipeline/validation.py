"""Stages 6-7: validation of the staged zoo in the runtime that will serve it, and the latency
profile on this host -- both by ``npm run zoo:validate`` (server/cli/validate-zoo.ts).

For every model the validator loads the ONNX file in onnxruntime-node, compares its output on the
reference input with PyTorch's (``validation.reference_tolerance``, default 1e-4), re-measures
top-1 on the evaluation samples written by the pipeline (same tensors PyTorch saw) and times
batch-1 inference. A model is REFUSED -- not published -- when any of that fails or when its ORT
top-1 differs from the PyTorch figure by more than ``validation.top1_tolerance`` (0.001 = 0.1
point); the reasons go into the report. The pipeline re-checks the validator's numbers itself
rather than trusting only its verdict.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import REPO_ROOT
from .members import MemberResult

# Tolerances are inclusive ("within 0.1 point"); the CLI wants > 0 and compares with <=, and
# decimal fractions such as 0.8123 - 0.8113 land a hair above 0.001 in binary floating point.
_EPSILON = 1e-9
# Validator problem messages (zoo-validation.ts) about the two checks the pipeline re-does itself.
_COVERED_PREFIXES = ("reference output differs", "top-1 ")


def validator_command(cfg: dict[str, Any], staging: Path, dataset: Path, report: Path) -> list[str]:
    validation = cfg["validation"]
    command = [
        *validation["command"],
        str(staging),
        "--dataset",
        str(dataset),
        "--json",
        str(report),
        "--top1-tolerance",
        f"{validation['top1_tolerance'] + _EPSILON:.12g}",
        "--reference-tolerance",
        f"{validation['reference_tolerance'] + _EPSILON:.12g}",
        "--runs",
        str(validation["latency_runs"]),
        "--batch-size",
        str(validation["batch_size"]),
        "--execution-provider",
        validation["execution_provider"],
    ]
    if validation["intra_op_threads"] is not None:
        command += ["--intra-op-threads", str(validation["intra_op_threads"])]
    return command


def run_validator(command: list[str], report: Path, say) -> dict[str, Any]:
    """Run the validator; its JSON report (exit 0 = every model passed, 1 = some failed)."""
    report.unlink(missing_ok=True)
    try:
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"cannot run the validator: '{command[0]}' not found (validation.command)") from None
    if completed.returncode not in (0, 1) or not report.is_file():
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
        raise UserError(
            f"the validator failed (exit status {completed.returncode}): {' '.join(command)}\n{tail}"
        )
    if completed.returncode == 1:
        for line in completed.stderr.strip().splitlines()[-20:]:
            say(f"validator: {line}")
    try:
        return json.loads(report.read_text())
    except ValueError as exc:
        raise UserError(f"the validator wrote an unreadable report {report}: {exc}") from None


def host_description(provider: str | None, threads: int | None) -> str:
    """Where the latency was measured, for ``latencyMs.host``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    runtime = f"onnxruntime-node {provider or 'cpu'}"
    if threads:
        runtime += f", {threads} intra-op threads"
    return f"{socket.gethostname()} ({cpu}, {os.cpu_count()} CPUs; {runtime})"


def judge(results: list[MemberResult], report: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Fill ``result.validation`` and ``result.reasons`` of every member from the report."""
    tolerance_ref = cfg["validation"]["reference_tolerance"]
    tolerance_top1 = cfg["validation"]["top1_tolerance"]
    by_name = {m.get("name"): m for m in report.get("models", [])}
    zoo_problems = [str(p) for p in report.get("problems", [])]
    for result in results:
        model = by_name.get(result.member.name)
        if model is None:
            result.reasons = zoo_problems or ["the validator did not report on this model"]
            continue
        own: dict[str, str] = {}  # category -> the pipeline's own finding
        validation: dict[str, Any] = {
            "executionProvider": model.get("executionProvider"),
            "warnings": list(model.get("warnings", [])),
        }
        reference = model.get("reference")
        if reference is None:
            own["reference"] = "output parity was not checked (no reference result)"
        else:
            validation["parityMaxAbsDiff"] = reference["maxAbsDiff"]
            if not reference["maxAbsDiff"] <= tolerance_ref + _EPSILON:
                own[
                    "reference"
                ] = f"ONNX output differs from PyTorch by {reference['maxAbsDiff']:.3e} (> {tolerance_ref:g})"
        top1 = model.get("top1")
        if top1 is None:
            own["top-1"] = "top-1 was not re-measured in onnxruntime-node"
        elif "skipped" in top1:
            own["top-1"] = f"top-1 was not re-measured in onnxruntime-node: {top1['skipped']}"
        else:
            expected = result.pytorch_on_validation_set["top1"]
            delta = top1["measured"] - expected
            validation.update(
                ortTop1=top1["measured"],
                ortTop5=top1.get("top5"),
                ortSamples=top1["samples"],
                top1Delta=delta,
            )
            if abs(delta) > tolerance_top1 + _EPSILON:
                own["top-1"] = (
                    f"onnxruntime-node top-1 {top1['measured']:.4f} differs from PyTorch's {expected:.4f} by "
                    f"{abs(delta) * 100:.2f} points (> {tolerance_top1 * 100:g})"
                )
        if "latencyMs" in model:
            validation["latencyMs"] = model["latencyMs"]
        result.validation = validation
        # The validator's own wording for the two checks re-done above is replaced by the re-check's.
        theirs = [
            str(p)
            for p in model.get("problems", [])
            if not any(str(p).startswith(prefix) for prefix in _COVERED_PREFIXES)
        ]
        if not model.get("ok", False) and not theirs and not own:
            theirs = ["the validator refused it"]
        result.reasons = [*zoo_problems, *theirs, *own.values()]
