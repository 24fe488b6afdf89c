"""The model card's cascades section and the chart's cascade frontier (docs/zoo-contract.md, "Cascades")."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

SECTION_TITLE = "## Cascades"


def _single_best(models: Sequence[Mapping[str, Any]], budget: float) -> Mapping[str, Any] | None:
    fitting = [m for m in models if m["mflops"] <= budget + 1e-9]
    return max(fitting, key=lambda m: m["top1"], default=None)


def cascades_section(manifest: Mapping[str, Any], heldout_note: str | None = None) -> str:
    """Markdown: how cascades work here, the table, and the comparison with the largest member."""
    cascades = manifest.get("cascades") or []
    models = manifest["models"]
    if not cascades:
        return (
            f"{SECTION_TITLE}\n\nNo cascade beat the single members on the held-out split; none published.\n"
        )
    largest = max(models, key=lambda m: m["mflops"])
    heldout = cascades[0]["heldOut"]
    lines = [
        SECTION_TITLE,
        "",
        "A cascade runs its cheapest stage first; a stage answers when its top-1 softmax probability is at "
        "least its threshold, otherwise the next stage runs on the same input tensor (the last always "
        f"answers). Stages and thresholds were picked on {heldout['samples']} held-out images "
        f"({heldout['dataset']} {heldout['split']}); the evaluation split was measured afterwards only, in "
        "onnxruntime-node through the server's cascade code (`server/cascade/`). Expected MFLOPs: mean over "
        "the held-out images of the stages that ran; worst case: every stage. Latency: expected = each "
        "stage's batch-1 p50 weighted by the share of held-out images reaching it; worst = the sum of p50s.",
        "",
    ]
    if heldout_note:
        lines += [f"**Caveat:** {heldout_note}", ""]
    lines += [
        "| cascade | stages (thresholds) | top-1 % test | MFLOPs expected (test mean) / worst | "
        "latency ms expected / worst | best single member within the expected MFLOPs |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in cascades:
        stages = " → ".join(
            f"`{s}` ({t:.3f})" for s, t in zip(c["stages"], [*c["thresholds"], float("nan")])
        ).replace(" (nan)", "")
        latency = c.get("latencyMs")
        latency_text = f"{latency['expected']:.3f} / {latency['worst']:.3f}" if latency else "--"
        single = _single_best(models, c["expectedMflops"])
        single_text = f"`{single['name']}` {single['top1'] * 100:.2f} %" if single else "none fits"
        lines.append(
            f"| `{c['name']}` | {stages} | {c['top1'] * 100:.2f} | {c['expectedMflops']:.2f} "
            f"({c['evaluation']['meanMflops']:.2f}) / {c['worstMflops']:.2f} | {latency_text} "
            f"| {single_text} |"
        )
    near = [c for c in cascades if c["top1"] >= largest["top1"] - 0.001]
    lines.append("")
    if near:
        best = min(near, key=lambda c: c["expectedMflops"])
        lines.append(
            f"Against the largest member `{largest['name']}` ({largest['top1'] * 100:.2f} %, "
            f"{largest['mflops']:.2f} MFLOPs): `{best['name']}` reaches {best['top1'] * 100:.2f} % at "
            f"{best['expectedMflops'] / largest['mflops'] * 100:.0f} % of its MFLOPs (expected; "
            f"{best['evaluation']['meanMflops'] / largest['mflops'] * 100:.0f} % on the test images)."
        )
    else:
        best = max(cascades, key=lambda c: c["top1"])
        lines.append(
            f"No cascade is within 0.1 point of the largest member `{largest['name']}` "
            f"({largest['top1'] * 100:.2f} %) on the test split; the closest, `{best['name']}`, is "
            f"{(largest['top1'] - best['top1']) * 100:.2f} points below it at "
            f"{best['expectedMflops'] / largest['mflops'] * 100:.0f} % of its MFLOPs."
        )
    above = sum(
        1 for c in cascades if c["top1"] > (_single_best(models, c["expectedMflops"]) or {"top1": 0})["top1"]
    )
    lines.append(
        f"On the test split {above} of {len(cascades)} cascades are above the single-model frontier at their "
        "expected MFLOPs."
    )
    return "\n".join(lines) + "\n"


def heldout_note(manifest: Mapping[str, Any]) -> str | None:
    """The note on the held-out images the published cascades were picked on (None without cascades)."""
    cascades = manifest.get("cascades") or []
    return cascades[0]["heldOut"].get("note") if cascades else None


def replace_section(card: str, section: str, before: str = "## Reproduce") -> str:
    """``card`` with its cascades section replaced by ``section`` (inserted before ``before`` when absent)."""
    start = card.find(SECTION_TITLE + "\n")
    if start >= 0:
        end = card.find("\n## ", start + len(SECTION_TITLE))
        end = len(card) if end < 0 else end + 1
        return card[:start] + section + "\n" + card[end:]
    at = card.find(before)
    if at < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[:at] + section + "\n" + card[at:]
