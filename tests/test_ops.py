"""Operations: finding the running server (stale records ignored), backfill runs through a
deployment (idempotency keys), infra/prefect.yaml, and the ui/worker/deploy commands; the slow
test runs all of it against a real local server with a process worker."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hoprec.tasks import defaults as ops
from hoprec.tasks import discovery
from hoprec.tasks.ops.deployments import load_specs
from hoprec.tasks.ops.dispatch import backfill_runs, date_text, idempotency_key

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "infra" / "prefect.yaml"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        ok = self.path == "/api/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"true" if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_api() -> Iterator[str]:
    """A stand-in server that answers /api/health like Prefect's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- discovery ---------------------------------------------------------------------------


def test_a_live_record_is_found(tmp_path, health_api):
    path = tmp_path / "server.json"
    discovery.write_server(path, {"url": health_api, "pid": os.getpid()})
    assert discovery.healthy(health_api)
    assert discovery.live_server(path)["url"] == health_api


def test_stale_or_broken_records_are_ignored(tmp_path, health_api):
    path = tmp_path / "server.json"
    assert discovery.live_server(path) is None  # no file
    discovery.write_server(path, {"url": health_api, "pid": dead_pid()})
    assert discovery.live_server(path) is None  # its process is gone
    silent = f"http://127.0.0.1:{free_port()}/api"
    discovery.write_server(path, {"url": silent, "pid": os.getpid()})
    start = time.monotonic()
    assert discovery.live_server(path) is None  # nothing answers
    assert time.monotonic() - start < 2
    path.write_text("{not json")
    assert discovery.live_server(path) is None
    path.write_text('["a list"]')
    assert discovery.live_server(path) is None


def test_a_record_is_removed_only_by_its_process(tmp_path):
    path = tmp_path / "server.json"
    discovery.write_server(path, {"url": "http://x/api", "pid": 123})
    discovery.remove_server(path, os.getpid())
    assert path.exists()
    discovery.remove_server(path, 123)
    assert not path.exists()


def test_settings_point_prefect_at_the_running_server(tmp_path, health_api, monkeypatch):
    from hoprec.tasks.settings import server_file, use_running_server

    monkeypatch.setenv("HOPREC_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "")  # restored after the test
    assert use_running_server() is None and os.environ["PREFECT_API_URL"] == ""
    discovery.write_server(server_file(), {"url": health_api, "pid": dead_pid()})
    assert use_running_server() is None and os.environ["PREFECT_API_URL"] == ""
    discovery.write_server(server_file(), {"url": health_api, "pid": os.getpid()})
    assert use_running_server() == health_api and os.environ["PREFECT_API_URL"] == health_api


def test_commands_that_need_a_server_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    from hoprec.flows.cli import main

    monkeypatch.setenv("HOPREC_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "")
    for argv in (
        ["deploy"],
        ["worker", "--pool", "gpu"],
        ["backfill", "--dataset", "d", "--start", "1998-01-01", "--end", "1998-01-02"]
        + ["--deployment"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no Prefect server" in err[0] and "hoprec ui" in err[0], err


def test_ui_refuses_a_second_server_and_a_busy_port(tmp_path, health_api, monkeypatch):
    from hoprec.flows.ops import ui_command
    from hoprec.tasks.settings import server_file

    monkeypatch.setenv("HOPREC_HOME", str(tmp_path))
    discovery.write_server(server_file(), {"url": health_api, "ui": "u", "pid": os.getpid()})
    with pytest.raises(ValueError, match="already runs at u"):
        ui_command()
    server_file().unlink()
    port = int(health_api.split(":")[-1].split("/")[0])
    with pytest.raises(ValueError, match=f"port {port} .* in use"):
        ui_command(port=port)


# --- backfill through a deployment ---------------------------------------------------------


def test_idempotency_keys_follow_the_parameters_not_their_order():
    a = idempotency_key("backfill/backfill", {"dataset": "d", "start": "1998-01-01", "window": 5})
    b = idempotency_key("backfill/backfill", {"window": 5, "start": "1998-01-01", "dataset": "d"})
    assert a == b
    assert a != idempotency_key("backfill/backfill", {"dataset": "d", "start": "1998-01-08"})
    assert a != idempotency_key("backfill/other", {"dataset": "d", "start": "1998-01-01"})
    assert a != idempotency_key(
        "backfill/backfill", {"dataset": "d", "start": "1998-01-01", "window": 3}
    )


def test_backfill_runs_one_a_date_with_defaults_in_the_key():
    import inspect
    from datetime import datetime

    from hoprec.flows.backfill import backfill_command

    defaults = {
        n: p.default
        for n, p in inspect.signature(backfill_command).parameters.items()
        if p.default is not inspect.Parameter.empty and n != "deployment"
    }
    params = {"dataset": "d", "start": "1998-03-01", "end": "1998-03-15", "every": "1w"}
    runs = backfill_runs("backfill/backfill", params, defaults)
    assert [r["date"] for r in runs] == ["1998-03-01", "1998-03-08", "1998-03-15"]
    assert date_text(datetime(1998, 3, 1, 12)) == "1998-03-01 12:00:00"
    assert [r["name"] for r in runs][0] == "backfill d as of 1998-03-01"
    assert all(r["parameters"]["start"] == r["parameters"]["end"] == r["date"] for r in runs)
    assert "every" not in runs[0]["parameters"]
    assert len({r["key"] for r in runs}) == 3
    # naming a default changes nothing; another value is another run; `every` is no part of it
    same = backfill_runs("backfill/backfill", {**params, "window": 5, "every": "7d"}, defaults)
    assert [r["key"] for r in same] == [r["key"] for r in runs]
    other = backfill_runs("backfill/backfill", {**params, "window": 3}, defaults)
    assert not {r["key"] for r in other} & {r["key"] for r in runs}


# --- infra/prefect.yaml ----------------------------------------------------------------------


def test_prefect_yaml_pools_schedules_and_gpu_tags():
    specs = {s.name: s for s in load_specs(PREFECT_YAML)}  # every cron parses
    assert {s.work_pool for s in specs.values()} == set(ops.POOLS.values())
    weekly = specs["weekly-retrain-ml100k"]
    assert weekly.entrypoint == "flows/retrain.py:retrain_flow"
    assert weekly.schedules and weekly.parameters["dataset"] == "ml100k"
    assert specs["retrain"].entrypoint == weekly.entrypoint and not specs["retrain"].schedules
    trains = [s for s in specs.values() if s.entrypoint.split(":")[1] in ("train_flow",
              "retrain_flow", "compare_flow")]  # fmt: skip
    assert trains and all(ops.GPU_TAG in s.tags and s.work_pool == "gpu-pool" for s in trains)
    assert all(s.work_pool == "gpu-pool" for s in specs.values() if ops.GPU_TAG in s.tags)
    backfill = specs["backfill"]
    assert backfill.entrypoint == "flows/backfill.py:backfill_flow"
    assert {"start", "end", "every"} <= set(backfill.parameters)
    assert ops.BACKFILL_DEPLOYMENT == f"backfill/{backfill.name}"
    assert any(s.schedules for s in specs.values() if s.name.startswith("weekly-relations"))


def test_a_bad_cron_or_a_missing_pool_is_one_line(tmp_path):
    bad = tmp_path / "prefect.yaml"
    bad.write_text(
        "deployments:\n  - name: x\n    entrypoint: flows/x.py:f\n    work_pool: {name: p}\n"
        "    schedules: [{cron: '61 3 * * *'}]\n"
    )
    with pytest.raises(ValueError, match="bad cron schedule '61 3"):
        load_specs(bad)
    bad.write_text("deployments:\n  - name: x\n    entrypoint: flows/x.py:f\n")
    with pytest.raises(ValueError, match="no work_pool"):
        load_specs(bad)


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["ui"], ["--port", str(ops.UI_PORT)]),
        (["worker"], ["--pool", "cpu-pool", "gpu-pool", "--run-once"]),
        (["deploy"], ["--prefect-file"]),
        (["backfill"], ["--deployment", ops.BACKFILL_DEPLOYMENT]),
    ],
)
def test_help_of_the_operations_commands(argv, words, capsys):
    from hoprec.flows.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(w in out for w in words), out


def test_backfill_deployment_option_defaults_to_the_backfill_deployment():
    from hoprec.flows.cli import build_parser

    base = ["backfill", "--dataset", "d", "--start", "1998-01-01", "--end", "1998-01-02"]
    assert build_parser().parse_args(base + ["--deployment"]).deployment == "backfill/backfill"
    assert build_parser().parse_args(base + ["--deployment", "a/b"]).deployment == "a/b"
    assert "deployment" not in vars(build_parser().parse_args(base))


# --- a real server (slow) --------------------------------------------------------------------


def hoprec(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HOPREC_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "hoprec.flows.cli", "-q", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def ui_server(tmp_path) -> Iterator[tuple[Path, str]]:
    """`hoprec ui` on a free port with a fresh state dir: (state dir, API URL)."""
    home = tmp_path / "state"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HOPREC_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hoprec.flows.cli", "ui", "--port", str(free_port())],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    record = home / "prefect" / ops.SERVER_FILE
    deadline = time.monotonic() + ops.SERVER_START_TIMEOUT_S
    while not record.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert record.exists(), proc.stdout.read() if proc.poll() is not None else "timeout"
        yield home, json.loads(record.read_text())["url"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped" in out and not record.exists()


def api(url: str, fn):
    """Run `fn(client)` against the server at `url` in a fresh Prefect settings context."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as client:
            return await fn(client)

    with temporary_settings(updates={PREFECT_API_URL: url}):
        return asyncio.run(go())


def tiny_csv(path: Path) -> Path:
    """20 users x 8 items, one event a day each: every user and item passes a 5-core."""
    lines = ["user_id,item_id,timestamp"]
    for u in range(20):
        for i in range(8):
            day = (u + i) % 28  # 883612800: 1998-01-01 00:00 UTC
            lines.append(f"u{u},i{(u + i) % 8},{883612800 + day * 86400 + i * 3600}")
    path.write_text("\n".join(lines) + "\n")
    return path


async def _counts(client):
    deployments = await client.read_deployments()
    pools = await client.read_work_pools()
    limits = await client.read_global_concurrency_limits(limit=100)
    flow_runs = await client.read_flow_runs()
    return deployments, pools, limits, flow_runs


def test_ui_then_deploy_twice_creates_nothing_new(ui_server):
    """`hoprec deploy` finds `hoprec ui`'s server (it needs one) and is idempotent."""
    home, url = ui_server
    first = hoprec(home, "deploy")
    assert first.returncode == 0, first.stderr
    assert "| created |" in first.stdout
    deployments, pools, limits, flow_runs = api(url, _counts)
    second = hoprec(home, "deploy")
    assert second.returncode == 0, second.stderr
    assert "0 created or updated" in second.stdout
    assert "| created |" not in second.stdout and "| updated" not in second.stdout
    again = api(url, _counts)
    assert [len(x) for x in again[:3]] == [len(deployments), len(pools), len(limits)]
    assert {d.id for d in again[0]} == {d.id for d in deployments}
    assert {p.name for p in pools} >= {"cpu-pool", "gpu-pool"}
    assert [(x.name, x.limit) for x in limits if x.name == "tag:gpu"] == [("tag:gpu", 1)]
    weekly = next(d for d in deployments if d.name == "weekly-retrain-ml100k")
    scheduled = [r for r in again[3] if r.deployment_id == weekly.id]
    assert scheduled and all(r.state.is_scheduled() for r in scheduled)
    assert len(scheduled) == len({r.expected_start_time for r in scheduled})
    assert {r.id for r in again[3]} == {r.id for r in flow_runs}  # the same scheduled runs
    assert f"| {min(r.expected_start_time for r in flow_runs)}" in second.stdout


@pytest.mark.slow
def test_backfill_through_the_deployment_and_a_worker(ui_server, tmp_path):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    home, url = ui_server
    # every command finds the server: the flows of ingest and prepare run on it
    csv = tiny_csv(tmp_path / "events.csv")
    args = ["--format", "csv", str(csv)]
    for argv in (["ingest", "--dataset", "tiny", *args], ["prepare", "--dataset", "tiny"]):
        res = hoprec(home, *argv)
        assert res.returncode == 0, res.stderr
    assert hoprec(home, "deploy").returncode == 0
    deployments, _, _, flow_runs = api(url, _counts)
    assert {"ingest tiny", "prepare tiny"} <= {r.name for r in flow_runs}

    # one flow run a date, however often it is asked for
    backfill = "backfill --dataset tiny --start 1998-01-10 --end 1998-01-24 --every 1w".split()
    backfill += ["--kinds", "transitions", "--deployment"]
    outs = [hoprec(home, *backfill) for _ in range(2)]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert outs[0].stdout.count("| created |") == 3 and outs[1].stdout.count("| existing |") == 3
    dep = next(d for d in deployments if d.name == "backfill")

    async def backfill_runs(client):
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep.id]))
        )

    runs = api(url, backfill_runs)
    assert sorted(r.parameters["start"] for r in runs) == ["1998-01-10", "1998-01-17", "1998-01-24"]

    # a run started with Prefect's own CLI, and the backfill runs, done by a process worker
    env = {**os.environ, "PREFECT_API_URL": url}
    params = json.dumps({"dataset": "tiny", "start": "1998-01-20", "end": "1998-01-20",
                         "kinds": ["cooccurrence"]})  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "backfill/backfill"]
        + ["--params", params],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    worker = hoprec(home, "worker", "--pool", "cpu", "--run-once", timeout=600)
    assert worker.returncode == 0, worker.stderr
    runs = api(url, backfill_runs)
    assert len(runs) == 4 and all(r.state.is_completed() for r in runs), [
        (r.name, r.state.name) for r in runs
    ]
    assert "backfill tiny as of 1998-01-17" in {r.name for r in runs}
