"""Plain CNN baselines: conv3x3-BN-ReLU stages with 2x2 max-pools, a hidden FC layer, a classifier.

The bar a published family must clear: a textbook network of the same cost, trained by the same
code, data, recipe and epochs (`alphanet baseline`). MFLOPs are counted as for AlphaNet sub-networks:
multiply-accumulates of conv and linear layers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ..errors import UserError
from .complexity import Complexity


@dataclass(frozen=True)
class PlainCNNConfig:
    """``stages``: conv widths per stage, each stage followed by a 2x2 max-pool; ``fc``: hidden width."""

    stages: tuple[tuple[int, ...], ...]
    fc: int
    in_channels: int = 1
    num_classes: int = 10
    resolution: int = 28

    @classmethod
    def from_dict(cls, raw: dict[str, Any], in_channels: int, num_classes: int, resolution: int):
        try:
            stages = tuple(tuple(int(w) for w in stage) for stage in raw["stages"])
            fc = int(raw["fc"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"plain CNN needs 'stages' (lists of widths) and 'fc' (an int): {exc}") from None
        if not stages or any(not stage or min(stage) < 1 for stage in stages) or fc < 1:
            raise UserError(f"plain CNN widths must be positive and every stage non-empty, got {raw}")
        if resolution >> len(stages) < 1:
            raise UserError(f"{len(stages)} max-pools leave nothing of a {resolution}-px input")
        return cls(stages, fc, in_channels, num_classes, resolution)

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [list(stage) for stage in self.stages], "fc": self.fc}


class PlainCNN(nn.Module):
    def __init__(self, config: PlainCNNConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_channels
        for stage in config.stages:
            for width in stage:
                layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                c_in = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = config.resolution >> len(config.stages)
        self.fc = nn.Linear(c_in * side * side, config.fc)
        self.dropout_rate = 0.0
        self.classifier = nn.Linear(config.fc, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        x = torch.relu(self.fc(x))
        if self.dropout_rate > 0.0:
            x = nn.functional.dropout(x, self.dropout_rate, self.training)
        return self.classifier(x)


def plain_cnn_complexity(config: PlainCNNConfig) -> Complexity:
    """MFLOPs (conv + linear MACs / 1e6) and parameters, BN and biases included."""
    macs = params = 0
    size, c_in = config.resolution, config.in_channels
    for stage in config.stages:
        for width in stage:
            macs += c_in * width * 9 * size * size
            params += c_in * width * 9 + 2 * width
            c_in = width
        size //= 2
    flat = c_in * size * size
    macs += flat * config.fc + config.fc * config.num_classes
    params += flat * config.fc + config.fc + config.fc * config.num_classes + config.num_classes
    return Complexity(mflops=macs / 1e6, params=params)
