"""Where things are in the repository: its root, files named by repository-relative paths (what
reports, search results and model cards print, so they do not show one machine's directories),
and the commit the code runs from."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_path(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it, else as given."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        return str(path)  # a name, not a file here (e.g. the official checkpoint's marker)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return str(path)


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=REPO_ROOT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None
