"""infra/prefect.yaml applied to a Prefect server, idempotently: the work pools, the `gpu` tag
limit and the deployments. Applying it twice creates nothing: a pool or limit that exists is
left alone, and a deployment is written only when it differs from what the server holds (an
update would delete and re-create its scheduled runs).

Why not `prefect deploy --all`: it rewrites every deployment on each call (so scheduled runs
are dropped and made again), asks questions at a terminal, and takes the pull step's folder
from a template; here the pull step points at this checkout (or HOPREC_REPO).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..defaults import GPU_TAG, GPU_TAG_LIMIT, POOL_TYPE, POOLS

SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of infra/prefect.yaml, as hoprec applies it."""

    name: str
    entrypoint: str  # flows/x.py:x_flow, relative to the repository root
    work_pool: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    work_queue: str | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[tuple[str, str, bool], ...] = ()  # (cron, timezone, active)


def repo_root() -> Path:
    """The checkout the workers run flows from: HOPREC_REPO, else the one this code is in."""
    env = os.environ.get("HOPREC_REPO")
    root = Path(env).expanduser().absolute() if env else Path(__file__).resolve().parents[2]
    if not (root / "infra" / "prefect.yaml").is_file():
        raise FileNotFoundError(
            f"no infra/prefect.yaml under {root}: set HOPREC_REPO to the hoprec checkout"
        )
    return root


def load_specs(path: Path) -> list[DeploymentSpec]:
    """The deployments of a prefect.yaml; a one-line error for a missing pool, a duplicate
    name or a cron expression that does not parse."""
    import yaml
    from prefect.client.schemas.schedules import CronSchedule

    spec = yaml.safe_load(path.read_text()) or {}
    out: list[DeploymentSpec] = []
    for d in spec.get("deployments") or []:
        name = d["name"]
        pool = (d.get("work_pool") or {}).get("name")
        if not pool:
            raise ValueError(f"{path}: deployment {name} has no work_pool")
        schedules = []
        for s in d.get("schedules") or []:
            cron, tz = s.get("cron"), s.get("timezone") or "UTC"
            try:
                CronSchedule(cron=cron, timezone=tz)
            except ValueError:
                raise ValueError(
                    f"{path}: deployment {name}: bad cron schedule {cron!r} ({tz})"
                ) from None
            schedules.append((cron, tz, bool(s.get("active", True))))
        out.append(
            DeploymentSpec(
                name=name,
                entrypoint=d["entrypoint"],
                work_pool=pool,
                description=(d.get("description") or "").strip(),
                parameters=dict(d.get("parameters") or {}),
                tags=tuple(d.get("tags") or ()),
                work_queue=(d.get("work_pool") or {}).get("work_queue_name"),
                job_variables=dict((d.get("work_pool") or {}).get("job_variables") or {}),
                schedules=tuple(schedules),
            )
        )
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: deployment names repeat: {sorted(names)}")
    return out


def pool_names(specs: list[DeploymentSpec]) -> list[str]:
    """Every pool a deployment names, and hoprec's cpu and gpu pools."""
    return sorted({s.work_pool for s in specs} | set(POOLS.values()))


def pull_steps(repo: Path) -> list[dict[str, Any]]:
    """A worker's flow run changes into the checkout, where the entrypoints are."""
    return [{SET_WORKING_DIRECTORY: {"directory": str(repo)}}]


def load_flow(repo: Path, entrypoint: str) -> Any:
    """The flow object behind an entrypoint, loaded as a worker will load it; None when its
    file is not there (yet)."""
    from prefect.flows import load_flow_from_entrypoint

    path, name = entrypoint.split(":")
    if not (repo / path).is_file():
        return None
    return load_flow_from_entrypoint(f"{repo / path}:{name}")


def payload(spec: DeploymentSpec, flow: Any, repo: Path) -> dict[str, Any]:
    """What the server should hold for `spec` (the fields hoprec sets and compares)."""
    from prefect.utilities.callables import parameter_schema

    return {
        "entrypoint": spec.entrypoint,
        "path": None,
        "pull_steps": pull_steps(repo),
        "work_pool_name": spec.work_pool,
        "work_queue_name": spec.work_queue or "default",
        "parameters": spec.parameters,
        "tags": sorted(spec.tags),
        "description": spec.description,
        "job_variables": spec.job_variables,
        "parameter_openapi_schema": parameter_schema(flow).model_dump_for_openapi(),
        "enforce_parameter_schema": True,
    }


def schedule_keys(schedules: list[Any]) -> list[tuple[str, str, bool]]:
    """(cron, timezone, active) of a deployment's schedules, as the server holds them."""
    return sorted(
        (
            str(getattr(s.schedule, "cron", s.schedule)),
            str(getattr(s.schedule, "timezone", None) or "UTC"),
            bool(s.active),
        )
        for s in schedules
    )


def differences(existing: Any, want: dict[str, Any], spec: DeploymentSpec) -> list[str]:
    """The fields in which the server's deployment differs from the wanted one."""
    import json

    def norm(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    diff = [
        k
        for k, v in want.items()
        if norm(sorted(getattr(existing, k) or []) if k == "tags" else getattr(existing, k))
        != norm(v)
    ]
    if schedule_keys(existing.schedules or []) != sorted(spec.schedules):
        diff.append("schedules")
    return diff


async def ensure_pools(client: Any, names: list[str]) -> list[dict[str, Any]]:
    """Create the process pools that are missing; report each pool."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    rows = []
    for name in names:
        try:
            pool = await client.read_work_pool(name)
            rows.append({"pool": name, "type": pool.type, "status": "exists"})
        except ObjectNotFound:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=POOL_TYPE,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
            rows.append({"pool": name, "type": POOL_TYPE, "status": "created"})
    return rows


async def ensure_tag_limit(client: Any, tag: str = GPU_TAG, limit: int = GPU_TAG_LIMIT) -> dict:
    """At most `limit` task runs tagged `tag` at once. Prefect 3 keeps a tag limit as the
    global concurrency limit `tag:<tag>`; creating it again only sets its value."""
    from prefect.exceptions import ObjectNotFound

    try:
        current = await client.read_concurrency_limit_by_tag(tag)
        status = "exists" if current.concurrency_limit == limit else "updated"
    except ObjectNotFound:
        status = "created"
    if status != "exists":
        await client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
    return {"limit": f"tag:{tag}", "slots": limit, "status": status}


async def ensure_deployment(client: Any, spec: DeploymentSpec, repo: Path) -> dict[str, Any]:
    """Create or update one deployment when it differs; report it."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectNotFound

    row: dict[str, Any] = {
        "deployment": spec.name,
        "pool": spec.work_pool,
        "schedule": ", ".join(f"{c} {tz}" for c, tz, _ in spec.schedules) or "-",
        "tags": ",".join(spec.tags) or "-",
    }
    flow = load_flow(repo, spec.entrypoint)
    if flow is None:
        return {**row, "status": f"skipped: {spec.entrypoint.split(':')[0]} is missing", "id": None}
    row["deployment"] = f"{flow.name}/{spec.name}"
    want = payload(spec, flow, repo)
    try:
        existing = await client.read_deployment_by_name(row["deployment"])
        diff = differences(existing, want, spec)
        if not diff:
            return {**row, "status": "unchanged", "id": existing.id}
        status = "updated: " + ", ".join(diff)
    except ObjectNotFound:
        status = "created"
    flow_id = await client.create_flow_from_name(flow.name)
    schedules = [
        DeploymentScheduleCreate(schedule=CronSchedule(cron=c, timezone=tz), active=active)
        for c, tz, active in spec.schedules
    ]
    deployment_id = await client.create_deployment(  # an upsert by flow and name
        flow_id=flow_id, name=spec.name, schedules=schedules, **want
    )
    return {**row, "status": status, "id": deployment_id}


async def schedule_now(client: Any, deployment_id: Any) -> None:
    """Make a scheduled deployment's next runs now rather than at the scheduler's next loop
    (the server keys them by schedule and time, so this never makes one twice)."""
    response = await client._client.post(f"/deployments/{deployment_id}/schedule", json={})
    response.raise_for_status()


async def upcoming_runs(client: Any, deployment_ids: list[Any], limit: int = 10) -> list[dict]:
    """The next scheduled flow runs of these deployments, soonest first."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    if not deployment_ids:
        return []
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=limit,
    )
    return [
        {"run": r.name, "deployment_id": str(r.deployment_id), "expected": r.expected_start_time}
        for r in runs
    ]
