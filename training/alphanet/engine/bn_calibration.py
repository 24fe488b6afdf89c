"""BatchNorm recalibration of a sub-network (following Slimmable networks, as the reference does).

The supernet trains with BN momentum 0, so its running statistics never describe any particular
sub-network. Before a sub-network is evaluated or exported its statistics are re-estimated: every
BN layer is reset, switched to a cumulative moving average (``momentum=None``) and put in train
mode while the rest of the network stays in eval mode; training images under the *training*
augmentation are forwarded without gradients; finally the whole model goes back to eval mode.

This works on an extracted `StaticAlphaNet` (plain ``nn.BatchNorm2d``) and on the supernet with an
active sub-network (its ``DynamicBatchNorm2d`` is an ``nn.BatchNorm2d`` that updates the sliced
running statistics; channels and blocks outside the active sub-network keep their reset values).
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import UserError

log = logging.getLogger(__name__)


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer of ``model`` (any dimensionality, including SyncBatchNorm)."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def to_model_input(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move a batch to ``device``; channels-last when the model was converted to it (a model in
    channels-last runs ~1.5-2x faster on CPU only if its inputs are channels-last too, and a
    1-channel NCHW batch is not recognised as such)."""
    images = images.to(device, non_blocking=True)
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def _images_of(batch: object) -> torch.Tensor:
    """The image tensor of a loader batch: ``(images, labels)`` pairs or bare image tensors."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Sequence) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise TypeError(
        f"calibration batches must be tensors or (images, labels) pairs, got {type(batch).__name__}"
    )


def cache_batches(loader: Iterable, num_batches: int) -> list[torch.Tensor]:
    """Draw ``num_batches`` image batches once, so many sub-networks can be calibrated on the same
    images (cheaper than re-reading the loader, and a fairer comparison inside a search; reference
    issue #11 traced host-RAM growth to re-iterating the loader per sub-network)."""
    if num_batches < 1:
        raise UserError(f"the number of calibration batches must be >= 1, got {num_batches}")
    cached = []
    for batch in loader:
        cached.append(_images_of(batch))
        if len(cached) == num_batches:
            break
    if not cached:
        raise UserError("the calibration loader yielded no batches")
    if len(cached) < num_batches:
        log.warning("calibration loader ran out after %d of %d batches", len(cached), num_batches)
    return cached


@torch.no_grad()
def calibrate_bn(model: nn.Module, batches: Iterable, num_batches: int, channels_last: bool = False) -> int:
    """Re-estimate the BN running statistics of ``model`` from ``num_batches`` batches.

    Args:
        model: a static network or a supernet with its active sub-network set.
        batches: a training loader (training augmentation) or cached image batches.
        num_batches: how many batches to forward (the reference uses 64 x 256 images).
        channels_last: feed channels-last batches (for a model converted to channels-last).

    Returns:
        The number of batches actually forwarded (fewer when ``batches`` runs out).

    The model is left in eval mode. Each BN layer's momentum is restored afterwards, so that a
    later fine-tuning run keeps its own setting; the statistics themselves are the cumulative
    averages over the forwarded batches.
    """
    if num_batches < 1:
        raise UserError(f"the number of calibration batches must be >= 1, got {num_batches}")
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layers to calibrate")
    device = model_device(model)
    saved_momentum = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average over the calibration batches
        layer.train()
    used = 0
    try:
        for batch in batches:
            if used >= num_batches:
                break
            model(to_model_input(_images_of(batch), device, channels_last))
            used += 1
    finally:
        model.eval()
        for layer, momentum in zip(layers, saved_momentum):
            layer.momentum = momentum
    if used == 0:
        raise UserError("BN calibration received no batches (empty calibration loader)")
    if used < num_batches:
        log.warning("BN calibration used %d of the %d requested batches", used, num_batches)
    return used
