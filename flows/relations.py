"""The relations flow: semantic neighbours, one-hop transitions and multi-hop co-occurrence as
snapshots as of a date, optionally counted in user shards on a Dask cluster."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.relations.pairs import count_shard_task
from hoprec.tasks.relations.snapshot_tasks import (
    export_input_task,
    relation_snapshot_task,
    semantic_snapshot_task,
)
from hoprec.tasks.relations.snapshots import COLLABORATIVE, KINDS, RelationParams
from hoprec.tasks.reports import fmt, md_table, publish


def relation_params(
    window: int,
    weighting: str,
    directed: bool,
    top_k: int,
    top_up: bool,
    strict: bool,
    model: str,
    top_up_mode: str = defaults.TOP_UP_MODE,
    top_up_depth: int = defaults.TOP_UP_DEPTH,
    index: str = defaults.SEMANTIC_INDEX,
) -> RelationParams:
    """Flow parameters -> validated RelationParams (the relations and backfill flows share it)."""
    return RelationParams(
        window=window,
        weighting=weighting,  # type: ignore[arg-type]  # RelationParams checks it
        directed=directed,
        top_k=top_k,
        top_up=top_up,
        strict=strict,
        model=model,
        top_up_mode=top_up_mode,  # type: ignore[arg-type]
        top_up_depth=top_up_depth,
        index=index,
    )


def check_kinds(kinds: list[str] | None) -> list[str]:
    """The relation kinds asked for (default: all), or an error that lists the known ones."""
    kinds = list(kinds or KINDS)
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise ValueError(f"--kinds: unknown relation kind(s) {bad}; choose from {', '.join(KINDS)}")
    return kinds


def semantic_step(
    wh: str, dataset: str, params: RelationParams, kinds: list[str], force: bool
) -> dict[str, Any] | None:
    """The semantic snapshot, when asked for or needed by the co-occurrence top-up."""
    if "semantic" in kinds or ("cooccurrence" in kinds and params.top_up):
        return semantic_snapshot_task(wh, dataset, params, force)
    return None


def _run_name() -> str:
    from prefect.runtime import flow_run

    p = flow_run.parameters
    return f"relations {p['dataset']} as of {p.get('as_of') or 'all events'}"


@flow(name="relations", flow_run_name=_run_name)
def relations_flow(
    dataset: str,
    as_of: str | None = None,
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
    shards: int = 1,
    force: bool = False,
    index: str = defaults.SEMANTIC_INDEX,
) -> dict[str, Any]:
    """Make (or reuse) the relation snapshots of `dataset` from its events before `as_of`.
    `index` is the semantic top-K search: exact, ann (FAISS) or auto (exact below
    defaults.ANN_SWITCH_ITEMS items); it is part of the semantic snapshot's params.
    Returns {"snapshots": one record a snapshot, "ids": kind -> snapshot id, "report"}."""
    params = relation_params(
        window, weighting, directed, top_k, top_up, strict, model, top_up_mode, top_up_depth, index
    )
    kinds = check_kinds(kinds)
    if shards < 1:
        raise ValueError(f"--shards must be >= 1, got {shards}")
    wh = str(resolve(warehouse))
    sem = semantic_step(wh, dataset, params, kinds, force)
    sem_id = sem["snapshot_id"] if sem else None
    records = [sem] if sem and "semantic" in kinds else []
    for kind in (k for k in COLLABORATIVE if k in kinds):
        files, exported = None, None
        if shards > 1:
            plan = export_input_task(wh, dataset, kind, as_of, params, sem_id, force)
            if not plan["cached"]:
                futures = count_shard_task.map(
                    unmapped(plan["input"]),
                    range(shards),
                    unmapped(shards),
                    unmapped(plan["spec"]),
                    unmapped(plan["folder"]),
                )
                files, exported = [f.result() for f in futures], plan["input"]
        records.append(
            relation_snapshot_task(
                wh, dataset, kind, as_of, params, sem_id, force or bool(files), files, exported
            )
        )
    report = relations_report(dataset, records, index)
    publish("relations-report", report, f"relation snapshots of {dataset}")
    return {
        "snapshots": records,
        "ids": {r["kind"]: r["snapshot_id"] for r in records},
        "report": report,
    }


def snapshot_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row a snapshot: what a person checks after a run."""
    return [
        {
            "kind": r["kind"],
            "as of": r["as_of"] or "all",
            "snapshot": r["snapshot_id"],
            "status": r["status"],
            "rows": r["rows"],
            "items with neighbours": r["stats"].get("items_with_neighbors"),
            "mean list": round(r["stats"].get("mean_list_length") or 0, 2),
            "topped up": r["stats"].get("items_topped_up"),
            "events": r["stats"].get("events", ""),
            "shards": r["stats"].get("shards", 1),
            "seconds": round(r["seconds"], 2),
        }
        for r in records
    ]


def relations_report(dataset: str, records: list[dict[str, Any]], index: str | None = None) -> str:
    """The markdown a person reads after a relations run."""
    lines = [f"# Relation snapshots of `{dataset}`", "", md_table(snapshot_rows(records))]
    for r in records:
        p = r["params"]
        if r["kind"] == "cooccurrence":
            lines.append(
                f"\nco-occurrence: window {p['window']}, "
                f"{'directed' if p['directed'] else 'symmetric'}, {p['weighting']} "
                f"weights, top-{p['top_k']}, top-up {'on' if p['top_up'] else 'off'}"
                f"{', strict' if p['strict'] else ''}."
            )
        if r["kind"] == "semantic":
            s = r["stats"]
            lines.append(
                f"\nsemantic: model `{p['model']}`, top-{p['top_k']}, "
                + (f"search {index}, " if index else "")
                + f"{fmt(s.get('embedded_now'))} texts embedded now, "
                f"{fmt(s.get('embeddings_cached'))} from the cache."
            )
    return "\n".join(lines)


def relations_command(
    task_runner: str = "thread",
    dask_address: str | None = None,
    dask_workers: int = 2,
    **params: Any,
) -> dict[str, Any]:
    """`hoprec relations`: the flow on threads here, or its shards on a Dask cluster."""
    if task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        runner = (
            DaskTaskRunner(address=dask_address)
            if dask_address
            else DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1})
        )
        return relations_flow.with_options(task_runner=runner)(**params)  # type: ignore[arg-type]
    return relations_flow(**params)
