"""Environment faults: a killed command leaves no server behind; an unwritable state dir or
file, and a full disk, are one clear error line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FLOW_THAT_WAITS = """
from hoprec.tasks.settings import apply_settings
apply_settings()
import time
from prefect import flow

@flow
def wait():
    print("running", flush=True)
    time.sleep(600)

wait()
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_command_leaves_no_prefect_server_running(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HOPREC_HOME"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-c", FLOW_THAT_WAITS], env=env, stdout=subprocess.PIPE, text=True
    )
    servers: list[int] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        servers = [c for c in _children(proc.pid) if _alive(c)]
        assert servers, "the flow runs against a temporary server child"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while any(_alive(s) for s in servers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(s) for s in servers), "the server outlived the killed command"
    finally:
        proc.kill()
        for s in servers:
            if _alive(s):
                os.kill(s, signal.SIGKILL)
