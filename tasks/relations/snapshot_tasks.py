"""Relation snapshots as Prefect tasks: what the relations, backfill and instructions flows map.

The registry in the warehouse is the cache (exact, and it survives a Prefect database reset), so
the tasks themselves do not cache results. Each opens its own warehouse session.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import connect
from .dates import parse_as_of
from .pairs import export_input, shard_dir
from .snapshots import RelationParams, as_record, find_snapshot, resolved_spec, snapshot


@task(
    name="semantic-neighbors",
    task_run_name="semantic neighbours ({params.model})",
    cache_policy=NO_CACHE,
)
def semantic_snapshot_task(
    warehouse: str, dataset: str, params: RelationParams, force: bool = False
) -> dict[str, Any]:
    """Embed item texts (cached by text hash) and store each item's exact cosine top-K."""
    with connect(warehouse) as con:
        return as_record(snapshot(con, dataset, "semantic", None, params, force=force))


@task(name="relation-snapshot", task_run_name="{kind} as of {as_of}", cache_policy=NO_CACHE)
def relation_snapshot_task(
    warehouse: str,
    dataset: str,
    kind: str,
    as_of: str | None,
    params: RelationParams,
    semantic_id: int | None = None,
    force: bool = False,
    shard_files: list[str] | None = None,
    shard_input: str | None = None,
) -> dict[str, Any]:
    """One transitions or co-occurrence snapshot (merging shard files when given; once it is
    stored, the shard folder with its input export goes)."""
    with connect(warehouse) as con:
        record = as_record(
            snapshot(
                con,
                dataset,
                kind,
                as_of,
                params,
                force=force,
                semantic_id=semantic_id,
                shard_files=shard_files,
                shard_input=shard_input,
            )
        )
    for folder in {Path(f).parent for f in shard_files or []}:
        shutil.rmtree(folder, ignore_errors=True)
    return record


@task(name="dated-snapshots", task_run_name="snapshots as of {as_of}", cache_policy=NO_CACHE)
def dated_snapshots_task(
    warehouse: str,
    dataset: str,
    as_of: str,
    params: RelationParams,
    semantic_id: int | None,
    kinds: list[str],
    force: bool = False,
) -> list[dict[str, Any]]:
    """A backfill date: its transitions and co-occurrence snapshots, in one warehouse session."""
    with connect(warehouse) as con:
        return [
            as_record(
                snapshot(con, dataset, k, as_of, params, force=force, semantic_id=semantic_id)
            )
            for k in kinds
        ]


@task(name="export-snapshot-input", task_run_name="export {kind} input", cache_policy=NO_CACHE)
def export_input_task(
    warehouse: str,
    dataset: str,
    kind: str,
    as_of: str | None,
    params: RelationParams,
    semantic_id: int | None,
    force: bool,
) -> dict[str, Any]:
    """Before sharding: report a cache hit, or write the events the shards will read."""
    at = parse_as_of(as_of)
    with connect(warehouse) as con:
        spec, phash = resolved_spec(con, dataset, kind, params, semantic_id)
        if not force and find_snapshot(con, dataset, kind, at, phash):
            return {"cached": True}
        folder = shard_dir(dataset, kind, at, phash)
        path = export_input(con, dataset, at, spec["strict"], folder / "input.parquet")
    return {"cached": False, "input": str(path), "folder": str(folder), "spec": spec}
