"""The cascades stage: confidence cascades over the published members, picked on the held-out
split, measured on the evaluation (test) split through the server's cascade rule.

1. ``npm run zoo:cascades -- probabilities``: every member's softmax outputs on the held-out
   images, in onnxruntime-node (the serving runtime, so the picked thresholds mean what they will
   mean when served).
2. `pick_on_heldout` (Python, ``alphanet.cascade``): the Pareto front of 2-3 stage cascades over
   the held-out outputs, then the ones worth publishing (each beats every single member it can
   afford). It receives the held-out outputs and labels only: the test split cannot steer it.
3. ``npm run zoo:cascades -- evaluate``: the picked cascades on the evaluation split through
   ``server/cascade/`` (stage i+1 runs only on the images stage i was unsure of), plus batch-1
   latency of their stages when the caller has none.

Used by the pipeline at every publish (`run_cascades_stage`) and by ``alphanet cascades``, which
adds cascades to an existing zoo without retraining (``alphanet.pipeline.add_cascades``).
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..cascade import Cascade, CascadeResult, evaluate_cascade, pick_cascades, search_cascades
from ..errors import UserError
from ..export.cascade_manifest import RULE, cascade_name
from ..paths import REPO_ROOT
from .dataset_file import read_dataset_file

PROBABILITIES_MAGIC = b"AZPROB01"
CASCADES_COMMAND = ["npm", "run", "--silent", "zoo:cascades", "--"]
DEFAULT_COUNT = 4


@dataclass
class SplitInfo:
    dataset: str
    split: str
    samples: int
    note: str | None = None  # e.g. the supernet trained on these images

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset, "split": self.split, "samples": self.samples}
        if self.note:
            out["note"] = self.note
        return out


def read_probabilities(path: Path) -> tuple[list[str], np.ndarray]:
    """(model names, float64 [models, N, classes]) from an AZPROB01 file (server/cli/cascades.ts)."""
    raw = Path(path).read_bytes()
    if raw[:8] != PROBABILITIES_MAGIC:
        raise UserError(f"{path} is not a probabilities file (magic {PROBABILITIES_MAGIC!r})")
    (length,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + length].decode("utf-8"))
    shape = (len(header["models"]), header["count"], header["classes"])
    data = np.frombuffer(raw, dtype="<f8", count=int(np.prod(shape)), offset=12 + length).reshape(shape)
    return list(header["models"]), data


def _node(command: list[str], say) -> str:
    say("running " + " ".join(command))
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"cannot run '{command[0]}' (needed for zoo:cascades)") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise UserError(f"zoo:cascades failed (exit status {done.returncode}): {tail}")
    return done.stdout


def family_order(models: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Members by increasing MFLOPs; of members with equal MFLOPs only the first is a stage candidate."""
    ordered: list[Mapping[str, Any]] = []
    for model in sorted(models, key=lambda m: m["mflops"]):
        if not ordered or model["mflops"] > ordered[-1]["mflops"]:
            ordered.append(model)
    return ordered


def pick_on_heldout(
    names: Sequence[str],
    mflops: Sequence[float],
    probs: Sequence[np.ndarray],
    labels: np.ndarray,
    count: int = DEFAULT_COUNT,
) -> tuple[list[CascadeResult], list[float]]:
    """Cascades worth publishing, from held-out outputs only; also the members' held-out top-1."""
    if len(names) < 2:
        return [], []
    singles = [float((p.argmax(axis=1) == labels).mean()) for p in probs]
    front = search_cascades(list(probs), labels, list(mflops))
    return pick_cascades(front, singles, list(mflops), count=count), singles


def _reach(exit_fractions: Sequence[float]) -> list[float]:
    """Share of the images each stage sees (1 for the first)."""
    reach, left = [], 1.0
    for share in exit_fractions:
        reach.append(left)
        left -= share
    return reach


def build_cascades(
    *,
    node_zoo: Path,
    models: Sequence[Mapping[str, Any]],
    heldout_file: Path,
    heldout: SplitInfo,
    eval_file: Path,
    evaluation: SplitInfo,
    work_dir: Path,
    prefix: str,
    host: str,
    latency_p50: Mapping[str, float] | None = None,
    latency_runs: int = 100,
    count: int = DEFAULT_COUNT,
    threads: int | None = None,
    say=print,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Manifest ``cascades[]`` entries over ``models`` (whose files are in ``node_zoo``) and the
    stage's details. ``latency_p50``: batch-1 p50 per model measured on this host (else measured)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    threads_args = ["--intra-op-threads", str(threads)] if threads else []
    probs_file = work_dir / "heldout-probabilities.bin"
    _node(
        [
            *CASCADES_COMMAND,
            "probabilities",
            str(node_zoo),
            "--dataset",
            str(heldout_file),
            "--out",
            str(probs_file),
            "--models",
            ",".join(m["name"] for m in models),
        ]
        + threads_args,
        say,
    )
    names_all, data = read_probabilities(probs_file)
    _, _, heldout_labels = read_dataset_file(heldout_file)
    labels = np.asarray(heldout_labels, dtype=np.int64)
    family = family_order([m for m in models if m["name"] in names_all])
    names = [m["name"] for m in family]
    mflops = [float(m["mflops"]) for m in family]
    probs = [data[names_all.index(n)] for n in names]
    picked, singles = pick_on_heldout(names, mflops, probs, labels, count)
    details: dict[str, Any] = {
        "heldOut": heldout.to_dict(),
        "heldOutTop1": dict(zip(names, singles)),
        "picked": len(picked),
    }
    if not picked:
        details["summary"] = "no cascade beats the single members on the held-out split"
        return [], details
    # Thresholds as the manifest writes them (6 decimals), the held-out figures re-measured with
    # exactly those; names made unique (two picks may round to the same per-mille name).
    picked = [
        evaluate_cascade(
            probs, labels, mflops, Cascade(r.cascade.stages, tuple(round(t, 6) for t in r.cascade.thresholds))
        )
        for r in picked
    ]
    candidates: list[dict[str, Any]] = []
    for result in picked:
        stages = [names[i] for i in result.cascade.stages]
        base = name = cascade_name(prefix, stages, result.cascade.thresholds)
        taken = {c["name"] for c in candidates}
        suffix = 2
        while name in taken:
            name = f"{base[:60]}-{suffix}"
            suffix += 1
        candidates.append({"name": name, "stages": stages, "thresholds": list(result.cascade.thresholds)})
    candidates_file = work_dir / "cascade-candidates.json"
    candidates_file.write_text(json.dumps({"cascades": candidates}, indent=2) + "\n")
    measured_file = work_dir / "cascade-evaluation.json"
    runs = 0 if latency_p50 else latency_runs
    _node(
        [
            *CASCADES_COMMAND,
            "evaluate",
            str(node_zoo),
            "--dataset",
            str(eval_file),
            "--cascades",
            str(candidates_file),
            "--json",
            str(measured_file),
            "--runs",
            str(runs),
        ]
        + threads_args,
        say,
    )
    measured = json.loads(measured_file.read_text())
    p50 = dict(latency_p50 or {name: v["p50"] for name, v in measured.get("latencyMs", {}).items()})
    entries = []
    for candidate, result, test in zip(candidates, picked, measured["cascades"]):
        entry: dict[str, Any] = {
            "name": candidate["name"],
            "stages": candidate["stages"],
            "rule": RULE,
            "thresholds": candidate["thresholds"],
            "expectedMflops": round(result.expected_mflops, 4),
            "worstMflops": round(sum(mflops[i] for i in result.cascade.stages), 4),
            "heldOut": {**heldout.to_dict(), "top1": result.top1, "exitFractions": result.exit_fractions},
            "top1": test["top1"],
            "evaluation": {
                "dataset": evaluation.dataset,
                "split": evaluation.split,
                "samples": test["samples"],
                "runtime": "onnxruntime-node",
                "exitFractions": test["exitFractions"],
                "meanMflops": round(test["meanMflops"], 4),
            },
        }
        if all(s in p50 for s in candidate["stages"]):
            stage_ms = [float(p50[s]) for s in candidate["stages"]]
            reach = _reach(result.exit_fractions)
            entry["latencyMs"] = {
                "expected": round(sum(r * ms for r, ms in zip(reach, stage_ms)), 3),
                "worst": round(sum(stage_ms), 3),
                "batchSize": 1,
                "host": host,
            }
        entries.append(entry)
    details["summary"] = ", ".join(
        f"{e['name']} top-1 {e['top1']:.4f} at {e['expectedMflops']:.2f} MFLOPs" for e in entries
    )
    details["measuredLatencyMs"] = measured.get("latencyMs", {})
    return entries, details


__all__ = ["Cascade", "SplitInfo", "build_cascades", "pick_on_heldout", "read_probabilities", "family_order"]
