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
from ..paths import REPO_ROOT, repo_path
from ..config import TREE as TRAINING_TREE
from ..settings import flatten, get, read_yaml
from ..space import space_file, read_space

KIND_LABELS = {"plain_cnn": "plain CNN", "arch": "sub-network of the space, trained alone"}
# Published next to the manifest with the card, so a later chart of the same zoo (adding cascades)
# keeps the baselines without the training run's directories.
BASELINES_FILE = "baselines.json"

# The training-config keys that make a recipe: a baseline trained with other values is not the bar
# it claims to be. Left out by design: the network and its space (what differs; the space's
# training augmentation is compared separately), loss.distill* (how the supernet's students learn;
# a network alone has no teacher), data.batch_size (the supernet splits its batch across
# processes), model.* (a network alone keeps BN running statistics), seed, and the keys that do not
# change the weights (runtime, logging, checkpoints, validation). Which training images were held
# out is compared wherever held-out figures are (`held_out_plain_cnns`).
RECIPE_KEYS = (
    "data.dataset",
    "train.epochs",
    "train.dropout",
    "train.drop_connect",
    "train.grad_clip_value",
    "loss.label_smoothing",
    *(key for key in flatten(TRAINING_TREE) if key.startswith("optim.")),  # all of the optimiser
)
_UNKNOWN = object()  # an augmentation neither recorded by the run nor readable from its space


def _setting(cfg: dict[str, Any], key: str) -> Any:
    try:
        return get(cfg, key)
    except (KeyError, TypeError):
        return None


def _train_augment(space: Any) -> Any:
    """The training augmentation a run's space declares; the space is named as the run named it
    (a bundled name, or a YAML path relative to training/, where the trainer runs)."""
    try:
        raw = read_space(space_file(str(space), relative_to=REPO_ROOT / "training"))
        return (raw.get("data") or {}).get("train_augment")
    except (UserError, OSError, AttributeError):
        return _UNKNOWN


def recipe_differences(
    run_cfg: dict[str, Any], family_cfg: dict[str, Any], run_augment: Any = _UNKNOWN
) -> list[str]:
    """How a baseline run's recipe (its config; ``run_augment``: the training augmentation it
    recorded, if it did) differs from the family supernet's, one phrase per difference; empty when
    they are the same recipe. The augmentation is compared where both are known: recorded, or read
    from the space file the run names (a pilot's file may be gone since)."""
    differences = [
        f"{key} {_setting(run_cfg, key)!r}, the family's {_setting(family_cfg, key)!r}"
        for key in RECIPE_KEYS
        if _setting(run_cfg, key) != _setting(family_cfg, key)
    ]
    mine = _train_augment(run_cfg.get("space")) if run_augment is _UNKNOWN else run_augment
    family = _train_augment(family_cfg.get("space"))
    if _UNKNOWN not in (mine, family) and mine != family:
        if isinstance(mine, dict) and isinstance(family, dict):
            differences += [
                f"data.train_augment.{key} {mine.get(key)!r}, the family's {family.get(key)!r}"
                for key in sorted(set(mine) | set(family))
                if mine.get(key) != family.get(key)
            ]
        else:
            differences.append(f"data.train_augment {mine!r}, the family's {family!r}")
    return differences


def report_recipe(report: dict[str, Any]) -> dict[str, Any] | None:
    """The training config of the supernet a pipeline report published from (None for the official
    weights, or a report that does not record it): the recipe its baselines must share."""
    return ((report.get("source") or {}).get("training") or {}).get("config")


def read_baselines(
    directory: str | Path | None, recipe: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One record per run directory under ``directory`` (sorted by name): the finished ones from
    their ``baseline.json``, the unfinished ones (no ``baseline.json`` yet) marked incomplete so the
    card says what is missing instead of leaving it out. With ``recipe`` (the family supernet's
    training config), each finished record says how its recipe differs (`recipe_differences`);
    one that differs is not compared with the family."""
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
        if recipe is not None:
            records[-1]["recipeDifferences"] = _recipe_of(run, recipe, data.get("trainAugment", _UNKNOWN))
    return records


def _recipe_of(run: Path, recipe: dict[str, Any], augment: Any) -> list[str]:
    try:
        cfg = read_yaml(run / "config.yaml", "baseline config")
    except UserError:
        return ["its config.yaml is unreadable"]
    if not isinstance(cfg, dict):
        return ["its config.yaml is not a mapping"]
    return recipe_differences(cfg, recipe, augment)


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
        and not b.get("recipeDifferences")
    ]


def published_baselines(zoo_dir: str | Path) -> list[dict[str, Any]]:
    """The baseline records published with the zoo in ``zoo_dir`` (none when there are none)."""
    try:
        return json.loads((Path(zoo_dir) / BASELINES_FILE).read_text())["baselines"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def comparable(baselines: list[dict[str, Any]], evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """The finished baselines measured on the family's own evaluation dataset and split, trained by
    the family's recipe (no `recipe_differences`, or none known)."""
    return [
        b
        for b in baselines
        if b["status"] == "complete"
        and b["dataset"] == evaluation["dataset"]
        and b["split"] == evaluation["split"]
        and not b.get("recipeDifferences")
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
    other_recipe = [b for b in baselines if b["status"] == "complete" and b.get("recipeDifferences")]
    if other_recipe:
        lines += ["", "Trained by another recipe than the family's supernet, left out of the comparison:", ""]
        lines += [f"- `{b['name']}`: {'; '.join(b['recipeDifferences'])}" for b in other_recipe]
    foreign = [
        b["name"]
        for b in baselines
        if b["status"] == "complete" and b not in usable and not b.get("recipeDifferences")
    ]
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
