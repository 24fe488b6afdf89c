"""Running averages for training statistics."""

from __future__ import annotations


class AverageMeter:
    """Sum / count average, resettable per logging window or epoch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, value: float, n: int = 1) -> None:
        self.total += value * n
        self.count += n

    @property
    def average(self) -> float:
        return self.total / self.count if self.count else float("nan")


class MeterGroup:
    """Named `AverageMeter`s created on first use."""

    def __init__(self) -> None:
        self.meters: dict[str, AverageMeter] = {}

    def update(self, values: dict[str, float], n: int = 1) -> None:
        for name, value in values.items():
            self.meters.setdefault(name, AverageMeter()).update(value, n)

    def averages(self) -> dict[str, float]:
        return {name: meter.average for name, meter in self.meters.items()}

    def reset(self) -> None:
        self.meters.clear()
