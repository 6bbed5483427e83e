"""Where hoprec keeps its state, and the settings a command applies when it starts.

Everything a run writes lives under one state directory (default `.hoprec/` in the working
directory, override with HOPREC_HOME), so a checkout is self-contained and Prefect never writes
into the user's home unless asked to.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path


def state_dir() -> Path:
    """The project state directory (HOPREC_HOME, default ./.hoprec)."""
    return Path(os.environ.get("HOPREC_HOME", ".hoprec")).expanduser().absolute()


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def checked_name(value: str, what: str = "dataset") -> str:
    """A dataset (or model, build) name that is safe in a path: letters, digits, '.', '_' and
    '-', not starting with a dot; anything else is an error that names it."""
    if not isinstance(value, str) or not NAME.match(value) or ".." in value:
        raise ValueError(
            f"{what} name {value!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(it becomes a folder name under the state directory)"
        )
    return value


def stage_dir(stage: str, name: str, what: str = "dataset") -> Path:
    """`<state dir>/<stage>/<name>`, with `name` checked so nothing lands outside the state dir."""
    return state_dir() / stage / checked_name(name, what)


def default_warehouse() -> Path:
    """The warehouse path: HOPREC_WAREHOUSE, else <state>/warehouse.duckdb."""
    env = os.environ.get("HOPREC_WAREHOUSE")
    return Path(env).expanduser().absolute() if env else state_dir() / "warehouse.duckdb"


def cache_dir() -> Path:
    """User cache for embedded assets (HOPREC_CACHE, else the platform's user cache dir)."""
    env = os.environ.get("HOPREC_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hoprec"))


class StateDirError(ValueError):
    """A state folder that cannot be created or written."""


def make_dir(path: Path, setting: str) -> Path:
    """Create a folder hoprec writes to, or fail with one line naming it and its setting."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(
            f"cannot create the folder {path} (set by {setting}): {exc.strerror}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else "")
        ) from None
    if not os.access(path, os.W_OK):
        raise StateDirError(f"the folder {path} (set by {setting}) is not writable")
    return path


def apply_settings() -> None:
    """Point Prefect at the project state dir, keep it offline and let hoprec's progress logs
    through, unless the user said otherwise.

    Called when a command (or the test session) starts, never at import. It must run before
    `prefect` is imported: Prefect reads its settings at import time.
    """
    if "PREFECT_HOME" not in os.environ:
        make_dir(state_dir(), "HOPREC_HOME, default ./.hoprec")
        os.environ["PREFECT_HOME"] = str(state_dir() / "prefect")
    make_dir(Path(os.environ["PREFECT_HOME"]).expanduser(), "PREFECT_HOME")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    # hoprec's own loggers (training progress, ...) also reach the run logs in the UI
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "hoprec")
    # a fresh state dir migrates Prefect's database first; on 2 busy cores that can take
    # longer than Prefect's 20 s default before the ephemeral API answers
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Prefect's temporary API server starts as `python -m uvicorn` in the working directory, where
    # a file named like a stdlib module (inspect.py) would shadow it: Python >= 3.11 then keeps
    # the working directory off the child's sys.path
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    # progress of long work (training steps, ...) at INFO; Prefect copies its handlers onto the
    # `hoprec` logger (PREFECT_LOGGING_EXTRA_LOGGERS), so the lines reach the console and the UI
    if logging.getLogger("hoprec").level == logging.NOTSET:
        logging.getLogger("hoprec").setLevel(logging.INFO)
    # DuckDB's Arrow results of `con.execute(...)` warn that con.sql() would skip a copy; con.sql()
    # refuses to run while a caller's result is open, so the copy stays and its warning is noise
    warnings.filterwarnings(
        "ignore", message="Arrow output on a DB-API result", category=UserWarning
    )
    if not os.environ.get("PREFECT_API_URL"):
        use_running_server()
    if not os.environ.get("PREFECT_API_URL"):
        # the ephemeral server Prefect will start (importing this module anyway) must not
        # outlive a killed hoprec process
        from .server_guard import guard_server_child

        guard_server_child()


def server_file() -> Path:
    """Where `hoprec ui` says which server it runs: <state dir>/prefect/server.json."""
    from .defaults import SERVER_FILE

    return state_dir() / "prefect" / SERVER_FILE


def use_running_server() -> str | None:
    """Point Prefect at the server `hoprec ui` runs for this state dir, when it answers now:
    every command then uses it (its runs show in the UI) instead of starting a temporary
    server (seconds each). A stale file (its process gone, no answer in 0.3 s) is ignored."""
    from .discovery import live_server

    record = live_server(server_file())
    if record is None:
        return None
    os.environ["PREFECT_API_URL"] = record["url"]
    return str(record["url"])
