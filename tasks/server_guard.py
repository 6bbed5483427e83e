"""Prefect's temporary API server, stopped when the hoprec process that started it dies.

Prefect starts its ephemeral server as a `python -m uvicorn` child and stops it on a clean exit;
a SIGKILL of the parent leaves that child running for good. `guard_server_child()` makes
Prefect start it through `python -m hoprec.tasks.server_guard PARENT_PID uvicorn-args...`,
which runs the same uvicorn command and watches its parent: once the parent is gone it shuts
the server down (SIGTERM to itself, so uvicorn's lifespan closes the database cleanly).
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from typing import Any

POLL_S = 1.0


class _GuardedSubprocess:
    """Prefect's server module's `subprocess`, whose Popen starts uvicorn under the guard."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:  # noqa: N802
        if list(args[1:3]) == ["-m", "uvicorn"]:
            args = [args[0], "-m", __name__, str(os.getpid()), *args[3:]]
        return subprocess.Popen(args, **kwargs)


def guard_server_child() -> None:
    """Route Prefect's ephemeral-server start through the guard (idempotent)."""
    from prefect.server.api import server

    if not isinstance(server.subprocess, _GuardedSubprocess):
        server.subprocess = _GuardedSubprocess()  # type: ignore[assignment]


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(15)  # a server that will not stop is ended hard
    os._exit(1)


def main(argv: list[str]) -> None:
    parent, uvicorn_args = int(argv[0]), argv[1:]
    if os.getppid() != parent:
        return  # the parent died before we started
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    sys.argv = ["uvicorn", *uvicorn_args]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
