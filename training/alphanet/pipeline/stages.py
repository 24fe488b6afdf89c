"""Stage bookkeeping: a clear start/end line per stage on stderr with its duration, and the
per-stage records (name, status, seconds, details) that end up in the pipeline report."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, TextIO


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


@dataclass
class StageRecord:
    name: str
    title: str
    status: str = "running"  # running | done | skipped | failed
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            **({"details": self.details} if self.details else {}),
        }


class StageLog:
    """Runs named stages in order, printing ``==> [i/n] name: title`` and ``<== ... done in Xs``."""

    def __init__(self, total: int, prefix: str = "pipeline", stream: TextIO | None = None):
        self.total, self.prefix = total, prefix
        self.stream = stream or sys.stderr
        self.records: list[StageRecord] = []

    def say(self, message: str) -> None:
        self.stream.write(f"[{self.prefix}] {message}\n")
        self.stream.flush()

    @contextmanager
    def stage(self, name: str, title: str) -> Iterator[StageRecord]:
        record = StageRecord(name, title)
        self.records.append(record)
        index = len(self.records)
        self.say(f"==> [{index}/{self.total}] {name}: {title}")
        start = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record.status = "failed"
            record.seconds = time.monotonic() - start
            record.details.setdefault("error", str(exc) or type(exc).__name__)
            self.say(
                f"<== [{index}/{self.total}] {name}: FAILED after {format_seconds(record.seconds)}: {exc}"
            )
            raise
        record.seconds = time.monotonic() - start
        if record.status == "running":
            record.status = "done"
        note = f" ({record.details['summary']})" if "summary" in record.details else ""
        self.say(
            f"<== [{index}/{self.total}] {name}: {record.status} in {format_seconds(record.seconds)}{note}"
        )

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records]
