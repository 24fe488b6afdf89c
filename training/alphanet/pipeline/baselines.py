"""Baselines beside the family in the model card: networks trained alone, from scratch, by the same
training code, data, recipe and epochs (``alphanet train --baseline``), read back from the
``baseline.json`` each run writes, and the bar the family has to clear: every published member at
least as accurate as every plain-CNN baseline of equal or lower MFLOPs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..data.loader import holdout_settings
from ..engine.standalone import RESULT_FILE
from ..errors import UserError
from ..paths import repo_path
from ..settings import read_yaml

KIND_LABELS = {"plain_cnn": "plain CNN", "arch": "sub-network of the space, trained alone"}
# Published next to the manifest with the card, so a later chart of the same zoo (adding cascades)
# keeps the baselines without the training run's directories.
BASELINES_FILE = "baselines.json"


def read_baselines(directory: str | Path | None) -> list[dict[str, Any]]:
    """One record per run directory under ``directory`` (sorted by name): the finished ones from
    their ``baseline.json``, the unfinished ones (no ``baseline.json`` yet) marked incomplete so the
    card says what is missing instead of leaving it out."""
    if directory is None or not Path(directory).is_dir():
        return []
    records = []
    for run in sorted(p for p in Path(directory).iterdir() if p.is_dir()):
        result = run / RESULT_FILE
        if not result.is_file():
            if (run / "config.yaml").is_file():
                records.append({"name": run.name, "status": "incomplete", "runDir": repo_path(run)})
            continue
        data = json.loads(result.read_text())
        evaluation = data["evaluation"]
        records.append(
            {
                "name": data.get("name") or run.name,
                "status": "complete",
                "kind": data["network"]["kind"],
                "mflops": data["mflops"],
                "params": data["params"],
                "epochs": data["epochs"],
                "heldOutTop1": (data.get("heldOut") or {}).get("top1"),
                "heldOutSplit": _held_out_split(run),
                "top1": evaluation["top1"],
                "dataset": evaluation["dataset"],
                "split": evaluation["split"],
                "samples": evaluation["size"],
                "runDir": repo_path(run),
            }
        )
    return records


def _held_out_split(run: Path) -> dict[str, int] | None:
    """Which training images a baseline run held out (its config's data.holdout_size and
    holdout_seed), so its held-out top-1 is compared only with figures on the same images."""
    try:
        cfg = read_yaml(run / "config.yaml", "baseline config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("data"), dict):
            return None
        size, seed = holdout_settings(cfg)
    except (UserError, TypeError, ValueError):
        return None
    return {"size": size, "seed": seed} if size > 0 else None


def held_out_plain_cnns(baselines: list[dict[str, Any]], fitness: dict[str, Any]) -> list[dict[str, Any]]:
    """The finished plain-CNN baselines scored on exactly the images the search's fitness scores
    (``fitness``: the search results' description of it): same dataset, same held-out size and
    seed, the whole held-out split, images the supernet never trained on. Empty when the fitness
    is not such a split."""
    if not fitness.get("heldOutFromTraining") or fitness.get("maxEvalBatches") is not None:
        return []
    split = {"size": fitness.get("holdoutSize"), "seed": fitness.get("holdoutSeed")}
    return [
        b
        for b in baselines
        if b["status"] == "complete"
        and b["kind"] == "plain_cnn"
        and b.get("heldOutTop1") is not None
        and b.get("heldOutSplit") == split
        and b["dataset"] == fitness.get("dataset")
    ]


def published_baselines(zoo_dir: str | Path) -> list[dict[str, Any]]:
    """The baseline records published with the zoo in ``zoo_dir`` (none when there are none)."""
    try:
        return json.loads((Path(zoo_dir) / BASELINES_FILE).read_text())["baselines"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def comparable(baselines: list[dict[str, Any]], evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """The finished baselines measured on the family's own evaluation dataset and split."""
    return [
        b
        for b in baselines
        if b["status"] == "complete"
        and b["dataset"] == evaluation["dataset"]
        and b["split"] == evaluation["split"]
    ]


def plain_cnns_within(baselines: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    """The plain-CNN baselines that cost no more MFLOPs than ``model``."""
    return [b for b in baselines if b["kind"] == "plain_cnn" and b["mflops"] <= model["mflops"]]


def bar_gaps(
    models: list[dict[str, Any]], baselines: list[dict[str, Any]], top1: Callable[[dict], float]
) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """(points below, member, plain CNN) for every pair where a plain-CNN baseline that costs no
    more MFLOPs is more accurate than the member, by increasing member MFLOPs."""
    return [
        (cnn["top1"] - top1(model), model, cnn)
        for model in sorted(models, key=lambda m: m["mflops"])
        for cnn in plain_cnns_within(baselines, model)
        if cnn["top1"] > top1(model)
    ]


def members_below(gaps: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> int:
    """How many members `bar_gaps` found below at least one plain CNN."""
    return len({model["name"] for _, model, _ in gaps})


def _gap_sentence(
    gap: float, model: dict[str, Any], cnn: dict[str, Any], top1: Callable[[dict], float]
) -> str:
    return (
        f"`{model['name']}` ({top1(model) * 100:.2f}% at {model['mflops']:.2f} MFLOPs) is "
        f"{gap * 100:.2f} points below the plain CNN `{cnn['name']}` "
        f"({cnn['top1'] * 100:.2f}% at {cnn['mflops']:.2f} MFLOPs)"
    )


def bar_violations(
    models: list[dict[str, Any]], baselines: list[dict[str, Any]], top1: Callable[[dict], float]
) -> list[str]:
    """Every (member, plain-CNN baseline) pair of `bar_gaps` as a sentence; empty when the family
    clears the bar."""
    return [_gap_sentence(*gap, top1) for gap in bar_gaps(models, baselines, top1)]


def baselines_section(
    baselines: list[dict[str, Any]],
    models: list[dict[str, Any]],
    evaluation: dict[str, Any],
    top1: Callable[[dict], float],
) -> str:
    """The card's baselines table and its reading of the bar."""
    if not baselines:
        return (
            "_No baselines were given (`baselines.dir` of the pipeline config): the family is not "
            "compared with networks trained alone._"
        )
    lines = [
        "| baseline | kind | MFLOPs | params | epochs | held-out top-1 % | top-1 % (evaluation split) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for b in baselines:
        if b["status"] != "complete":
            lines.append(
                f"| `{b['name']}` | -- | -- | -- | -- | -- | training not finished (`{b['runDir']}`) |"
            )
            continue
        held_out = "--" if b["heldOutTop1"] is None else f"{b['heldOutTop1'] * 100:.2f}"
        lines.append(
            f"| `{b['name']}` | {KIND_LABELS.get(b['kind'], b['kind'])} | {b['mflops']:.2f} | "
            f"{b['params'] / 1e6:.3f} M | {b['epochs']} | {held_out} | {b['top1'] * 100:.2f} |"
        )
    usable = comparable(baselines, evaluation)
    foreign = [b["name"] for b in baselines if b["status"] == "complete" and b not in usable]
    if foreign:
        lines += [
            "",
            "Measured on another dataset or split, left out of the comparison: " + ", ".join(foreign),
        ]
    if not any(b["kind"] == "plain_cnn" for b in usable):
        lines += ["", "No finished plain-CNN baseline on this evaluation split: the bar is not checked."]
        return "\n".join(lines)
    gaps = bar_gaps(models, usable, top1)
    bar = f"The bar ({evaluation['split']} split)"
    if not gaps:
        cleared = "every member is at least as accurate as every plain-CNN baseline of equal or lower MFLOPs."
        verdict = [f"{bar}: {cleared}"]
    else:
        verdict = [f"{bar}: missed by {members_below(gaps)} of {len(models)} members:", ""] + [
            f"- {_gap_sentence(*gap, top1)}" for gap in gaps
        ]
    return "\n".join(lines + [""] + verdict)


def draw_baselines(ax, baselines: list[dict[str, Any]]) -> None:
    """Finished baselines on the MFLOPs panel: plain CNNs as black squares, the members'
    architectures trained alone as orange triangles."""
    styles = {"plain_cnn": ("#000000", "s"), "arch": ("#ff7f0e", "^")}
    for kind, (color, marker) in styles.items():
        subset = [b for b in baselines if b["status"] == "complete" and b["kind"] == kind]
        if not subset:
            continue
        ax.scatter(
            [b["mflops"] for b in subset],
            [b["top1"] * 100 for b in subset],
            color=color,
            marker=marker,
            zorder=4,
            label=f"{KIND_LABELS[kind]} (baseline)",
        )
        for b in subset:
            ax.annotate(
                b["name"],
                (b["mflops"], b["top1"] * 100),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
            )
