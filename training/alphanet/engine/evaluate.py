"""Top-1 / top-5 accuracy of a classifier on a loader (fractions in [0, 1] plus the sample count).

Under torch.distributed the per-rank counts are summed, so every rank returns the global figures
(a DistributedSampler that pads the last shard counts its repeated samples, as usual).
"""

from __future__ import annotations

from typing import Iterable, TypedDict

import torch
import torch.distributed as dist
import torch.nn as nn

from ..errors import UserError
from .bn_calibration import model_device, to_model_input


class Accuracy(TypedDict):
    top1: float
    top5: float
    samples: int


def topk_hits(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Per-sample 1/0: is the target among the ``k`` highest logits (k capped at the class count)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return top.eq(targets.view(-1, 1)).any(dim=1)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: Iterable, max_batches: int | None = None, channels_last: bool = False
) -> Accuracy:
    """Accuracy of ``model`` (put in eval mode) over ``loader`` batches of ``(images, labels)``.

    Args:
        model: any classifier returning ``[N, classes]`` logits.
        loader: yields ``(images, labels)``.
        max_batches: stop after this many batches (None = the whole loader).
        channels_last: feed channels-last batches (for a model converted to channels-last).
    """
    model.eval()
    device = model_device(model)
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # top-1 hits, top-5 hits, samples
    for index, (images, targets) in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            break
        images = to_model_input(images, device, channels_last)
        targets = targets.to(device, non_blocking=True)
        logits = model(images)
        if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
            raise ValueError(
                f"expected [N, classes] logits for {targets.shape[0]} labels, got {tuple(logits.shape)}"
            )
        counts[0] += topk_hits(logits, targets, 1).sum()
        counts[1] += topk_hits(logits, targets, 5).sum()
        counts[2] += targets.shape[0]
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(counts)
    samples = int(counts[2].item())
    if samples == 0:
        raise UserError("evaluation loader yielded no samples")
    return Accuracy(top1=counts[0].item() / samples, top5=counts[1].item() / samples, samples=samples)
