"""`hoprec ui`, `hoprec worker` and `hoprec deploy`: the Prefect server side of hoprec.

`hoprec ui` runs a local Prefect server (API, UI, scheduler) in the foreground and says so in
`<state dir>/prefect/server.json`; every other hoprec command with the same state dir then uses
it (`hoprec.tasks.settings.use_running_server`) instead of starting a temporary server, so its
runs show in the UI and it starts faster. `hoprec deploy` applies infra/prefect.yaml to that
server (pools, the `gpu` tag limit, deployments) and `hoprec worker` runs their flow runs.
These commands are not flows: they manage the server flows report to.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hoprec.tasks import defaults as ops
from hoprec.tasks import discovery
from hoprec.tasks.ops import server as srv
from hoprec.tasks.reports import md_table
from hoprec.tasks.settings import server_file, state_dir


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM ends the foreground command like Ctrl-C does, so its cleanup runs."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_foreground(proc: subprocess.Popen[Any], grace_s: float = 30.0) -> int:
    """Wait for a child; on Ctrl-C (which the child gets too) give it `grace_s` to finish,
    then end it."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(KeyboardInterrupt):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                return proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()


def ui_command(port: int = ops.UI_PORT) -> dict[str, Any]:
    """`hoprec ui`: a local Prefect server until Ctrl-C, found by the other commands."""
    path = server_file()
    running = discovery.live_server(path, timeout=2.0)
    if running is not None:
        raise ValueError(
            f"a Prefect server for {state_dir()} already runs at {running.get('ui')} "
            f"(pid {running.get('pid')}): use it, or stop it first"
        )
    host = ops.UI_HOST
    srv.check_port_free(host, port)
    ui, api = srv.urls(host, port)
    home = Path(os.environ.get("PREFECT_HOME") or state_dir() / "prefect").expanduser()
    log = home / "server.log"
    proc = srv.start_server(host, port, home, log)
    code: int | None = None
    with sigterm_as_interrupt():
        try:
            took = srv.wait_healthy(proc, api, log)
            discovery.write_server(
                path,
                {
                    "url": api,
                    "ui": ui,
                    "pid": os.getpid(),
                    "server_pid": proc.pid,
                    "prefect_home": str(home),
                    "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
            )
            print(
                f"Prefect UI: {ui}  (API {api}, ready in {took:.1f} s, log {log})\n"
                f"hoprec commands with the state dir {state_dir()} use this server while it "
                "runs. Ctrl-C stops it.",
                flush=True,
            )
            code = wait_foreground(proc)
        except KeyboardInterrupt:
            pass
        finally:
            discovery.remove_server(path, os.getpid())
            srv.stop_server(proc)
    if code not in (None, 0, -signal.SIGINT, -signal.SIGTERM):
        raise srv.ServerError(f"the Prefect server exited ({code}): {srv.last_line(log)}")
    return {"url": ui, "report": f"Prefect server at {ui} stopped."}


def worker_command(
    pool: str = "cpu", name: str | None = None, limit: int | None = None, run_once: bool = False
) -> dict[str, Any]:
    """`hoprec worker`: a Prefect process worker for the cpu or gpu pool, in the foreground."""
    if pool not in ops.POOLS:
        raise ValueError(f"unknown pool {pool!r}: use one of {', '.join(ops.POOLS)}")
    url = discovery.require_server()
    pool_name = ops.POOLS[pool]
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool_name]
    cmd += ["--type", ops.POOL_TYPE]
    cmd += ["--name", name] if name else []
    cmd += ["--limit", str(limit)] if limit else []
    cmd += ["--run-once"] if run_once else []
    # flow runs start in the checkout (the deployments' pull step): the state dir must not
    # depend on the working directory
    env = {**os.environ, "HOPREC_HOME": str(state_dir()), "PREFECT_API_URL": url}
    print(f"worker for {pool_name} on {url}" + ("" if run_once else " (Ctrl-C stops it)"))
    sys.stdout.flush()
    with sigterm_as_interrupt():
        code = wait_foreground(subprocess.Popen(cmd, env=env))
    report = f"Worker for {pool_name} stopped (exit code {code})."
    return {"pool": pool_name, "exit_code": code, "report": report}


def deploy_command(prefect_file: str | None = None) -> dict[str, Any]:
    """`hoprec deploy`: pools, the gpu tag limit and infra/prefect.yaml's deployments on the
    running server, idempotently."""
    from hoprec.tasks.ops.deployments import load_specs, repo_root

    url = discovery.require_server()
    repo = repo_root()
    path = (
        Path(prefect_file).expanduser().absolute() if prefect_file else repo / "infra/prefect.yaml"
    )
    if not path.is_file():
        raise FileNotFoundError(f"no deployment file {path}")
    specs = load_specs(path)
    result = asyncio.run(_deploy(specs, repo))
    report = deploy_report(url, path, repo, **result)
    return {**result, "report": report}


async def _deploy(specs: list[Any], repo: Path) -> dict[str, Any]:
    from prefect.client.orchestration import get_client

    from hoprec.tasks.ops import deployments as d

    async with get_client() as client:
        pools = await d.ensure_pools(client, d.pool_names(specs))
        limits = [await d.ensure_tag_limit(client)]
        rows = [await d.ensure_deployment(client, spec, repo) for spec in specs]
        scheduled = [r["id"] for r, s in zip(rows, specs) if s.schedules and r["id"]]
        for deployment_id in scheduled:
            await d.schedule_now(client, deployment_id)
        upcoming = await d.upcoming_runs(client, scheduled)
    names = {str(r["id"]): r["deployment"] for r in rows}
    for run in upcoming:
        run["deployment"] = names.get(run.pop("deployment_id"), "?")
    return {"pools": pools, "limits": limits, "deployments": rows, "upcoming": upcoming}


def deploy_report(
    url: str,
    path: Path,
    repo: Path,
    pools: list[dict[str, Any]],
    limits: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    upcoming: list[dict[str, Any]],
) -> str:
    """The markdown a person reads after `hoprec deploy`."""
    changed = sum(not str(r["status"]).startswith(("unchanged", "skipped")) for r in deployments)
    columns = ["deployment", "pool", "schedule", "tags", "status"]
    return "\n".join(
        [
            f"# Deployments of `{path.name}` on {url}",
            f"{len(deployments)} deployments, {changed} created or updated; flow runs start "
            f"in `{repo}` (pull step).",
            "",
            "## Work pools",
            md_table(pools),
            "",
            "## Concurrency limits",
            md_table(limits),
            "",
            "## Deployments",
            md_table(deployments, columns),
            "",
            "## Next scheduled runs",
            md_table(upcoming, ["expected", "deployment", "run"]),
            "",
            "Workers run them: `hoprec worker --pool cpu`, and `hoprec worker --pool gpu` on a "
            "GPU host.",
        ]
    )
