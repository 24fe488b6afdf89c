"""Manifest ``cascades[]`` entries: build them, and the invariants the JSON Schema cannot express.

The invariants are the server's (``server/zoo/cascade-invariants.ts``, docs/zoo-contract.md,
"Cascades"): names unique among models and cascades; stages name models of the zoo in strictly
increasing MFLOPs with one input contract and label set; one threshold per stage but the last;
``worstMflops`` is the stages' sum, ``expectedMflops`` lies between the first stage's MFLOPs and
that sum; exit shares sum to 1; worst-case latency is not below the expected one.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

MFLOPS_SLACK = 1e-3  # MFLOPs are written rounded to 4 decimals
FRACTION_SLACK = 1e-6
RULE = "top1Probability"


def cascade_name(prefix: str, stage_names: Sequence[str], thresholds: Sequence[float]) -> str:
    """``<prefix>cascade-<stage suffixes>-t<thresholds in per mille>``: distinct for distinct
    picks, readable, and within the 64-character model-name limit for 3 stages."""
    parts = [name[len(prefix) :] if name.startswith(prefix) else name for name in stage_names]
    marks = "-".join(f"{round(t * 1000):d}" for t in thresholds)
    return f"{prefix}cascade-{'-'.join(parts)}-t{marks}"[:64].rstrip("-.")


def _exit_problem(label: str, shares: Sequence[float], stages: int) -> str | None:
    if len(shares) != stages:
        return f"{label} has {len(shares)} values for {stages} stages"
    if abs(sum(shares) - 1.0) > FRACTION_SLACK:
        return f"{label} sums to {sum(shares)}, not 1"
    return None


def cascade_problems(manifest: Mapping[str, Any]) -> list[str]:
    models = {m["name"]: m for m in manifest["models"]}
    problems: list[str] = []
    seen: set[str] = set()
    for i, cascade in enumerate(manifest.get("cascades", [])):
        where = f"/cascades/{i}"
        name = cascade["name"]
        if name in models:
            problems.append(f"{where}/name: '{name}' is also a model's name")
        if name in seen:
            problems.append(f"{where}/name: duplicate cascade name '{name}'")
        seen.add(name)
        stage_names = cascade["stages"]
        missing = [s for s in stage_names if s not in models]
        problems += [f"{where}/stages: '{s}' names no model of the zoo" for s in missing]
        if len(cascade["thresholds"]) != len(stage_names) - 1:
            problems.append(
                f"{where}/thresholds: {len(stage_names)} stages need {len(stage_names) - 1} threshold(s), "
                f"got {len(cascade['thresholds'])}"
            )
        for label, shares in (
            ("heldOut/exitFractions", cascade["heldOut"]["exitFractions"]),
            ("evaluation/exitFractions", cascade["evaluation"]["exitFractions"]),
        ):
            problem = _exit_problem(label, shares, len(stage_names))
            if problem:
                problems.append(f"{where}/{problem}")
        latency = cascade.get("latencyMs")
        if latency and latency["worst"] < latency["expected"]:
            problems.append(
                f"{where}/latencyMs: worst {latency['worst']} is below expected {latency['expected']}"
            )
        if missing:
            continue
        stages = [models[s] for s in stage_names]
        for previous, stage in zip(stages, stages[1:]):
            if stage["mflops"] <= previous["mflops"]:
                problems.append(
                    f"{where}/stages: MFLOPs must increase strictly "
                    f"('{stage['name']}' after '{previous['name']}')"
                )
            if stage["input"] != stages[0]["input"] or stage["labels"] != stages[0]["labels"]:
                problems.append(
                    f"{where}/stages: '{stage['name']}' has another input contract or label set "
                    f"than '{stages[0]['name']}'"
                )
        worst = sum(s["mflops"] for s in stages)
        if abs(cascade["worstMflops"] - worst) > MFLOPS_SLACK:
            problems.append(
                f"{where}/worstMflops: {cascade['worstMflops']} is not the stages' sum {worst:.4f}"
            )
        for key, value in (
            ("expectedMflops", cascade["expectedMflops"]),
            ("evaluation/meanMflops", cascade["evaluation"]["meanMflops"]),
        ):
            if not stages[0]["mflops"] - MFLOPS_SLACK <= value <= worst + MFLOPS_SLACK:
                problems.append(
                    f"{where}/{key}: {value} is outside [{stages[0]['mflops']}, {worst:.4f}] "
                    "(first stage .. every stage)"
                )
    return problems
