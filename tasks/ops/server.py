"""The local Prefect server of `hoprec ui`: the settings its UI needs, started as a child that
dies with its parent (the same guard as Prefect's temporary server), and waited for."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..defaults import SERVER_START_TIMEOUT_S
from ..discovery import healthy


class ServerError(ValueError):
    """The server could not start: one line, no traceback (the log has the rest)."""


def urls(host: str, port: int) -> tuple[str, str]:
    """(UI URL, API URL) of a server on host:port."""
    ui = f"http://{host}:{port}"
    return ui, f"{ui}/api"


def check_port_free(host: str, port: int) -> None:
    """A one-line error when something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ValueError(
                f"port {port} on {host} is in use ({exc.strerror}): choose another with --port"
            ) from None


def server_env(host: str, port: int, prefect_home: Path) -> dict[str, str]:
    """The environment of the server process: its port for the API and the UI, the API URL the
    UI calls, its home (database) under the state dir, no analytics, the UI on."""
    ui, api = urls(host, port)
    env = dict(os.environ)
    for name in ("PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_WEBSERVER_ONLY"):
        env.pop(name, None)
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_API_URL=api,
        PREFECT_UI_API_URL=api,
        PREFECT_UI_URL=ui,
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="true",
        PREFECT_UI_ENABLED="true",
        PREFECT__SERVER_FINAL="1",
        PYTHONSAFEPATH="1",  # a stray inspect.py in the working directory shadows nothing
    )
    return env


def server_command(host: str, port: int) -> list[str]:
    """uvicorn on Prefect's app factory (API, UI and the scheduler and other services), run
    through hoprec's server guard so it stops when this process dies, even by SIGKILL."""
    spec = importlib.util.find_spec("prefect")
    app_dir = str(Path(spec.origin).parent.parent) if spec and spec.origin else "."
    return [
        sys.executable,
        "-m",
        "hoprec.tasks.server_guard",
        str(os.getpid()),
        "--app-dir",
        app_dir,
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--lifespan",
        "on",
    ]


def start_server(host: str, port: int, prefect_home: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start the server, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            server_command(host, port),
            env=server_env(host, port, prefect_home),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def wait_healthy(
    proc: subprocess.Popen[bytes], api: str, log: Path, timeout: float = SERVER_START_TIMEOUT_S
) -> float:
    """Seconds until the server answered /api/health; a one-line error (with the log's last
    line) when it exits first or takes longer than `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise ServerError(f"the Prefect server exited ({proc.returncode}): {last_line(log)}")
        if healthy(api, 1.0):
            return time.monotonic() - start
        time.sleep(0.25)
    raise ServerError(f"the Prefect server did not answer in {timeout:.0f} s (log: {log})")


def stop_server(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM (uvicorn closes the database cleanly), then SIGKILL after `grace_s`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def last_line(log: Path) -> str:
    """The last non-empty line of a log file (what a failed start said)."""
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(no output)"
