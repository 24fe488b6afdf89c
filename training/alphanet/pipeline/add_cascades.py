"""``alphanet cascades``: add (or recompute) the cascades of an existing zoo without retraining.

Reads the zoo's manifest, writes the held-out images (``data.holdout_size`` / ``holdout_seed`` of
the training config, eval transform) and the evaluation split in the validator's dataset format,
builds cascades from the published ONNX files (`cascades.build_cascades`: picked on the held-out
images only), and republishes the same members plus the cascades through the atomic publish
(`publish.publish_zoo`: the model files are reused, only ``manifest.json`` changes), with the model
card's cascades section and the chart redrawn with both frontiers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..data.loader import holdout_settings
from ..engine.subnet_data import dataset_name, eval_split_name, holdout_loader, holdout_split
from ..errors import UserError
from ..export.manifest import ManifestError, validate_manifest
from ..paths import repo_path
from .cascade_card import cascades_section, replace_section
from .cascades import SplitInfo, build_cascades
from .dataset_file import EvalTensors, write_dataset_file
from .members import load_eval_tensors
from .baselines import published_baselines
from .model_card import CARD_FILE, CHART_FILE, pareto_chart
from .publish import publish_zoo, read_manifest
from .validation import host_description


def heldout_tensors(
    cfg: dict[str, Any], classes: int, fallback_size: int = 0, fallback_seed: int = 0, batch_size: int = 500
) -> tuple[EvalTensors, bool]:
    """The held-out training images (never the evaluation split), eval transform, in order, and
    whether the supernet never trained on them: the training config's own held-out split, else
    (older supernets) ``fallback_size`` training images drawn by ``fallback_seed``."""
    if holdout_settings(cfg)[0] <= 0 and fallback_size <= 0:
        raise UserError(
            "cascades are picked on a held-out split: the training config needs data.holdout_size > 0"
        )
    _, subset, never_trained_on = holdout_split(cfg, fallback_size, fallback_seed)
    images, labels = [], []
    for x, y in holdout_loader(cfg, subset, batch_size):
        images.append(x.contiguous())
        labels.append(y)
    tensors = EvalTensors(
        images=torch.cat(images),
        labels=torch.cat(labels),
        classes=classes,
        class_names=[str(c) for c in getattr(subset, "classes", [])],
        dataset=dataset_name(cfg),
        split="holdout",
        full_split=True,
        split_size=len(subset),
    )
    return tensors, never_trained_on


TRAINED_ON_NOTE = (
    "the supernet was trained without a held-out split, so these training images were seen in training "
    "and the held-out figures are optimistic"
)


def pipeline_cascades(
    cfg: dict[str, Any],
    source_cfg: dict[str, Any],
    data_contract: dict[str, Any],
    staging: Path,
    models: list[dict[str, Any]],
    eval_file: Path,
    evaluation: SplitInfo,
    host: str,
    say,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pipeline's cascades over the accepted members (their files in ``staging``), using the
    validator's latency figures; the held-out images are written next to the evaluation file."""
    settings = cfg["cascades"]
    if settings["count"] <= 0 or len(models) < 2:
        return [], {"summary": "skipped (cascades.count is 0 or fewer than 2 members)"}
    classes = len(models[0]["labels"])
    heldout, never_trained_on = heldout_tensors(
        source_cfg, classes, settings["holdout_size"], settings["holdout_seed"]
    )
    heldout_file = eval_file.parent / "heldout.azdata"
    write_dataset_file(heldout_file, heldout, data_contract)
    say(f"wrote {heldout.count} held-out images to {heldout_file}")
    note = None if never_trained_on else TRAINED_ON_NOTE
    latency = {m["name"]: m["latencyMs"]["p50"] for m in models if "latencyMs" in m}
    return build_cascades(
        node_zoo=staging,
        models=models,
        heldout_file=heldout_file,
        heldout=SplitInfo(heldout.dataset, "holdout", heldout.count, note),
        eval_file=eval_file,
        evaluation=evaluation,
        work_dir=eval_file.parent,
        prefix=cfg["zoo"]["model_prefix"],
        host=host,
        latency_p50=latency if len(latency) == len(models) else None,
        count=settings["count"],
        threads=cfg["validation"]["intra_op_threads"],
        say=say,
    )


def add_cascades(
    zoo_dir: Path,
    training_config: Path,
    *,
    overrides: list[str] | None = None,
    heldout_note: str | None = None,
    count: int = 4,
    latency_runs: int = 100,
    threads: int | None = None,
    work_dir: Path | None = None,
    model_card: bool = True,
    say=print,
) -> dict[str, Any]:
    zoo_dir = Path(zoo_dir)
    manifest = read_manifest(zoo_dir)
    if manifest is None:
        raise UserError(f"{zoo_dir} has no readable manifest.json")
    try:
        validate_manifest(manifest)
    except ManifestError as exc:
        raise UserError(f"{zoo_dir}/manifest.json: {exc}") from None
    cfg = load_config(training_config, overrides or [])
    models = manifest["models"]
    data = {
        "channels": models[0]["input"]["channels"],
        "input_size": models[0]["input"]["size"],
        "mean": models[0]["input"]["mean"],
        "std": models[0]["input"]["std"],
        "resize_short_side": models[0]["input"]["resizeShortSide"],
        "interpolation": models[0]["input"]["interpolation"],
    }
    classes = len(models[0]["labels"])
    prefix = str(
        manifest["zoo"].get("source", {}).get("modelPrefix") or _common_prefix([m["name"] for m in models])
    )
    with tempfile.TemporaryDirectory(prefix="alphanet-cascades-") as scratch:
        work = Path(work_dir) if work_dir else Path(scratch)
        heldout, _ = heldout_tensors(cfg, classes)
        heldout_file = work / "heldout.azdata"
        write_dataset_file(heldout_file, heldout, data)
        say(f"wrote {heldout.count} held-out images to {heldout_file}")
        tensors = load_eval_tensors(cfg, None, 500, classes)
        eval_file = work / "eval.azdata"
        write_dataset_file(eval_file, tensors, data)
        say(f"wrote {tensors.count} evaluation images to {eval_file}")
        host = host_description("cpu", threads)
        entries, details = build_cascades(
            node_zoo=zoo_dir,
            models=models,
            heldout_file=heldout_file,
            heldout=SplitInfo(dataset_name(cfg), "holdout", heldout.count, heldout_note),
            eval_file=eval_file,
            evaluation=SplitInfo(dataset_name(cfg), eval_split_name(cfg), tensors.count),
            work_dir=work,
            prefix=prefix,
            host=host,
            latency_runs=latency_runs,
            count=count,
            threads=threads,
            say=say,
        )
    # Members' latency is re-measured with the cascades' stages (same host, same run), so both
    # frontiers of the chart compare like with like.
    measured = details.get("measuredLatencyMs", {})
    new = {k: v for k, v in manifest.items() if k != "cascades"}
    new["models"] = []
    for model in models:
        model = dict(model)
        if model["name"] in measured:
            m = measured[model["name"]]
            model["latencyMs"] = {"p50": m["p50"], "p95": m["p95"], "batchSize": 1, "host": host}
        new["models"].append(model)
    if entries:
        new["cascades"] = entries
    side_files: dict[str, bytes | str] = {}
    if model_card:
        side_files[CHART_FILE] = pareto_chart(
            new["models"],
            f"{new['zoo']['name']}: top-1 vs cost",
            new.get("cascades", []),
            published_baselines(zoo_dir),
        )
        try:
            card = (zoo_dir / CARD_FILE).read_text(encoding="utf-8")
        except OSError:
            card = f"# {new['zoo']['name']}\n"
        side_files[CARD_FILE] = replace_section(card, cascades_section(new, heldout_note))
    published = publish_zoo(new, zoo_dir, zoo_dir, side_files=side_files)
    return {
        "zooDir": repo_path(zoo_dir),
        "trainingConfig": repo_path(training_config),
        "cascades": entries,
        "details": {k: v for k, v in details.items() if k != "measuredLatencyMs"},
        "publish": published.to_dict(),
    }


def _common_prefix(names: list[str]) -> str:
    """``fmnist-`` for ``fmnist-2.23m, fmnist-12.05m``: up to and including the last '-' all share."""
    first = names[0]
    shared = first
    for name in names[1:]:
        while not name.startswith(shared):
            shared = shared[:-1]
    cut = shared.rfind("-")
    return shared[: cut + 1] if cut >= 0 else ""
