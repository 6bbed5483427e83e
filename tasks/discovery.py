"""Finding the Prefect server that `hoprec ui` runs, so other commands use it instead of
starting a temporary one each.

`hoprec ui` writes `<state dir>/prefect/server.json` ({"url", "ui", "pid"}) once its server
answers, and removes it at exit. A file whose process is gone (a killed `hoprec ui`) or whose
server does not answer within a fraction of a second is ignored, so a stale file never slows a
command down or points it at nothing. Only the standard library: this runs before Prefect is
imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .defaults import HEALTH_TIMEOUT_S


def pid_alive(pid: Any) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def healthy(api_url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether the Prefect API at `api_url` (…/api) answers /health with true in time."""
    import urllib.request  # here: a command with no server record never pays for it

    # a local server is reached directly, never through a proxy the environment names
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(api_url.rstrip("/") + "/health", timeout=timeout) as response:
            return bool(response.status == 200 and json.loads(response.read() or b"null"))
    except (OSError, ValueError):
        return False


def read_server(path: Path) -> dict[str, Any] | None:
    """The discovery record, or None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def live_server(path: Path, timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any] | None:
    """The record of a server that runs and answers now, else None (stale files ignored)."""
    record = read_server(path)
    if record is None or not pid_alive(record.get("pid")):
        return None
    return record if healthy(record["url"], timeout) else None


def write_server(path: Path, record: dict[str, Any]) -> None:
    """Write the record atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def remove_server(path: Path, pid: int) -> None:
    """Remove the record if it is this process's (another `hoprec ui` may have replaced it)."""
    record = read_server(path)
    if record is not None and record.get("pid") == pid:
        path.unlink(missing_ok=True)


def require_server(timeout: float = 5.0) -> str:
    """The API URL of the server this command uses; a one-line error when there is none."""
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        raise ValueError(
            "no Prefect server: start one with `hoprec ui` (other commands then find it) "
            "or set PREFECT_API_URL"
        )
    if not healthy(url, timeout):
        raise ValueError(f"the Prefect server at {url} does not answer (is it running?)")
    return url
