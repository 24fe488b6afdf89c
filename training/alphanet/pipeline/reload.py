"""Stage 10: tell a running server to load the zoo just published.

Two ways, both optional:

* SIGHUP to a process id (``--reload-pid PID|PIDFILE`` or ``publish.reload_pid_file``): the
  server (server/main.ts) builds and warms the new zoo beside the old one and swaps; if the new
  zoo cannot serve, the old one keeps serving and the server logs why. The signal carries no
  answer, so the report only says it was sent.
* ``POST <publish.reload_url>`` (e.g. ``http://127.0.0.1:8080/admin/reload``) with
  ``Authorization: Bearer $ADMIN_TOKEN``: same swap, but the answer says which models now serve,
  or why the reload was refused (the old zoo still serving).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import UserError

TOKEN_ENV = "ADMIN_TOKEN"


class ReloadFailed(Exception):
    """The server was reached but refused or failed the reload (the previous zoo keeps serving)."""


def read_pid(spec: str) -> int:
    """A pid given as a number or as a file holding one."""
    text = spec.strip()
    if not text.isdigit():
        path = Path(text)
        if not path.is_file():
            raise UserError(f"reload pid: {spec!r} is neither a process id nor a pid file")
        text = path.read_text().strip()
        if not text.isdigit():
            raise UserError(f"reload pid file {path} does not hold a process id (got {text[:40]!r})")
    pid = int(text)
    if pid <= 1:
        raise UserError(f"reload pid must be a server process id, got {pid}")
    return pid


def send_sighup(pid: int) -> dict[str, Any]:
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReloadFailed(f"no process {pid} to signal (is the server running?)") from None
    except PermissionError:
        raise ReloadFailed(f"not allowed to signal process {pid}") from None
    return {"method": "SIGHUP", "pid": pid, "note": "signal sent; the server logs the reload result"}


def post_reload(url: str, timeout_s: float, token: str | None = None) -> dict[str, Any]:
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError(f"publish.reload_url needs the admin token in the environment variable {TOKEN_ENV}")
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read().decode("utf-8") or "{}")
            return {"method": "POST", "url": url, "status": response.status, "result": body}
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read().decode("utf-8"))
            message = f"{body.get('code', exc.code)}: {body.get('message', '')}"
        except ValueError:
            message = str(exc)
        raise ReloadFailed(f"reload refused by {url} (HTTP {exc.code}) -- {message}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReloadFailed(f"cannot reach {url}: {reason}") from None
