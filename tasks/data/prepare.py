"""Prepare: k-core filtering, ordering, dense item index and splits, as tables plus Parquet.

All data work is SQL in `sql/prepare/`; the Parquet files are written to a temp name and renamed,
and the tables are swapped in one transaction, so a killed run leaves the previous result whole.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from .. import defaults
from ..settings import stage_dir
from .warehouse import (
    export_parquet,
    fetch_dict,
    fetch_row,
    fetch_value,
    row_count,
    run,
    sql_text,
    transaction,
)

log = logging.getLogger("hoprec.prepare")
TIE_BREAKS = ("source", "item", "random")


@dataclass(frozen=True)
class PrepareParams:
    """What a prepared dataset depends on."""

    k_core: int = defaults.K_CORE
    split: Literal["loo", "temporal"] = defaults.SPLIT  # type: ignore[assignment]
    max_history: int = 0  # keep each user's last N events; 0 keeps all
    tie_break: Literal["source", "item", "random"] = defaults.TIE_BREAK  # type: ignore[assignment]
    tie_seed: int = 0  # the random tie-break's seed
    valid_start: str | None = None  # temporal split cut points (default: 80%/90% quantiles)
    test_start: str | None = None
    min_rating: float | None = defaults.MIN_RATING  # drop events rated below it, before k-core

    def __post_init__(self) -> None:
        if self.k_core < 1:
            raise ValueError(f"k_core must be >= 1, got {self.k_core}")
        if self.split not in ("loo", "temporal"):
            raise ValueError(f"split must be 'loo' or 'temporal', got {self.split!r}")
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {self.tie_break!r}")
        if self.max_history < 0:
            raise ValueError(f"max_history must be >= 0, got {self.max_history}")
        if self.max_history and self.split == "loo" and self.max_history < 3:
            raise ValueError("max_history must be at least 3 with the leave-one-out split")


@dataclass
class PrepareResult:
    dataset: str
    params: dict[str, Any]
    stats: dict[str, Any]
    kcore_passes: int
    parquet_dir: str
    files: dict[str, str] = field(default_factory=dict)


def kcore(
    con: duckdb.DuckDBPyConnection, dataset: str, k: int, min_rating: float | None = None
) -> int:
    """Iterative k-core in SQL over temp table `kc` (after the rating threshold); returns the
    number of passes."""
    run(con, "prepare/kcore_base", {"dataset": dataset, "min_rating": min_rating})
    if not row_count(con, "kc"):
        if min_rating is not None and fetch_value(
            run(con, "prepare/count_events", {"dataset": dataset})
        ):
            raise ValueError(f"no events of {dataset!r} are rated >= {min_rating}")
        raise ValueError(f"dataset {dataset!r} has no interactions; run `hoprec ingest` first")
    passes = 0
    while True:
        passes += 1
        removed = fetch_value(run(con, "prepare/kcore_step", {"k": k}))
        log.info("k-core pass %d removed %d events", passes, removed)
        if removed == 0:
            return passes


def prepare(
    con: duckdb.DuckDBPyConnection, dataset: str, params: PrepareParams, out_dir: Path | None = None
) -> PrepareResult:
    """Build the prepared sequences of `dataset` and their stats."""
    passes = kcore(con, dataset, params.k_core, params.min_rating)
    if not row_count(con, "kc"):
        raise ValueError(f"no events of {dataset!r} survive the {params.k_core}-core filter")
    run(con, "prepare/item_index")
    valid_start, test_start = params.valid_start, params.test_start
    if params.split == "temporal" and not (valid_start and test_start):
        q_valid, q_test = fetch_row(run(con, "prepare/temporal_cuts"))
        valid_start, test_start = valid_start or str(q_valid), test_start or str(q_test)
    run(
        con,
        "prepare/sequences",
        {
            "max_history": params.max_history,
            "split": params.split,
            "tie_break": params.tie_break,
            "tie_seed": params.tie_seed,
            "valid_start": datetime.fromisoformat(valid_start) if valid_start else None,
            "test_start": datetime.fromisoformat(test_start) if test_start else None,
        },
    )
    stats = fetch_dict(run(con, "prepare/stats"))
    q = stats.pop("len_quantiles")
    stats["len_quantiles"] = dict(zip(["p10", "p25", "p50", "p75", "p90"], q))
    if params.split == "temporal":
        stats["valid_start"], stats["test_start"] = valid_start, test_start
    out = out_dir or stage_dir("prepared", dataset)
    out.mkdir(parents=True, exist_ok=True)
    files = {"sequences": str(out / "sequences.parquet"), "items": str(out / "items.parquet")}
    export_parquet(con, sql_text("prepare/export_sequences"), Path(files["sequences"]))
    export_parquet(
        con, sql_text("prepare/export_items"), Path(files["items"]), {"dataset": dataset}
    )
    with transaction(con):
        run(
            con,
            "prepare/replace_prepared",
            {
                "dataset": dataset,
                "params_json": json.dumps(asdict(params)),
                "stats_json": json.dumps(stats, default=str),
                "parquet_dir": str(out),
            },
        )
    run(con, "prepare/drop_staging")
    return PrepareResult(dataset, asdict(params), stats, passes, str(out), files)


# --- Prefect tasks -------------------------------------------------------------------------
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from .warehouse import connect  # noqa: E402


@task(name="prepare-sequences", cache_policy=NO_CACHE)
def prepare_task(warehouse: str, dataset: str, params: PrepareParams) -> dict[str, Any]:
    """k-core, order, index and split one dataset; returns the stats record."""
    with connect(warehouse) as con:
        return asdict(prepare(con, dataset, params))
