"""Asking a deployment for flow runs instead of running a flow here: `hoprec backfill
--deployment` makes one flow run per as-of date, for the workers of the running server.

Each run carries an idempotency key made from the deployment and the run's effective
parameters (dataset, the date, the relation parameters, defaults filled in), so asking twice
gives back the run the first call made instead of a second one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, cast

from ..discovery import require_server


def idempotency_key(deployment: str, parameters: dict[str, Any]) -> str:
    """A stable key of a deployment and a run's parameters (order of keys does not matter)."""
    blob = json.dumps(
        {"deployment": deployment, "parameters": parameters}, sort_keys=True, default=str
    )
    return "hoprec-" + hashlib.sha256(blob.encode()).hexdigest()[:32]


def date_text(d: datetime) -> str:
    """1998-03-01 for midnight, else 1998-03-01 12:00:00."""
    return d.date().isoformat() if d == datetime.combine(d.date(), d.min.time()) else str(d)


def backfill_runs(
    deployment: str, params: dict[str, Any], defaults: dict[str, Any]
) -> list[dict[str, Any]]:
    """One run a date: its parameters (what the user gave, with start = end = the date), name
    and key (over the parameters with the flow's defaults filled in)."""
    from .. import defaults as D
    from ..relations.dates import as_of_dates

    given = {k: v for k, v in params.items() if k not in ("start", "end", "every")}
    every = params.get("every", D.BACKFILL_EVERY)
    runs = []
    for d in as_of_dates(params["start"], params["end"], every):
        text = date_text(d)
        run_params = {**given, "start": text, "end": text}
        effective = {**defaults, **run_params, "every": None}
        runs.append(
            {
                "date": text,
                "name": f"backfill {params['dataset']} as of {text}",
                "parameters": run_params,
                "key": idempotency_key(deployment, effective),
            }
        )
    return runs


def submit(deployment: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create the runs through `deployment` (flow/deployment name) without waiting for them;
    a run whose key the server already holds comes back as it is, marked existing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterIdempotencyKey,
    )
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    require_server()
    with get_client(sync_client=True) as client:
        try:
            dep = client.read_deployment_by_name(deployment)
        except (ObjectNotFound, ValueError):
            raise ValueError(
                f"no deployment {deployment!r} on the server: run `hoprec deploy` first "
                "(names are FLOW/DEPLOYMENT)"
            ) from None
        before = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[dep.id]),
                idempotency_key=FlowRunFilterIdempotencyKey(any_=[r["key"] for r in runs]),
            )
        )
    known = {r.idempotency_key for r in before if r.idempotency_key}
    out = []
    for run in runs:
        try:
            flow_run = cast(  # called from sync code: the run, not a coroutine
                "FlowRun",
                run_deployment(
                    dep.id,
                    parameters=run["parameters"],
                    flow_run_name=run["name"],
                    idempotency_key=run["key"],
                    timeout=0,
                    as_subflow=False,
                ),
            )
        except PrefectHTTPStatusError as exc:  # e.g. parameters the deployment refuses
            detail = exc.response.text[:300]
            raise ValueError(f"{deployment}: the server refused the run: {detail}") from None
        out.append(
            {
                "date": run["date"],
                "flow run": flow_run.name,
                "id": str(flow_run.id),
                "state": flow_run.state.name if flow_run.state else "-",
                "status": "existing" if run["key"] in known else "created",
            }
        )
    return out
