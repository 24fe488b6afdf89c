"""Where sub-networks come from: a supernet checkpoint of ours, the official AlphaNet checkpoint,
or a calibrated static sub-network checkpoint written by ``alphanet calibrate``.

A *static checkpoint* is a standalone calibrated sub-network: ``kind = "static_subnet"``, the
space name, the arch (reference layout), ``model`` (the `StaticAlphaNet` state_dict with
recalibrated BN statistics), the label names, the resolved data/training config it was
calibrated with, and a ``calibration`` record. It can be evaluated or exported without the
supernet and without recalibrating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import apply_overrides, config_from_dict, load_config
from ..errors import UserError
from ..models import AlphaNetSupernet, StaticAlphaNet
from ..space import ArchConfig, SearchSpace, load_space
from .official_checkpoint import import_official_checkpoint

STATIC_KIND = "static_subnet"
STATIC_FORMAT_VERSION = 1
OFFICIAL_SOURCE = "official-alphanet"
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class SubnetSource:
    """A loaded supernet (or None for a static checkpoint) with the config and labels around it."""

    space: SearchSpace
    cfg: dict[str, Any]
    classes: list[str] | None
    origin: str  # the checkpoint path, or OFFICIAL_SOURCE
    supernet: AlphaNetSupernet | None = None
    official: bool = False  # the published AlphaNet weights (imported now or by import-official)
    static: StaticAlphaNet | None = None
    static_info: dict[str, Any] = field(default_factory=dict)


def _with_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    return apply_overrides(cfg, list(overrides))


def _supernet_source(state: dict[str, Any], path: Path, overrides: Iterable[str]) -> SubnetSource:
    missing = [k for k in ("space", "num_classes", "config") if k not in state]
    if missing:
        raise UserError(f"{path}: supernet checkpoint lacks {', '.join(missing)}")
    cfg = _with_overrides(config_from_dict(state["config"]), overrides)
    # The config holds the space as it was given (a bundled name or a YAML file); "space" is its name.
    space = load_space(cfg["space"])
    supernet = AlphaNetSupernet(
        space, state["num_classes"], bn_eps=cfg["model"]["bn_eps"], bn_momentum=cfg["model"]["bn_momentum"]
    )
    try:
        supernet.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: weights do not fit the '{space.name}' supernet: {exc}") from None
    classes = list(state["classes"]) if state.get("classes") else None
    official = state.get("source") == OFFICIAL_SOURCE
    return SubnetSource(space, cfg, classes, str(path), supernet=supernet, official=official)


def load_supernet_source(
    path: Path, overrides: Iterable[str] = (), state: dict[str, Any] | None = None
) -> SubnetSource:
    """One of our training checkpoints (a file or a run directory); ``state``: the checkpoint
    already loaded from ``path``, when the caller read it for something else first."""
    state = load_checkpoint(path) if state is None else state
    if state.get("kind") == STATIC_KIND:
        raise UserError(f"{path} is a static sub-network checkpoint, not a supernet checkpoint")
    return _supernet_source(state, Path(path), overrides)


def default_official_config() -> Path | None:
    path = CONFIGS_DIR / "imagenet.yaml"
    return path if path.is_file() else None


def load_official_source(
    path: Path, space_name: str = "imagenet", config: Path | None = None, overrides: Iterable[str] = ()
) -> SubnetSource:
    """The published AlphaNet supernet; data settings from ``config`` (default: configs/imagenet.yaml)."""
    space = load_space(space_name)
    config = config if config is not None else default_official_config()
    cfg = load_config(config, [f"space={space.name}", *overrides])
    supernet = import_official_checkpoint(Path(path), space)
    return SubnetSource(space, cfg, None, OFFICIAL_SOURCE, supernet=supernet, official=True)


def save_static_checkpoint(
    path: Path,
    model: StaticAlphaNet,
    space: SearchSpace,
    cfg: dict[str, Any],
    classes: list[str] | None,
    calibration: dict[str, Any],
    origin: str,
) -> Path:
    state = {
        "format_version": STATIC_FORMAT_VERSION,
        "kind": STATIC_KIND,
        "space": space.name,
        "arch": model.arch.to_dict(),
        "num_classes": model.num_classes,
        "classes": classes,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": cfg,
        "calibration": calibration,
        "source": origin,
    }
    return save_checkpoint(path, state)


def load_static_source(state: dict[str, Any], path: Path, overrides: Iterable[str] = ()) -> SubnetSource:
    missing = [k for k in ("space", "arch", "num_classes", "config") if k not in state]
    if missing:
        raise UserError(f"{path}: calibrated checkpoint lacks {', '.join(missing)}")
    space = load_space(state["space"])
    arch = ArchConfig.from_dict(state["arch"])
    space.validate(arch)
    model = StaticAlphaNet(space, arch, state["num_classes"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{path}: weights do not fit arch {arch.to_dict()}: {exc}") from None
    cfg = _with_overrides(config_from_dict(state["config"]), overrides)
    info = {"calibration": state.get("calibration", {}), "source": state.get("source", str(path))}
    return SubnetSource(space, cfg, state.get("classes"), str(path), static=model.eval(), static_info=info)


def load_any_source(path: Path, overrides: Iterable[str] = ()) -> SubnetSource:
    """A supernet checkpoint or a static sub-network checkpoint, whichever ``path`` holds."""
    state = load_checkpoint(path)
    if state.get("kind") == STATIC_KIND:
        return load_static_source(state, Path(path), overrides)
    return _supernet_source(state, Path(path), overrides)


def read_labels(path: Path) -> list[str]:
    """Label names, one per line (blank lines ignored), or a JSON list."""
    import json

    path = Path(path)
    if not path.is_file():
        raise UserError(f"labels file not found: {path}")
    text = path.read_text()
    if text.lstrip().startswith("["):
        try:
            labels = json.loads(text)
        except ValueError as exc:
            raise UserError(f"labels file {path} is not valid JSON: {exc}") from None
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise UserError(f"labels file {path} must list non-empty label names")
    return labels


def resolve_labels(
    source: SubnetSource, labels_file: Path | None, dataset_classes: list[str] | None
) -> list[str]:
    """Labels for the manifest: an explicit file, else the checkpoint's, else the dataset's."""
    num_classes = source.supernet.num_classes if source.supernet is not None else source.static.num_classes
    for labels in (read_labels(labels_file) if labels_file else None, source.classes, dataset_classes):
        if labels:
            if len(labels) != num_classes:
                raise UserError(f"{len(labels)} labels for a {num_classes}-class network")
            return [str(x) for x in labels]
    raise UserError("no label names known for this checkpoint: pass --labels FILE")


def model_device(cfg: dict[str, Any]) -> torch.device:
    """The device of ``runtime.device`` (auto = CUDA when available)."""
    preference = cfg["runtime"]["device"]
    if preference == "cuda" and not torch.cuda.is_available():
        raise UserError("runtime.device is cuda but no CUDA device is available")
    if preference in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
