"""Sub-network steps shared by the calibrate / evaluate / search / export commands:
extract an arch from a supernet, recalibrate its BN statistics on training images, evaluate it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch.utils.data import Dataset

from ..data.loader import holdout_settings
from ..errors import UserError
from ..export.sources import SubnetSource
from ..models import StaticAlphaNet
from ..space import ArchConfig
from .bn_calibration import cache_batches, calibrate_bn, to_model_input
from .evaluate import Accuracy, evaluate
from .subnet_data import calibration_loader, dataset_name, holdout_loader, holdout_split

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


def calibrate_arch(
    source: SubnetSource,
    arch: ArchConfig,
    settings: CalibrationSettings,
    device: torch.device,
    pool: Dataset | None = None,
) -> tuple[StaticAlphaNet, dict[str, Any]]:
    """Extract ``arch`` from the source's supernet and recalibrate it.

    Args:
        pool: the training images to draw from (default: the whole training split; the search
            passes the training split minus its held-out images).

    Returns:
        (the calibrated static network in eval mode on ``device``, a calibration record).
    """
    if source.supernet is None:
        raise UserError("a static sub-network checkpoint holds one arch only; pass a supernet checkpoint")
    settings.validate()
    static = prepare_model(source.supernet.extract(arch), source.cfg, device)
    loader = calibration_loader(source.cfg, settings.batch_size, settings.seed, dataset=pool)
    used = calibrate_bn(static, loader, settings.batches, uses_channels_last(source.cfg))
    record = {
        "batches": used,
        "batchSize": settings.batch_size,
        "images": min(used * settings.batch_size, len(loader.dataset)),
        "seed": settings.seed,
        "split": "train",
        "transform": "training augmentation",
    }
    return static, record


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
            loader = calibration_loader(source.cfg, settings.batch_size, settings.seed)
            used = calibrate_bn(static, loader, settings.batches, uses_channels_last(source.cfg))
            return static, {"batches": used, "batchSize": settings.batch_size, "seed": settings.seed}
        return static, dict(source.static_info.get("calibration", {}))
    if arch is None:
        raise UserError("--arch is required with a supernet checkpoint")
    return calibrate_arch(source, arch, settings, device)


# Cache the search's calibration / held-out batches in memory when they fit in this budget;
# otherwise re-read them per candidate (the loaders are deterministic, so fitness is the same).
BATCH_CACHE_BYTES = 1 << 30


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
        space = source.space
        image_bytes = space.in_channels * int(space.data["input_size"]) ** 2 * 4
        calib_loader = calibration_loader(source.cfg, calibration.batch_size, calibration.seed, dataset=pool)
        self.channels_last = uses_channels_last(source.cfg)
        if calibration.batches * calibration.batch_size * image_bytes <= BATCH_CACHE_BYTES:
            cached = cache_batches(calib_loader, calibration.batches)
            self.calib_batches: Iterable = [to_model_input(b, device, self.channels_last) for b in cached]
        else:
            self.calib_batches = calib_loader
        eval_loader = holdout_loader(source.cfg, held_out, eval_batch_size)
        if len(held_out) * image_bytes <= BATCH_CACHE_BYTES:
            self.eval_batches: Iterable = [
                (to_model_input(x, device, self.channels_last), y.to(device)) for x, y in eval_loader
            ]
        else:
            self.eval_batches = eval_loader

    def __call__(self, arch: ArchConfig) -> Accuracy:
        static = prepare_model(self.source.supernet.extract(arch), self.source.cfg, self.device)
        calibrate_bn(static, self.calib_batches, self.calibration.batches, self.channels_last)
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
