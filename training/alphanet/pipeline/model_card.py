"""Model-card assets written next to the manifest: ``pareto.png`` (top-1 against MFLOPs and against
the latency measured on the publishing host) and ``README.md`` filled from
``templates/model_card.md`` (data, space, training, the models table, the chart, the exact
reproduce command, and the distillation ablation when its results exist)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from string import Template
from typing import Any

from ..space import SearchSpace, load_space
from .ablation import RESULTS_FILE, read_results, table_markdown
from .baselines import BASELINES_FILE, baselines_section, draw_baselines, read_baselines, report_recipe
from .cascade_card import cascades_section, heldout_note, replace_section
from .family import MONOTONE_TOLERANCE
from .publish import publish_lock, read_manifest, write_durably
from .report import REPORT_JSON
from ..paths import repo_path
from .stages import format_seconds
from .targets import monotone_violations, published_records, published_top1, report_targets, targets_section

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"
CHART_FILE = "pareto.png"
CARD_FILE = "README.md"
# The generated card ends with this line; what a person writes below it in the published card
# (a reading of the ablation, caveats) survives every republish and ablation refresh.
NOTES_MARKER = "<!-- Hand-written notes below this line are kept when the pipeline republishes this card. -->"


def with_kept_notes(card: str, zoo_dir: Path) -> str:
    """`card` (generated, ending with NOTES_MARKER) followed by the hand-written notes of the card
    now published in `zoo_dir`, if it has any."""
    try:
        existing = (Path(zoo_dir) / CARD_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return card
    _, found, notes = existing.partition(NOTES_MARKER)
    if not found or not notes.strip():
        return card
    head, marker, _ = card.rpartition(NOTES_MARKER)
    if not marker:
        return card
    return head + NOTES_MARKER + notes


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (lower x, higher y), by increasing x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def pareto_chart(
    models: list[dict[str, Any]],
    title: str,
    cascades: list[dict[str, Any]] | None = None,
    baselines: list[dict[str, Any]] | None = None,
) -> bytes:
    """PNG bytes: top-1 % against MFLOPs and against measured p50 latency (ms); with ``cascades``,
    their frontier too (expected MFLOPs on the held-out split, expected latency); with
    ``baselines`` (pipeline.baselines records), those networks trained alone on the MFLOPs panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_latency = [m for m in models if "latencyMs" in m]
    panels = [("mflops", "MFLOPs (multiply-accumulates / 1e6)")]
    if with_latency:
        panels.append(("latency", "p50 latency, batch 1 (ms, publishing host)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (kind, xlabel) in zip(axes[0], panels):
        subset = models if kind == "mflops" else with_latency
        xs = [m["mflops"] if kind == "mflops" else m["latencyMs"]["p50"] for m in subset]
        ys = [m["top1"] * 100 for m in subset]
        ax.scatter(xs, ys, color="#1f77b4", zorder=3, label="single members")
        front = _front(list(zip(xs, ys)))
        ax.plot([p[0] for p in front], [p[1] for p in front], color="#1f77b4", alpha=0.5, zorder=2)
        for x, y, model in zip(xs, ys, subset):
            ax.annotate(model["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        _draw_cascades(ax, kind, cascades or [])
        if kind == "mflops":
            draw_baselines(ax, baselines or [])
        if len(ax.collections) > 1:
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 (%)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    # No timestamp metadata: identical results give identical bytes.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _draw_cascades(ax, kind: str, cascades: list[dict[str, Any]]) -> None:
    """Cascades as a second frontier: x = expected MFLOPs or expected latency, y = test top-1."""
    subset = [c for c in cascades if kind == "mflops" or "latencyMs" in c]
    if not subset:
        return
    xs = [c["expectedMflops"] if kind == "mflops" else c["latencyMs"]["expected"] for c in subset]
    ys = [c["top1"] * 100 for c in subset]
    ax.scatter(xs, ys, color="#d62728", marker="D", zorder=3, label="cascades (expected cost)")
    front = _front(list(zip(xs, ys)))
    ax.plot([p[0] for p in front], [p[1] for p in front], color="#d62728", alpha=0.5, zorder=2)


def _models_table(report: dict[str, Any]) -> str:
    lines = [
        "| model | MFLOPs | params | resolution | top-1 % (onnxruntime-node) | top-1 % (PyTorch) "
        "| latency p50 / p95 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model in report["models"]:
        if model["status"] == "refused":
            continue
        ort = model.get("ort", {}).get("top1")
        latency = model.get("latencyMs")
        ort_text = "--" if ort is None else f"{ort * 100:.2f}"
        latency_text = "--" if not latency else f"{latency['p50']:.3f} / {latency['p95']:.3f}"
        lines.append(
            f"| `{model['name']}` | {model['mflops']:.2f} | {model['params'] / 1e6:.3f} M | "
            f"{model['arch']['resolution']} | {ort_text} | {model['pytorch']['top1'] * 100:.2f} | "
            f"{latency_text} |"
        )
    refused = [m for m in report["models"] if m["status"] == "refused"]
    if refused:
        lines.append("")
        lines.append("Refused by validation (not published):")
        lines += [f"- `{m['name']}`: {'; '.join(m['reasons'])}" for m in refused]
    return "\n".join(lines)


def space_variants_text(space: SearchSpace) -> str:
    """Where the space departs from the reference's blocks and head ("" where it does not)."""
    parts = []
    fused = [f"mb{i + 1}" for i, stage in enumerate(space.stages) if stage.fused]
    if fused:
        parts.append(f"fused-MBConv (one dense kxk expand conv, no depthwise conv) in {', '.join(fused)}")
    if space.head_pooling.departure:
        parts.append(space.head_pooling.departure)
    return f" Unlike the reference: {'; '.join(parts)}." if parts else ""


def monotonicity_text(report: dict[str, Any]) -> str:
    """Whether any published member is more than 0.2 points below a cheaper one on the evaluation
    split. Report only: picking looked at the held-out split alone (pipeline.family)."""
    below = [
        f"`{model['name']}` ({published_top1(model) * 100:.2f}%) is {gap * 100:.2f} points below the "
        f"cheaper `{best['name']}` ({published_top1(best) * 100:.2f}%)"
        for model, best, gap in monotone_violations(published_records(report))
    ]
    limit, split = f"{MONOTONE_TOLERANCE * 100:.1f} points", report["evaluation"]["split"]
    if not below:
        return f"on the {split} split no member is more than {limit} below a cheaper one."
    return (
        f"on the {split} split (reported only; the family was picked on held-out "
        f"training images): " + "; ".join(below) + "."
    )


def student_loss_text(loss: dict[str, Any]) -> str:
    """What the non-largest subnets learned from, as the card's training paragraph says it."""
    if loss["distill"] == "none":
        return "no distillation: every subnet on the labels (`loss.distill: none`, label-smoothed CE)"
    text = f"in-place distillation `loss.distill: {loss['distill']}`"
    if loss["distill"] == "alpha_divergence":
        text += f" (alpha in [{loss['alpha_min']}, {loss['alpha_max']}], iw_clip {loss['iw_clip']})"
    return text


def training_text(report: dict[str, Any]) -> str:
    source = report["source"]
    if source["kind"] == "official":
        return (
            "The published AlphaNet supernet checkpoint (`alphanet_pretrained.pth.tar`, facebookresearch/"
            "AlphaNet), imported through an explicit key mapping; the reference trained it for 360 epochs "
            "on 64 GPUs. Only BN statistics were recomputed here."
        )
    training = source.get("training") or {}
    cfg = training.get("config") or {}
    parts = []
    if cfg:
        loss = cfg["loss"]
        parts.append(
            f"Sandwich rule (largest + {cfg['train']['num_random_subnets']} random + smallest per step), "
            + student_loss_text(loss)
            + f"; {cfg['train']['epochs']} epochs, batch {cfg['data']['batch_size']} per process, "
            f"Nesterov SGD lr {cfg['optim']['lr']} (cosine, {cfg['optim']['warmup_epochs']} warm-up epochs), "
            f"weight decay {cfg['optim']['weight_decay']:g} on conv and linear weights, "
            f"seed {cfg['seed']}."
        )
    if training.get("configFile"):
        parts.append(
            f"Training config: `{training['configFile']}`"
            + (f" with overrides `{' '.join(training['overrides'])}`" if training.get("overrides") else "")
            + "."
        )
    if training.get("seconds"):
        parts.append(
            f"Training time: {format_seconds(training['seconds'])} for {training.get('steps', '?')} steps on "
            f"{training.get('device', '?')} (world size {training.get('worldSize', 1)})."
        )
    if source.get("checkpoint"):
        parts.append(f"Checkpoint: `{repo_path(source['checkpoint'])}`.")
    return " ".join(parts) or "Supernet checkpoint given by the pipeline config."


def _ablation_text(ablation_dir: Path | None) -> str:
    if ablation_dir is None:
        return "_No ablation results were found._"
    try:
        data = read_results(ablation_dir)
    except Exception as exc:  # noqa: BLE001 - a broken results file must not stop a publish
        return f"_Ablation results in `{repo_path(ablation_dir / RESULTS_FILE)}` could not be read: {exc}._"
    if data is None:
        return (
            "_No ablation results yet: run `npm run ablation -- --config <pipeline config>` "
            f"(results go to `{repo_path(ablation_dir / RESULTS_FILE)}`)._"
        )
    return table_markdown(data)


def model_card(report: dict[str, Any], space: SearchSpace, ablation_dir: Path | None, created_at: str) -> str:
    """The README.md text for the zoo directory whose manifest was created at ``created_at``."""
    data = space.data
    evaluation = report["evaluation"]
    lines_family = report["family"]
    family_text = (
        "Named architectures: " + ", ".join(f"`{m}`" for m in lines_family["members"]) + "."
        if lines_family["mode"] == "named"
        else _search_family_sentence(report["config"]["family"], lines_family)
    )
    mapping = {
        "zoo_name": report["zoo"]["name"],
        "description": report["zoo"]["description"] or "AlphaNet sub-networks",
        "generated_at": created_at,
        "dataset": evaluation["dataset"],
        "split": evaluation["split"],
        "split_samples": evaluation["samples"],
        "validation_samples": evaluation["validationSamples"],
        "input_size": data["input_size"],
        "channels": data["channels"],
        "mean": json.dumps(data["mean"]),
        "std": json.dumps(data["std"]),
        "resize_short_side": data["resize_short_side"],
        "interpolation": data["interpolation"],
        "space": space.name,
        "resolutions": ", ".join(map(str, space.resolutions)),
        "space_variants": space_variants_text(space),
        "mflops_min": f"{report['space']['mflopsMin']:.2f}",
        "mflops_max": f"{report['space']['mflopsMax']:.2f}",
        "training": training_text(report),
        "family": family_text,
        "calibration": (
            f"{report['config']['calibration']['batches']} batches x "
            f"{report['config']['calibration']['batch_size']} training images (training augmentation, "
            f"shuffle seed {report['config']['calibration']['seed']})"
        ),
        "models_table": _models_table(report),
        "monotonicity": monotonicity_text(report),
        "chart": f"![top-1 against MFLOPs and latency]({CHART_FILE})"
        if report.get("chart")
        else "_No chart._",
        "latency_host": report.get("latencyHost") or "the publishing host",
        "reproduce": report["command"],
        "git_commit": report.get("gitCommit") or "unknown",
        "ablation": _ablation_text(ablation_dir),
        "baselines": baselines_section(
            report.get("baselines") or [], published_records(report), evaluation, published_top1
        ),
        "targets": targets_section(report_targets(report), evaluation["split"]),
    }
    return Template(TEMPLATE.read_text()).substitute(mapping)


def card_files(
    report: dict[str, Any],
    space: SearchSpace,
    manifest: dict[str, Any],
    ablation_dir: Path | None,
    zoo_dir: Path,
    with_baselines: bool = True,
) -> dict[str, bytes | str]:
    """The card's files for a publish of ``manifest`` (name -> content): README.md (with the
    cascades section and the hand-written notes of the card now in ``zoo_dir``) and, unless
    ``with_baselines`` is false, the chart and baselines.json drawn from ``report["baselines"]``."""
    # The zoo's creation time, not the report's: a refresh rewrites the card of the same zoo.
    card = replace_section(
        model_card(report, space, ablation_dir, manifest["zoo"]["createdAt"]),
        cascades_section(manifest, heldout_note(manifest)),
    )
    files: dict[str, bytes | str] = {CARD_FILE: with_kept_notes(card, zoo_dir)}
    if with_baselines:
        files[CHART_FILE] = pareto_chart(
            manifest["models"], f"{manifest['zoo']['name']}: top-1 vs cost", manifest.get("cascades", []),
            report["baselines"],
        )  # fmt: skip
        files[BASELINES_FILE] = json.dumps({"baselines": report["baselines"]}, indent=2) + "\n"
    return files


def refresh_model_card(
    run_dir: Path, zoo_dir: Path, ablation_dir: Path, baselines_dir: Path | None = None
) -> Path | None:
    """Rewrite the zoo's README.md with the latest ablation results, when that zoo is still the one
    this run published (its report says so and the manifest is the same zoo); returns the path.

    With ``baselines_dir``, the baseline runs there are read again too (they train for hours and
    often finish after the family is published): the card's table and the bar's verdict, the
    chart and ``baselines.json`` are brought up to date, and so is the run's report, so a later
    refresh keeps them. Nothing is retrained or re-exported; the manifest is not touched."""
    report_path = Path(run_dir) / REPORT_JSON
    if not report_path.is_file():
        return None
    try:
        report = json.loads(report_path.read_text())
    except ValueError:
        return None
    manifest = read_manifest(Path(zoo_dir))
    published = [m["name"] for m in report.get("models", []) if m.get("status") == "published"]
    if (
        report.get("status") not in ("published", "reload-failed")
        or not report.get("config", {}).get("publish", {}).get("model_card")
        or manifest is None
        or manifest.get("zoo", {}).get("name") != report["zoo"]["name"]
        or sorted(m.get("name") for m in manifest.get("models", [])) != sorted(published)
    ):
        return None
    if baselines_dir is not None:
        report["baselines"] = read_baselines(baselines_dir, report_recipe(report))
        report["targets"] = report_targets(report)
    space = load_space(report["space"]["name"])
    with publish_lock(Path(zoo_dir)):
        files = card_files(
            report, space, manifest, ablation_dir, zoo_dir, with_baselines=baselines_dir is not None
        )
        for name, content in files.items():
            write_durably(content, Path(zoo_dir) / name, Path(zoo_dir))
        if baselines_dir is not None:
            write_durably(json.dumps(report, indent=2) + "\n", report_path, Path(run_dir))
    return Path(zoo_dir) / CARD_FILE


def _search_family_sentence(family: dict, picked_family: dict) -> str:
    """How search mode picked the family (``family``: its config; ``picked_family``: the report's
    family stage), with every pick it dropped and why."""
    search = family["search"]
    picked = (
        "then every member of the search's Pareto front (top-1 on the held-out images vs MFLOPs)"
        if search.get("pick") == "pareto"
        else f"then the best candidate at or below each FLOPs target {search['targets_mflops']} MFLOPs"
    )
    extra = (
        ", plus "
        + ", ".join(f"`{a}`" for a in family["archs"] if isinstance(a, str))
        + " (listed in `family.archs`)"
        if family.get("archs")
        else ""
    )
    dropped = [
        f"`{d['name']}` ({d['holdoutTop1'] * 100:.2f}% held-out, below the plain CNN `{d['plainCnn']}`'s "
        f"{d['plainCnnHoldoutTop1'] * 100:.2f}% at {d['plainCnnMflops']:.2f} MFLOPs)"
        for d in picked_family.get("droppedBelowPlainCnn") or []
    ] + [
        f"`{d['name']}` ({d['holdoutTop1'] * 100:.2f}% held-out, more than "
        f"{MONOTONE_TOLERANCE * 100:.1f} points below the cheaper `{d['cheaper']}`'s "
        f"{d['cheaperHoldoutTop1'] * 100:.2f}%)"
        for d in picked_family.get("droppedNotMonotone") or []
    ]
    rules = (
        "Picks that a plain-CNN baseline of equal or lower MFLOPs beats on the same held-out images are "
        "dropped; then "
        if family.get("drop_below_plain_cnns")
        else ""
    )
    return (
        "Evolutionary search over the supernet (fitness = top-1 on held-out *training* images after BN "
        f"recalibration), {picked}{extra}. {rules}{'a' if rules else 'A'} pick more than "
        f"{MONOTONE_TOLERANCE * 100:.1f} points below a cheaper one on the held-out images is dropped. "
        + ("Dropped: " + "; ".join(dropped) + "." if dropped else "No pick was dropped.")
    )
