"""Acceptance targets of a published family (the pipeline config's ``targets``), checked on the
evaluation split: the largest and the cheapest member's top-1, how many members and how wide a
span of MFLOPs, the plain-CNN bar and monotonicity. Each check says met or missed and by how much;
the model card and the report carry them, and ``targets.enforce`` refuses a publish that misses one.
"""

from __future__ import annotations

from typing import Any

from .baselines import bar_gaps, comparable, members_below
from .family import MONOTONE_TOLERANCE

MET, MISSED, UNCHECKED = "met", "missed", "unchecked"
# The config keys that each add a check (``enforce`` only acts on them).
TARGET_KEYS = ("largest_top1", "cheapest_top1", "min_members", "min_mflops_span", "plain_cnn_bar", "monotone")


def published_top1(model: dict[str, Any]) -> float:
    """A report record's published top-1 on the evaluation split: onnxruntime-node's when it
    re-measured the whole split, else PyTorch's (always the whole split)."""
    ort = model.get("ort") or {}
    return ort["top1"] if ort.get("fullSplit") and ort.get("top1") is not None else model["pytorch"]["top1"]


def published_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's records of the members that were (or are being) published."""
    return [m for m in report["models"] if m["status"] != "refused"]


def report_targets(report: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``check_targets`` for a pipeline report (its config's targets, published members, baselines
    and evaluation split); None when the config sets no target."""
    targets = (report.get("config") or {}).get("targets")
    if not targets or all(targets.get(key) in (None, False) for key in TARGET_KEYS):
        return None
    return check_targets(
        targets, published_records(report), report.get("baselines") or [], report["evaluation"]
    )


def monotone_violations(models: list[dict[str, Any]]) -> list[tuple[dict, dict, float]]:
    """(member, best cheaper member, points below it) wherever a member is more than
    MONOTONE_TOLERANCE below a cheaper one on the evaluation split, by increasing MFLOPs."""
    ordered = sorted(models, key=lambda m: m["mflops"])
    found = []
    for model in ordered:
        best = max((m for m in ordered if m["mflops"] < model["mflops"]), key=published_top1, default=None)
        if best is not None and published_top1(model) < published_top1(best) - MONOTONE_TOLERANCE:
            found.append((model, best, published_top1(best) - published_top1(model)))
    return found


def _check(target: str, measured: str, met: bool | None, shortfall: str | None = None) -> dict[str, Any]:
    status = UNCHECKED if met is None else MET if met else MISSED
    return {"target": target, "measured": measured, "status": status, "shortfall": None if met else shortfall}


def _top1_check(which: str, model: dict[str, Any], minimum: float) -> dict[str, Any]:
    top1 = published_top1(model)
    return _check(
        f"{which} member ≥ {minimum * 100:.2f} %",
        f"`{model['name']}` ({model['mflops']:.2f} MFLOPs) {top1 * 100:.2f} %",
        top1 >= minimum,
        f"{(minimum - top1) * 100:.2f} points",
    )


def check_targets(
    targets: dict[str, Any],
    models: list[dict[str, Any]],
    baselines: list[dict[str, Any]],
    evaluation: dict[str, Any],
) -> list[dict[str, Any]]:
    """One record per configured target ({target, measured, status, shortfall}) for the published
    ``models`` (report records) on ``evaluation``'s split; ``baselines``: pipeline.baselines records
    (the plain CNNs among those measured on the same split are the bar)."""
    ordered = sorted(models, key=lambda m: m["mflops"])
    checks = []
    if not ordered:
        return [_check("a published member", "none", False, "every member")]
    cheapest, largest = ordered[0], ordered[-1]
    if targets["largest_top1"] is not None:
        checks.append(_top1_check("largest", largest, targets["largest_top1"]))
    if targets["cheapest_top1"] is not None:
        checks.append(_top1_check("cheapest", cheapest, targets["cheapest_top1"]))
    if targets["min_members"] is not None:
        count, wanted = len(ordered), targets["min_members"]
        checks.append(_check(f"≥ {wanted} members", f"{count}", count >= wanted, f"{wanted - count} members"))
    if targets["min_mflops_span"] is not None:
        span, wanted = largest["mflops"] / cheapest["mflops"], targets["min_mflops_span"]
        checks.append(
            _check(
                f"MFLOPs spanning ≥ {wanted:g}×",
                f"{span:.1f}× ({cheapest['mflops']:.2f}–{largest['mflops']:.2f} MFLOPs)",
                span >= wanted,
                f"{wanted - span:.1f}× ({span:.1f}× of {wanted:g}×)",
            )
        )
    if targets["plain_cnn_bar"]:
        checks.append(_bar_check(ordered, comparable(baselines, evaluation)))
    if targets["monotone"]:
        below = monotone_violations(ordered)
        worst = max(below, key=lambda v: v[2], default=None)
        checks.append(
            _check(
                f"no member more than {MONOTONE_TOLERANCE * 100:.1f} points below a cheaper one",
                "none is"
                if worst is None
                else f"{len(below)} of {len(ordered)} members are; most: `{worst[0]['name']}`, "
                f"{worst[2] * 100:.2f} points below `{worst[1]['name']}`",
                worst is None,
                None if worst is None else f"{(worst[2] - MONOTONE_TOLERANCE) * 100:.2f} points",
            )
        )
    return checks


def _bar_check(ordered: list[dict[str, Any]], baselines: list[dict[str, Any]]) -> dict[str, Any]:
    target = "every member ≥ every plain-CNN baseline of equal or lower MFLOPs"
    if not any(b["kind"] == "plain_cnn" for b in baselines):
        return _check(target, "no finished plain-CNN baseline on this split", None)
    gaps = bar_gaps(ordered, baselines, published_top1)
    if not gaps:
        return _check(target, f"all {len(ordered)} are", True)
    gap, model, cnn = max(gaps, key=lambda g: g[0])
    below = members_below(gaps)
    return _check(
        target,
        f"{below} of {len(ordered)} members below one; most: `{model['name']}`, {gap * 100:.2f} points below "
        f"`{cnn['name']}`",
        False,
        f"{gap * 100:.2f} points",
    )


def missed(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checks that did not pass (missed, or could not be checked)."""
    return [c for c in checks if c["status"] != MET]


def targets_section(checks: list[dict[str, Any]] | None, split: str) -> str:
    """The card's acceptance-targets table and its one-line verdict."""
    if not checks:
        return "_No acceptance targets are set (`targets` of the pipeline config)._"
    lines = [
        f"Acceptance targets (`targets` of the pipeline config), on the {split} split; top-1 as "
        "published (onnxruntime-node where it re-measured the whole split):",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for check in checks:
        verdict = {MET: "met", UNCHECKED: "**not checked**"}.get(
            check["status"], f"**missed by {check['shortfall']}**"
        )
        lines.append(f"| {check['target']} | {check['measured']} | {verdict} |")
    failed = missed(checks)
    lines += ["", f"{len(checks) - len(failed)} of {len(checks)} targets met."]
    return "\n".join(lines)
