"""The backfill flow: one relation snapshot set per as-of date, as mapped tasks.

By default each date's snapshots are computed in one warehouse session, one date after another
(the fastest way on one machine). `from_exports` instead exports each date's events to Parquet
(a short warehouse session), counts its pairs from that file with no warehouse, two dates at a
time, and takes the warehouse again only to merge and write: for more cores, or to leave the
warehouse free for other writers while counting (bench/backfill.py compares them). Idempotent
and resumable either way: every date's snapshots commit on their own and the registry answers
repeats, so a rerun after a crash computes only the dates that are missing.
"""

from __future__ import annotations

import inspect
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from hoprec.flows.relations import check_kinds, relation_params, semantic_step, snapshot_rows
from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.relations.dates import as_of_dates
from hoprec.tasks.relations.pairs import count_shard_task
from hoprec.tasks.relations.snapshot_tasks import (
    dated_snapshots_task,
    export_input_task,
    relation_snapshot_task,
)
from hoprec.tasks.relations.snapshots import COLLABORATIVE
from hoprec.tasks.reports import md_table, publish, publish_table
from hoprec.tasks.settings import checked_name


def backfill_run_name() -> str:
    """`backfill D as of DATE` for one date (what `hoprec backfill --deployment` asks for), else
    `backfill D START..END every STEP`."""
    from prefect.runtime import flow_run

    p = flow_run.parameters
    if p.get("start") == p.get("end"):
        return f"backfill {p.get('dataset')} as of {p.get('start')}"
    every = p.get("every", defaults.BACKFILL_EVERY)
    return f"backfill {p.get('dataset')} {p.get('start')}..{p.get('end')} every {every}"


# Two threads: with from_exports, dates count in parallel (DuckDB releases the GIL); warehouse
# sessions wait for each other inside the process (`warehouse.connect`), one writer at a time.
@flow(
    name="backfill",
    flow_run_name=backfill_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=defaults.BACKFILL_THREADS),  # type: ignore[arg-type]
)
def backfill_flow(
    dataset: str,
    start: str,
    end: str,
    every: str = defaults.BACKFILL_EVERY,
    warehouse: str | None = None,
    kinds: list[str] | None = None,
    window: int = defaults.WINDOW,
    weighting: str = defaults.WEIGHTING,
    directed: bool = False,
    top_k: int = defaults.TOP_K,
    top_up: bool = True,
    top_up_mode: str = defaults.TOP_UP_MODE,
    top_up_depth: int = defaults.TOP_UP_DEPTH,
    strict: bool = False,
    model: str = defaults.EMBEDDING_MODEL,
    force: bool = False,
    index: str = defaults.SEMANTIC_INDEX,
    from_exports: bool = False,
) -> dict[str, Any]:
    """Relation snapshots of `dataset` as of every date from `start` to `end`.
    Returns {"dates": the as-of dates, "snapshots": one record a snapshot, "report"}."""
    params = relation_params(
        window, weighting, directed, top_k, top_up, strict, model, top_up_mode, top_up_depth, index
    )
    kinds = check_kinds(kinds or list(COLLABORATIVE))
    dates = [d.isoformat(sep=" ") for d in as_of_dates(start, end, every)]
    wh = str(resolve(warehouse))
    sem = semantic_step(wh, dataset, params, kinds, force)
    sem_id = sem["snapshot_id"] if sem else None
    if from_exports:
        writes = counted_from_exports(wh, dataset, dates, kinds, params, sem_id, force)
    else:
        collab = [k for k in COLLABORATIVE if k in kinds]
        dated = dated_snapshots_task.map(
            unmapped(wh),
            unmapped(dataset),
            dates,
            unmapped(params),
            unmapped(sem_id),
            unmapped(collab),
            unmapped(force),
        )
        writes = [r for f in dated for r in f.result()]
    records = ([sem] if sem and "semantic" in kinds else []) + writes
    report = backfill_report(dataset, dates, every, records)
    publish("backfill-report", report, f"backfill of {dataset}")
    publish_table(
        "backfill-snapshots",
        snapshot_rows(records),
        f"relation snapshots of {dataset}, one row each",
    )
    return {"dates": dates, "snapshots": records, "report": report}


def counted_from_exports(
    wh: str,
    dataset: str,
    dates: list[str],
    kinds: list[str],
    params: Any,
    sem_id: int | None,
    force: bool,
) -> list[dict[str, Any]]:
    """Each (date, kind): export its events, count them from the file (no warehouse, on the
    flow's threads), then merge and write; a cached snapshot is only looked up."""
    jobs = [(d, k) for d in dates for k in COLLABORATIVE if k in kinds]
    plans = [export_input_task.submit(wh, dataset, k, d, params, sem_id, force) for d, k in jobs]
    counts = [
        None
        if plan.result()["cached"]
        else count_shard_task.submit(
            plan.result()["input"], 0, 1, plan.result()["spec"], plan.result()["folder"]
        )
        for plan in plans
    ]
    writes = [
        relation_snapshot_task.submit(wh, dataset, k, d, params, sem_id, force)
        if count is None
        else relation_snapshot_task.submit(
            wh, dataset, k, d, params, sem_id, True, [count.result()], plan.result()["input"]
        )
        for (d, k), plan, count in zip(jobs, plans, counts)
    ]
    return [w.result() for w in writes]


def backfill_report(
    dataset: str, dates: list[str], every: str, records: list[dict[str, Any]]
) -> str:
    """The markdown a person reads after a backfill."""
    computed = sum(r["status"] == "computed" for r in records)
    return "\n".join(
        [
            f"# Backfill of `{dataset}`: {len(dates)} as-of date{'s' * (len(dates) != 1)}, "
            f"every {every}",
            f"{dates[0]} .. {dates[-1]}; {computed} snapshots computed, "
            f"{len(records) - computed} already there.",
            "",
            md_table(snapshot_rows(records)),
        ]
    )


def backfill_command(deployment: str | None = None, **params: Any) -> dict[str, Any]:
    """`hoprec backfill`: the flow here; with `deployment`, one flow run per as-of date through
    that deployment on the running server instead, for its workers (asking twice for a date
    with the same parameters gives back the first run)."""
    if deployment is None:
        return backfill_flow(**params)
    from hoprec.tasks.ops.dispatch import backfill_runs, submit

    checked_name(params["dataset"])
    defaults_ = {
        n: p.default
        for n, p in inspect.signature(backfill_flow.fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    runs = submit(deployment, backfill_runs(deployment, params, defaults_))
    created = sum(r["status"] == "created" for r in runs)
    report = "\n".join(
        [
            f"# Backfill of `{params['dataset']}` through `{deployment}`: {len(runs)} as-of "
            f"date{'s' * (len(runs) != 1)}",
            f"{created} flow runs created, {len(runs) - created} already there; the deployment's "
            "workers run them (`hoprec worker --pool cpu`).",
            "",
            md_table(runs),
        ]
    )
    return {"deployment": deployment, "runs": runs, "report": report}


# the command takes the flow's parameters by name (passed on as **params) and `deployment`:
# its signature says so, for --help's defaults check and for tools that read signatures
backfill_command.__signature__ = inspect.signature(backfill_flow.fn).replace(  # type: ignore[attr-defined]
    parameters=[
        *inspect.signature(backfill_flow.fn).parameters.values(),
        inspect.Parameter("deployment", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
)
