"""A search's evaluations, appended to a file as they happen, so an interrupted search resumes
where it stopped instead of starting over (a search on a CPU takes tens of minutes, on ImageNet
hours).

The file is JSON lines: the first line names what the evaluations are valid for (the weights and
the search settings: the caller's ``identity``), each further line is one evaluated arch with its
accuracy. The search draws its candidates from its own seeded generator and its fitness is
deterministic, so a rerun with the same identity proposes the same candidates in the same order;
those found in the journal are not evaluated again, and the search goes on from the first one that
is not. A journal of another identity, or one that cannot be read, is started afresh; a last line
cut short by the interruption is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..export.manifest import sha256_file
from ..paths import repo_path
from ..space import ArchConfig
from .evaluate import Accuracy

# Search-config keys naming files: in an identity they are repository-relative, so a journal
# carried to another checkout (or committed) still matches and names no machine's directories.
_PATH_KEYS = ("checkpoint", "official_checkpoint", "training_config", "output")


def search_identity(weights: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What a search's results are valid for: the weights' content and the resolved search settings."""
    shown = {
        key: repo_path(value) if key in _PATH_KEYS and value is not None else value
        for key, value in settings.items()
    }
    return {"weightsSha256": sha256_file(Path(weights)), "searchConfig": shown}


def journal_path(results: Path) -> Path:
    """Where the search writing ``results`` (e.g. search.json) keeps its journal (search.journal.jsonl)."""
    return Path(results).with_name(Path(results).stem + ".journal.jsonl")


class SearchJournal:
    """Evaluations of one search identity, read back from ``path`` and appended to it."""

    def __init__(self, path: Path, identity: dict[str, Any]):
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity))  # as it reads back (tuples become lists)
        self.replayed = 0  # evaluations answered from the journal in this run
        self.known, clean = self._read()
        if not self.known or not clean:
            # Start afresh, or rewrite without the cut-short line so later records follow valid ones.
            self.path.parent.mkdir(parents=True, exist_ok=True)
            records = [{"identity": self.identity}] + [self._line(a, acc) for a, acc in self.known.items()]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
            tmp.replace(self.path)

    def _read(self) -> tuple[dict[ArchConfig, Accuracy], bool]:
        """The recorded evaluations, and whether every line after the identity was whole."""
        try:
            lines = self.path.read_text().splitlines()
            if not lines or json.loads(lines[0]) != {"identity": self.identity}:
                return {}, True
        except (OSError, UnicodeDecodeError, ValueError):
            return {}, True
        known: dict[ArchConfig, Accuracy] = {}
        for line in lines[1:]:
            try:
                record = json.loads(line)
                arch = ArchConfig.from_dict(record["arch"])
                known[arch] = Accuracy(top1=record["top1"], top5=record["top5"], samples=record["samples"])
            except (ValueError, KeyError, TypeError):
                return known, False  # the line an interruption cut short: drop it and what follows
        return known, True

    @staticmethod
    def _line(arch: ArchConfig, accuracy: Accuracy) -> dict[str, Any]:
        return {
            "arch": arch.to_dict(),
            "top1": accuracy["top1"],
            "top5": accuracy["top5"],
            "samples": accuracy["samples"],
        }

    def _append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def lookup(self, arch: ArchConfig) -> Accuracy | None:
        """The accuracy recorded for ``arch``, if it was evaluated before."""
        found = self.known.get(arch)
        self.replayed += found is not None
        return found

    def record(self, arch: ArchConfig, accuracy: Accuracy) -> None:
        """Append one evaluation (durably: the next step may be a kill)."""
        self.known[arch] = accuracy
        self._append(self._line(arch, accuracy))
