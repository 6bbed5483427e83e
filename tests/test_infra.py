"""infra/: the compose file is wired, the GPU job template is one Prefect accepts, and the Prefect
server really runs on PostgreSQL (slow: a throwaway cluster on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prefect
import pytest
import yaml
from prefect.server.schemas.actions import DeploymentCreate, WorkPoolCreate
from prefect.utilities.schema_tools import ValidationError, validate
from prefect.utilities.templating import apply_values
from prefect.workers.base import BaseJobConfiguration
from pydantic import Field

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "infra" / "docker-compose.yml"
GPU_TEMPLATE = ROOT / "infra" / "k8s" / "gpu-pool-job-template.json"
PREFECT_YAML = ROOT / "infra" / "prefect.yaml"


def _services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_services_are_wired_to_each_other() -> None:
    s = _services()
    assert {"postgres", "prefect", "worker", "gpu-worker"} <= set(s)
    server_env = s["prefect"]["environment"]
    db_url = server_env["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db_url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in db_url
    assert server_env["PREFECT_SERVER_API_PORT"] == "4200"
    assert server_env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert s["prefect"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # the server image is the Prefect the project pins, as is infra/prefect.yaml
    assert f":{prefect.__version__}-" in s["prefect"]["image"]
    assert yaml.safe_load(PREFECT_YAML.read_text())["prefect-version"] == prefect.__version__

    worker = s["worker"]
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect:4200/api"
    assert worker["depends_on"]["prefect"]["condition"] == "service_healthy"
    assert "--pool cpu-pool" in worker["command"] and "--type process" in worker["command"]
    assert (COMPOSE.parent / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    # the worker's HOPREC_HOME is a named volume, so the warehouse outlives the container
    home = worker["environment"]["HOPREC_HOME"]
    assert any(v.split(":")[1] == home for v in worker["volumes"])
    gpu = s["gpu-worker"]
    assert gpu["profiles"] == ["gpu"] and "--pool gpu-pool" in gpu["command"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert gpu["volumes"] == worker["volumes"]  # one warehouse for both pools
    # the pools the workers serve are the ones the deployments name
    pools = {
        d["work_pool"]["name"] for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    }
    assert pools == {"cpu-pool", "gpu-pool"}


def _compose_cli() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1): `config` needs no daemon."""
    if shutil.which("docker"):
        ok = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        if ok:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    out = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


def _template() -> dict[str, Any]:
    return json.loads(GPU_TEMPLATE.read_text())


class _K8sJobConfiguration(BaseJobConfiguration):
    """The fields prefect-kubernetes' job configuration adds (it is not installed here)."""

    job_manifest: dict[str, Any] = Field(default_factory=dict)
    namespace: str = "default"
    cluster_config: Any = None
    job_watch_timeout_seconds: int | None = None
    pod_watch_timeout_seconds: int = 60
    stream_output: bool = True


def _render(template: dict[str, Any], values: dict[str, Any]) -> _K8sJobConfiguration:
    """What `BaseJobConfiguration.from_template_and_values` does (schema defaults, then the
    values, into the job configuration), minus its block lookups, which need an API."""
    props = template["variables"]["properties"]
    variables = {k: v["default"] for k, v in props.items() if v.get("default") is not None}
    return _K8sJobConfiguration(**apply_values(template["job_configuration"], variables | values))


def _container(cfg: _K8sJobConfiguration) -> dict[str, Any]:
    return cfg.job_manifest["spec"]["template"]["spec"]["containers"][0]


def test_gpu_job_template_is_accepted_by_prefects_schema_code() -> None:
    t = _template()
    # the server's own check: every {{ placeholder }} is a declared variable
    pool = WorkPoolCreate(name="gpu-pool", type="kubernetes", base_job_template=t)
    assert pool.base_job_template == t
    broken = json.loads(json.dumps(t))
    del broken["variables"]["properties"]["gpu_count"]
    with pytest.raises(ValueError, match="gpu_count"):
        WorkPoolCreate(name="gpu-pool", type="kubernetes", base_job_template=broken)
    # a deployment's job variables are checked against the variables schema
    deployment = {"name": "train", "flow_id": uuid.uuid4(), "job_variables": {"gpu_count": 2}}
    DeploymentCreate.model_validate(deployment).check_valid_configuration(t)
    assert validate({"gpu_count": 4}, t["variables"], raise_on_error=True) == []
    with pytest.raises(ValidationError, match="gpu_count"):
        validate({"gpu_count": 0}, t["variables"], raise_on_error=True, ignore_required=True)


def test_gpu_job_template_requests_nvidia_gpus() -> None:
    t = _template()
    c = _container(_render(t, {}))
    assert c["resources"]["limits"] == {"nvidia.com/gpu": 1}  # null cpu/memory dropped
    assert c["image"] == "hoprec:latest"
    assert _render(t, {}).env == {"HOPREC_HOME": "/var/lib/hoprec"}
    assert {"mountPath": "/var/lib/hoprec", "name": "hoprec-state"} in c["volumeMounts"]
    two = _render(t, {"gpu_count": 2, "cpu_limit": "8", "node_selector": {"gpu": "l4"}})
    assert _container(two)["resources"]["limits"] == {"nvidia.com/gpu": 2, "cpu": "8"}
    assert two.job_manifest["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "l4"}


def test_gpu_job_template_keeps_what_the_kubernetes_worker_requires() -> None:
    """prefect-kubernetes refuses a manifest without these (its _get_base_job_manifest)."""
    m = _render(_template(), {}).job_manifest
    assert (m["apiVersion"], m["kind"]) == ("batch/v1", "Job")
    pod = m["spec"]["template"]["spec"]
    assert (pod["parallelism"], pod["completions"], pod["restartPolicy"]) == (1, 1, "Never")
    assert pod["containers"][0]["name"] == "prefect-job"


def test_gpu_job_template_passes_the_kubernetes_workers_own_validation() -> None:
    """Runs only where prefect-kubernetes is installed (not a project dependency)."""
    worker = pytest.importorskip("prefect_kubernetes.worker")
    from prefect.client.schemas.objects import FlowRun

    cfg = worker.KubernetesWorkerJobConfiguration(**_render(_template(), {}).model_dump())
    cfg.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="fox", flow_id=uuid.uuid4()))
    limits = cfg.job_manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": 1}


# --- Prefect on a real PostgreSQL (slow) ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _sh(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, its output captured as text (the test asserts on it)."""
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def _check(out: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert out.returncode == 0, f"{out.args}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out


def _pg_tools() -> dict[str, str]:
    """The PostgreSQL client and server tools, or a skip naming the missing ones."""
    found = {t: shutil.which(t) for t in ("initdb", "pg_ctl", "psql", "createdb")}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        pytest.skip(f"PostgreSQL tools missing: {missing}")
    return {t: str(p) for t, p in found.items()}


@pytest.fixture
def postgres_db() -> Iterator[tuple[int, str]]:
    """A throwaway PostgreSQL cluster on a free loopback port with a `prefect` database;
    yields (port, psql path) and stops the cluster whatever happens."""
    tools = _pg_tools()
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user for initdb")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
    base = Path(tempfile.mkdtemp(prefix="hoprec-pg-"))  # not under pytest's root-only tmp
    if os.geteuid() == 0:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = base / "data", _free_port()
    started = False
    try:
        cmd = [tools["initdb"], "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]
        _check(_sh(_as_postgres([*cmd, "-E", "UTF8"])))
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [tools["pg_ctl"], "-D", str(data), "-l", str(base / "pg.log"), "-w"]
        _check(_sh(_as_postgres([*pg_ctl, "-o", opts, "start"])))
        started = True
        _check(
            _sh(
                [tools["createdb"], "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect"]
            )
        )
        yield port, tools["psql"]
    finally:
        if started:
            stop = [tools["pg_ctl"], "-D", str(data), "-m", "immediate", "-w", "stop"]
            _sh(_as_postgres(stop))
        shutil.rmtree(base, ignore_errors=True)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no /api/health after {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def prefect_on_postgres(postgres_db: tuple[int, str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`prefect server start` against the Postgres database; yields the API URL and the
    environment a client process needs; stops the server's process group at the end."""
    pg_port, psql = postgres_db
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "server-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": (
            f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/prefect"
        ),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the uvicorn child goes with it
        )
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait_healthy(f"{api}/health", proc, log, timeout_s=120)
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        client_env |= {
            "PREFECT_API_URL": api,
            "PREFECT_HOME": str(tmp_path / "client-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        yield {"api": api, "env": client_env, "pg_port": pg_port, "psql": psql}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


SMOKE_FLOW = """
from prefect import flow

@flow(name="infra-smoke")
def smoke(x: int) -> int:
    return x + 1

state = smoke(41, return_state=True)
assert state.result() == 42
print(state.state_details.flow_run_id)
"""


def _psql(srv: dict[str, Any], sql: str) -> str:
    cmd = [srv["psql"], "-h", "127.0.0.1", "-p", str(srv["pg_port"]), "-U", "postgres"]
    return _check(_sh([*cmd, "-d", "prefect", "-tAc", sql])).stdout.strip()


@pytest.mark.slow
def test_prefect_server_on_postgres_runs_flows_and_takes_the_gpu_pool(
    prefect_on_postgres: dict[str, Any],
) -> None:
    srv = prefect_on_postgres
    flow = _check(_sh([sys.executable, "-c", SMOKE_FLOW], env=srv["env"]))
    flow_run_id = uuid.UUID(flow.stdout.strip().splitlines()[-1])

    # the operator's command from infra/README.md
    create = [sys.executable, "-m", "prefect", "work-pool", "create", "gpu-pool"]
    create += ["--type", "kubernetes", "--base-job-template", str(GPU_TEMPLATE)]
    _check(_sh(create, env=srv["env"]))

    from prefect.client.orchestration import PrefectClient

    async def read_back() -> tuple[Any, Any, _K8sJobConfiguration]:
        async with PrefectClient(srv["api"]) as client:
            fr = await client.read_flow_run(flow_run_id)
            pool = await client.read_work_pool("gpu-pool")
            # how a worker renders a deployment's job variables into its job, blocks included
            cfg = await _K8sJobConfiguration.from_template_and_values(
                pool.base_job_template, {"gpu_count": 2}, client=client
            )
            return fr, pool, cfg

    fr, pool, cfg = asyncio.run(read_back())
    assert fr.state is not None and fr.state.is_completed()
    assert pool.type == "kubernetes" and pool.base_job_template == _template()
    assert _container(cfg)["resources"]["limits"] == {"nvidia.com/gpu": 2}

    # the rows are in PostgreSQL, not in some SQLite file next to the server
    assert _psql(srv, f"select state_type from flow_run where id = '{flow_run_id}'") == "COMPLETED"
    sql = "select type from work_pool where name = 'gpu-pool' and base_job_template::text"
    assert _psql(srv, sql + " like '%nvidia.com/gpu%'") == "kubernetes"
