"""Run logging: a JSON-lines metrics file and human progress on stderr.

`MetricsWriter` appends one JSON object per line (``{"type": "step" | "epoch" | ..., ...}``) and
flushes each line, so a crash loses nothing and other tools can tail the file. `Progress` draws a
single updating bar when stderr is a TTY, and prints plain periodic lines otherwise (log files).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def setup_logging(is_main: bool = True, level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class MetricsWriter:
    """Append-only JSON-lines file; a no-op when ``path`` is None (non-main ranks)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(_jsonable(record), sort_keys=False) + "\n")


class Progress:
    """Per-epoch progress: a redrawn bar on a TTY, a plain line every ``every`` steps otherwise."""

    def __init__(self, total: int, every: int, enabled: bool = True, stream: TextIO | None = None):
        self.total, self.every, self.enabled = total, max(1, every), enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.done_at_start = 0

    def begin(self, epoch: int, done: int) -> None:
        self.epoch, self.done_at_start, self.start = epoch, done, time.monotonic()

    def update(self, done: int, info: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        rate = (done - self.done_at_start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        eta_text = "?" if not math.isfinite(eta) else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        if self.tty:
            width = 24
            filled = int(width * done / max(1, self.total))
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\repoch {self.epoch} [{bar}] {done}/{self.total} eta {eta_text} {info}\033[K")
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif done % self.every == 0 or done >= self.total:
            self.stream.write(f"epoch {self.epoch} step {done}/{self.total} eta {eta_text} {info}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def training_totals(run_dir: Path) -> dict[str, Any] | None:
    """What a run's ``metrics.jsonl`` adds up to over all its invocations (resumes included):
    ``seconds`` trained, the last ``steps`` reached, and the ``device``/``worldSize`` of the last
    start; None when the run has no metrics file."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    totals: dict[str, Any] = {"seconds": 0.0, "steps": None}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "end":
            totals["seconds"] += float(record.get("seconds", 0.0))
            totals["steps"] = record.get("step", totals["steps"])
        elif record.get("type") == "start":
            totals.update(device=record.get("device"), worldSize=record.get("world_size"))
    totals["seconds"] = round(totals["seconds"], 2)
    return totals
