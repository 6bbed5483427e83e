"""Pair counts: the part of a relation snapshot that shards.

Pairs are additive over users, so a snapshot's events can be written to Parquet, counted per
user shard in private in-memory DuckDBs anywhere (threads here, or a Dask cluster), and merged
by summing. The counting SQL is the same for one shard and for the whole warehouse.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import Any

import duckdb
from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import export_parquet, run, sql_text
from ..settings import stage_dir
from .dates import ts_text


def lcm_upto(window: int) -> int:
    """lcm(1..window): the denominator that keeps 1/hop weights exact integers."""
    return reduce(math.lcm, range(1, window + 1), 1)


def load_input(
    con: duckdb.DuckDBPyConnection, dataset: str, as_of: datetime | None, strict: bool
) -> None:
    """Temp tables `rel_input` (the snapshot's events) and `rel_pop` (item popularity)."""
    params = input_params(dataset, as_of, strict)
    run(con, "relations/input", params, parts={"rows": "relations/input_rows"})
    run(con, "relations/popularity")


def input_params(dataset: str, as_of: datetime | None, strict: bool) -> dict[str, Any]:
    """The parameters of `relations/input_rows`."""
    return {"dataset": dataset, "strict": strict, "as_of": ts_text(as_of) or "infinity"}


def count_pairs(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> None:
    """Temp table `rel_pairs(a, b, n, w)` from `rel_input` for a collaborative spec."""
    params = {"window": spec["window"], "directed": spec["directed"]}
    if spec["weighting"] == "inverse-hop":
        run(con, "relations/pair_counts_inverse_hop", params | {"lcm": lcm_upto(spec["window"])})
    else:
        run(con, "relations/pair_counts", params)


def export_input(
    con: duckdb.DuckDBPyConnection, dataset: str, as_of: datetime | None, strict: bool, path: Path
) -> Path:
    """Write a snapshot's events to Parquet, so shards can run anywhere without the warehouse.
    Streamed from the warehouse: the events are never held whole in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sql_text("relations/input_rows")
    export_parquet(con, rows, path, input_params(dataset, as_of, strict))
    return path


def count_shard(
    input_path: str,
    shard: int,
    shards: int,
    spec: dict[str, Any],
    out_path: str,
    memory_limit: str | None = None,
) -> str:
    """Pair counts of one user shard, in a private in-memory DuckDB, written to Parquet."""
    con = duckdb.connect(config={"memory_limit": memory_limit} if memory_limit else {})
    try:
        run(con, "relations/shard_input", {"path": input_path, "shard": shard, "shards": shards})
        count_pairs(con, spec)
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        export_parquet(con, "SELECT a, b, n, w FROM rel_pairs", Path(out_path))
    finally:
        con.close()
    return out_path


def shard_dir(dataset: str, kind: str, as_of: datetime | None, phash: str) -> Path:
    """Where a sharded snapshot's intermediate files go (shared storage for remote workers)."""
    stamp = as_of.strftime("%Y%m%dT%H%M%S") if as_of else "all"
    return stage_dir("relations", dataset) / f"{kind}-{stamp}-{phash}"


@task(name="count-shard", task_run_name="shard {shard} of {shards}", cache_policy=NO_CACHE)
def count_shard_task(
    input_path: str, shard: int, shards: int, spec: dict[str, Any], folder: str
) -> str:
    """Pair counts of one user shard; needs no warehouse, so it runs on any worker."""
    return count_shard(input_path, shard, shards, spec, f"{folder}/shard-{shard:04d}.parquet")
