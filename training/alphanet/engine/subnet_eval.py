"""Sub-network steps shared by the calibrate / evaluate / search / export commands:
extract an arch from a supernet, recalibrate its BN statistics on training images, evaluate it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from ..data.loader import holdout_settings
from ..errors import UserError
from ..export.sources import SubnetSource
from ..models import StaticAlphaNet, complexity
from ..space import ArchConfig
from .bn_calibration import cache_batches, calibrate_bn, to_model_input
from .evaluate import Accuracy, evaluate
from .subnet_data import calibration_loader, dataset_name, evaluation_loader, holdout_loader, holdout_split

log = logging.getLogger(__name__)


def uses_channels_last(cfg: dict[str, Any]) -> bool:
    """``runtime.channels_last``: NHWC activations (much faster depthwise convs on CPU)."""
    return bool(cfg["runtime"].get("channels_last", False))


def prepare_model(model: StaticAlphaNet, cfg: dict[str, Any], device: torch.device) -> StaticAlphaNet:
    """Move to ``device`` in the memory format the config asks for."""
    model = model.to(device)
    if uses_channels_last(cfg):
        model = model.to(memory_format=torch.channels_last)
    return model


@dataclass(frozen=True)
class CalibrationSettings:
    """How many training batches recalibrate BN (the reference: 64 x 256, shuffled, seed 5)."""

    batches: int = 64
    batch_size: int = 256
    seed: int = 5

    def validate(self) -> None:
        if self.batches < 1 or self.batch_size < 1:
            raise UserError("calibration batches and batch size must be >= 1")


# Cache calibration / held-out batches on the device when they fit in this budget; otherwise
# re-read them per sub-network (the loaders are deterministic, so the results are the same).
BATCH_CACHE_BYTES = 1 << 30


def _fits_in_cache(space, images: int) -> bool:
    return images * space.in_channels * int(space.data["input_size"]) ** 2 * 4 <= BATCH_CACHE_BYTES


@dataclass
class CalibrationImages:
    """The training batches that recalibrate BN, drawn once for any number of sub-networks."""

    settings: CalibrationSettings
    batches: Iterable  # cached device tensors, or the loader itself when they do not fit
    available: int  # images in the pool they are drawn from
    channels_last: bool

    @property
    def shared(self) -> bool:
        return isinstance(self.batches, list)

    def calibrate(self, model: nn.Module) -> dict[str, Any]:
        """Recalibrate ``model`` in place; the calibration record for reports and checkpoints."""
        used = calibrate_bn(model, self.batches, self.settings.batches, self.channels_last)
        return {
            "batches": used,
            "batchSize": self.settings.batch_size,
            "images": min(used * self.settings.batch_size, self.available),
            "seed": self.settings.seed,
            "split": "train",
            "transform": "training augmentation",
        }


def calibration_images(
    source: SubnetSource, settings: CalibrationSettings, device: torch.device, pool: Dataset | None = None
) -> CalibrationImages:
    """Shuffled training images (``pool``: default the training split) under the training
    augmentation, as the reference recalibrates (64 x 256, seed 5)."""
    settings.validate()
    channels_last = uses_channels_last(source.cfg)
    loader = calibration_loader(source.cfg, settings.batch_size, settings.seed, dataset=pool)
    batches: Iterable = loader
    if _fits_in_cache(source.space, settings.batches * settings.batch_size):
        batches = [to_model_input(b, device, channels_last) for b in cache_batches(loader, settings.batches)]
    return CalibrationImages(settings, batches, len(loader.dataset), channels_last)


def calibrate_arch(
    source: SubnetSource, arch: ArchConfig, images: CalibrationImages, device: torch.device
) -> tuple[StaticAlphaNet, dict[str, Any]]:
    """Extract ``arch`` from the source's supernet and recalibrate it: (the calibrated static
    network in eval mode on ``device``, its calibration record)."""
    if source.supernet is None:
        raise UserError("a static sub-network checkpoint holds one arch only; pass a supernet checkpoint")
    static = prepare_model(source.supernet.extract(arch), source.cfg, device)
    return static, images.calibrate(static)


def subnet_for(
    source: SubnetSource,
    arch: ArchConfig | None,
    settings: CalibrationSettings,
    device: torch.device,
    recalibrate: bool = False,
) -> tuple[StaticAlphaNet, dict[str, Any]]:
    """The calibrated network for ``arch``: recalibrated from the supernet, or the static
    checkpoint's own (already calibrated) network when the source is one."""
    if source.static is not None:
        if arch is not None and arch != source.static.arch:
            raise UserError("--arch does not match the arch stored in the static checkpoint")
        static = prepare_model(source.static, source.cfg, device).eval()
        if recalibrate:
            return static, calibration_images(source, settings, device).calibrate(static)
        return static, dict(source.static_info.get("calibration", {}))
    if arch is None:
        raise UserError("--arch is required with a supernet checkpoint")
    return calibrate_arch(source, arch, calibration_images(source, settings, device), device)


def evaluate_subnets(
    source: SubnetSource,
    targets: list[tuple[str | None, ArchConfig | None]],
    settings: CalibrationSettings,
    device: torch.device,
    batch_size: int | None = None,
    max_batches: int | None = None,
    recalibrate: bool = False,
) -> list[dict[str, Any]]:
    """Top-1/top-5 on the evaluation split of each (label, arch) after BN recalibration (a
    calibrated sub-network checkpoint: its own statistics unless ``recalibrate``)."""
    loader, split = evaluation_loader(source.cfg, batch_size)
    results = []
    for label, arch in targets:
        static, calibration = subnet_for(source, arch, settings, device, recalibrate=recalibrate)
        accuracy = evaluate(static, loader, max_batches, uses_channels_last(source.cfg))
        cx = complexity(source.space, static.arch, static.num_classes)
        results.append(
            {
                "name": label or Path(source.origin).stem,
                "arch": {"space": source.space.name, **static.arch.to_dict()},
                "mflops": round(cx.mflops, 4),
                "params": cx.params,
                **accuracy,
                "evaluation": {"dataset": split.dataset, "split": split.split},
                "calibration": calibration,
            }
        )
    return results


class HoldoutFitness:
    """Search fitness: top-1 on held-out training images after BN recalibration.

    The training split is split once into a calibration pool and held-out images (the supernet's
    own held-out split when it was trained with one, see `holdout_split`); every candidate is
    recalibrated on the same pool batches and evaluated on the same held-out images, so fitness is
    deterministic per arch.
    """

    def __init__(
        self,
        source: SubnetSource,
        calibration: CalibrationSettings,
        holdout_size: int,
        holdout_seed: int,
        eval_batch_size: int,
        max_eval_batches: int | None,
        device: torch.device,
    ):
        if source.supernet is None:
            raise UserError("search needs a supernet checkpoint, not a calibrated sub-network")
        calibration.validate()
        self.source, self.calibration, self.device = source, calibration, device
        self.max_eval_batches = max_eval_batches
        pool, held_out, self.never_trained_on = holdout_split(source.cfg, holdout_size, holdout_seed)
        if self.never_trained_on:
            holdout_seed = holdout_settings(source.cfg)[1]
        else:
            log.warning(
                "the supernet was trained without data.holdout_size: search fitness uses %d training "
                "images it learned from (ranking by training accuracy)",
                len(held_out),
            )
        self.pool_size, self.holdout_size, self.holdout_seed = len(pool), len(held_out), holdout_seed
        self.channels_last = uses_channels_last(source.cfg)
        self.images = calibration_images(source, calibration, device, pool)
        eval_loader = holdout_loader(source.cfg, held_out, eval_batch_size)
        if _fits_in_cache(source.space, len(held_out)):
            self.eval_batches: Iterable = [
                (to_model_input(x, device, self.channels_last), y.to(device)) for x, y in eval_loader
            ]
        else:
            self.eval_batches = eval_loader

    def __call__(self, arch: ArchConfig) -> Accuracy:
        static = prepare_model(self.source.supernet.extract(arch), self.source.cfg, self.device)
        self.images.calibrate(static)
        return evaluate(static, self.eval_batches, self.max_eval_batches, self.channels_last)

    def describe(self) -> dict[str, Any]:
        return {
            "dataset": dataset_name(self.source.cfg),
            "split": "held-out part of the training split (the evaluation split is never used for selection)",
            "heldOutFromTraining": self.never_trained_on,
            "holdoutSize": self.holdout_size,
            "holdoutSeed": self.holdout_seed,
            "calibrationPool": self.pool_size,
            "calibration": {
                "batches": self.calibration.batches,
                "batchSize": self.calibration.batch_size,
                "seed": self.calibration.seed,
            },
            "maxEvalBatches": self.max_eval_batches,
        }
