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


def test_machine_faults_are_worded_with_the_path_and_what_to_do():
    import duckdb
    import pytest

    from hoprec.tasks.errors import EnvironmentProblem, environment_problem, raise_if_environment

    with pytest.raises(OSError) as full:
        with open("/dev/full", "w") as fh:
            fh.write("x" * 100_000)
    assert environment_problem(full.value).startswith("the disk is full")
    with pytest.raises(duckdb.Error) as db_full:
        duckdb.connect().execute(
            "COPY (SELECT range FROM range(100000)) TO '/dev/full' (FORMAT csv)"
        )
    words = environment_problem(db_full.value)
    assert words and words.startswith('the disk is full: Could not write file "/dev/full"')
    assert "run the command again" in words
    with pytest.raises(PermissionError) as denied:
        open("/sys/kernel/hoprec-test", "w")
    assert environment_problem(denied.value).startswith(
        "permission denied (/sys/kernel/hoprec-test)"
    )
    with pytest.raises(EnvironmentProblem):
        raise_if_environment(full.value)
    # a bad input or a bug is not a machine fault
    assert environment_problem(FileNotFoundError(2, "No such file", "x.csv")) is None
    assert environment_problem(duckdb.ParserException("syntax error")) is None


def test_an_unusable_state_dir_is_one_line_naming_its_setting(tmp_path):
    (tmp_path / "afile").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHONSAFE"))}
    env["HOPREC_HOME"] = str(tmp_path / "afile" / "state")
    hoprec = str(Path(sys.executable).with_name("hoprec"))
    res = subprocess.run(
        [hoprec, "prepare", "--dataset", "d"], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"hoprec prepare: error: cannot create the folder {tmp_path}/afile/state "
        "(set by HOPREC_HOME, default ./.hoprec): Not a directory"
    )


def _small_disk(path: Path) -> bool:
    """A 2 MiB tmpfs at `path`, where the machine lets us mount one (root in a container)."""
    path.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True
    )
    return res.returncode == 0


def test_a_full_disk_stops_ingest_with_one_line_and_commits_nothing(tmp_path, prefect_api, capsys):
    import duckdb
    import pytest

    from hoprec.flows.cli import main

    disk = tmp_path / "disk"
    if not _small_disk(disk):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        big = tmp_path / "big.csv"
        duckdb.execute(
            f"COPY (SELECT 'u' || (range % 9973) AS u, 'i' || (range * 7 % 99991) AS i, "
            f"881250100 + range AS t FROM range(200000)) TO '{big}' (HEADER)"
        )
        small = tmp_path / "small.csv"
        small.write_text("u,i,t\na,1,881250949\n")
        wh = disk / "w.duckdb"
        args = ["ingest", "--dataset", "d", "--format", "csv", "--warehouse", str(wh)]
        args += ["--map", "user_id=u", "--map", "item_id=i", "--map", "ts=t"]
        assert main([*args, str(big), str(small)]) == 2
        err = capsys.readouterr().err
        assert "hoprec ingest: error: the disk is full" in err and "Traceback" not in err
        with duckdb.connect(str(wh), read_only=True) as c:
            assert c.execute("SELECT count(*) FROM interactions").fetchone() == (0,)
            assert c.execute("SELECT count(*) FROM ingest_batches").fetchone() == (0,)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert main([*args, str(big), str(small)]) == 0  # with room, the rerun loads both
        with duckdb.connect(str(wh), read_only=True) as c:
            assert c.execute("SELECT count(*) FROM interactions").fetchone() == (200_001,)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
