"""Stage 9: atomic publish of a validated zoo into the zoo directory (``models/`` by default).

A reader (the server loading or reloading, ``zoo:validate``) never sees a mix of old and new, and
an interrupted or failed publish leaves the old zoo intact:

1. Take an exclusive lock (flock on the directory) so two publishers never interleave.
2. Copy every model file under a content-addressed name, ``<name>.<sha12>.onnx`` (and
   ``<name>.<sha12>.reference.json``): written to a temporary name, fsynced, renamed, directory
   fsynced. A name that already exists holds the same bytes, so it is never rewritten; files of
   the current manifest are therefore never modified.
3. Commit: write the new ``manifest.json`` to a temporary file, fsync, rename over the old one,
   fsync the directory. This rename is the single commit point; before it the old manifest and
   its untouched files are what every reader sees, after it the new manifest and its complete files.
4. Garbage-collect publisher-owned files (the content-addressed pattern above, and temporaries of
   interrupted publishes) that neither the new nor the previous manifest references. The previous
   generation is kept so a server still loading it never loses a file.

Nothing else in the directory is ever touched (README.md, pareto.png, manifest.schema.json,
sample images...). ``hook(step)`` is called between steps; tests use it to inject crashes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..errors import UserError
from ..export.manifest import ManifestError, check_model_files, sha256_file, validate_manifest
from ..paths import repo_path

MANIFEST = "manifest.json"
TEMP_PREFIX = ".zoo-tmp-"
# <model name>.<first 12 hex digits of the file's sha256>.onnx | .reference.json
OWNED_FILE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\.[0-9a-f]{12}\.(onnx|reference\.json)$")

Hook = Callable[[str], None]


@dataclass
class PublishResult:
    zoo_dir: Path
    manifest: dict[str, Any]
    written: list[str] = field(default_factory=list)  # files copied in by this publish
    reused: list[str] = field(default_factory=list)  # content-addressed files already present
    removed: list[str] = field(default_factory=list)  # files garbage-collected
    kept_previous: list[str] = field(default_factory=list)  # previous generation's files still present

    def to_dict(self) -> dict[str, Any]:
        return {
            "zooDir": repo_path(self.zoo_dir),
            "models": [m["name"] for m in self.manifest["models"]],
            "written": self.written,
            "reused": self.reused,
            "removed": self.removed,
            "keptPrevious": self.kept_previous,
        }


def content_name(stem: str, digest: str, suffix: str) -> str:
    return f"{stem}.{digest[:12]}{suffix}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def publish_lock(zoo_dir: Path) -> Iterator[None]:
    """Exclusive lock on the zoo directory itself (flock on its descriptor: no lock file to leave)."""
    fd = os.open(zoo_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another publish into {zoo_dir} is in progress (the directory is locked)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _temp(zoo_dir: Path, name: str) -> Path:
    return zoo_dir / f"{TEMP_PREFIX}{os.getpid()}-{name}"


def _copy_durably(source: Path, target: Path, zoo_dir: Path) -> None:
    tmp = _temp(zoo_dir, target.name)
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_durably(content: bytes | str, target: Path, zoo_dir: Path) -> None:
    tmp = _temp(zoo_dir, target.name)
    try:
        with open(tmp, "wb") as handle:
            handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def referenced_files(manifest: Mapping[str, Any] | None) -> set[str]:
    """Every file a manifest names (models and their reference pairs)."""
    if not manifest:
        return set()
    files = set()
    for model in manifest.get("models", []):
        if isinstance(model, dict):
            if isinstance(model.get("file"), str):
                files.add(model["file"])
            reference = model.get("reference")
            if isinstance(reference, dict) and isinstance(reference.get("file"), str):
                files.add(reference["file"])
    return files


def read_manifest(zoo_dir: Path) -> dict[str, Any] | None:
    """The zoo's current manifest, or None when there is none (or it is not even JSON)."""
    path = zoo_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _place(source: Path, name: str, suffix: str, zoo_dir: Path, result: PublishResult, hook: Hook) -> str:
    digest = sha256_file(source)
    target_name = content_name(name, digest, suffix)
    target = zoo_dir / target_name
    if target.is_file() and sha256_file(target) == digest:
        result.reused.append(target_name)
        return target_name
    _copy_durably(source, target, zoo_dir)
    result.written.append(target_name)
    hook(f"wrote:{target_name}")
    return target_name


def publish_zoo(
    manifest: Mapping[str, Any],
    source_dir: Path,
    zoo_dir: Path,
    *,
    side_files: Mapping[str, bytes | str] | None = None,
    hook: Hook | None = None,
) -> PublishResult:
    """Publish ``manifest`` (whose files are in ``source_dir``) into ``zoo_dir`` atomically.

    The manifest's ``file`` / ``reference.file`` names are rewritten to their content-addressed
    names; the manifest is validated (schema + invariants) and every file checked against its
    sha256 in ``zoo_dir`` before the commit. ``side_files`` (name -> content: the model card,
    the chart) are replaced atomically after the commit; servers never read them.
    """
    hook = hook or (lambda step: None)
    source_dir, zoo_dir = Path(source_dir), Path(zoo_dir)
    for name in side_files or {}:
        if "/" in name or name in (MANIFEST, ".", "..") or OWNED_FILE_RE.match(name):
            raise ValueError(f"invalid side file name {name!r}")
    zoo_dir.mkdir(parents=True, exist_ok=True)
    new = json.loads(json.dumps(manifest))  # a deep copy that is certainly plain JSON
    try:
        validate_manifest(new)
    except ManifestError as exc:
        raise UserError(f"refusing to publish an invalid manifest: {exc}") from None
    with publish_lock(zoo_dir):
        previous = read_manifest(zoo_dir)
        result = PublishResult(zoo_dir, new)
        hook("locked")
        for model in new["models"]:
            source = source_dir / model["file"]
            if not source.is_file() or sha256_file(source) != model["sha256"]:
                raise UserError(f"{source} is missing or does not match the sha256 of model {model['name']}")
            model["file"] = _place(source, model["name"], ".onnx", zoo_dir, result, hook)
            if "reference" in model:
                ref_source = source_dir / model["reference"]["file"]
                if not ref_source.is_file():
                    raise UserError(f"reference pair {ref_source} of model {model['name']} is missing")
                model["reference"]["file"] = _place(
                    ref_source, model["name"], ".reference.json", zoo_dir, result, hook
                )
        fsync_dir(zoo_dir)
        hook("files-durable")
        validate_manifest(new)
        problems = check_model_files(new, zoo_dir)
        if problems:
            raise UserError("published files do not match the manifest: " + "; ".join(problems.values()))
        hook("before-commit")
        write_durably(json.dumps(new, indent=2) + "\n", zoo_dir / MANIFEST, zoo_dir)
        fsync_dir(zoo_dir)
        hook("committed")
        for name, content in (side_files or {}).items():
            write_durably(content, zoo_dir / name, zoo_dir)
        hook("side-files")
        keep = referenced_files(new) | referenced_files(previous)
        result.kept_previous = sorted(referenced_files(previous) - referenced_files(new))
        result.removed = collect_garbage(zoo_dir, keep, hook)
        fsync_dir(zoo_dir)
        hook("done")
    return result


def collect_garbage(zoo_dir: Path, keep: set[str], hook: Hook | None = None) -> list[str]:
    """Remove publisher-owned files not in ``keep`` (caller holds the lock); returns their names."""
    removed = []
    for entry in sorted(zoo_dir.iterdir()):
        name = entry.name
        owned = OWNED_FILE_RE.match(name) or name.startswith(TEMP_PREFIX)
        if not owned or name in keep or not entry.is_file():
            continue
        entry.unlink(missing_ok=True)
        removed.append(name)
        if hook is not None:
            hook(f"removed:{name}")
    return removed
