"""Relation snapshots: one-hop transitions, multi-hop co-occurrence and semantic neighbours.

A snapshot is computed from the prepared training events strictly before `as_of`, never from a
test target, and is registered in `relation_snapshots` under the hash of everything it depends
on (its parameters plus fingerprints of the prepared data and item texts). The same request is
a cache hit; a recompute swaps rows and registry entry in one transaction, so readers never see
half a snapshot. All data work is SQL in `sql/relations/`; pair counts are additive over users,
so they can be computed in shards (`pairs.count_shard`) and merged by summing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import duckdb

from .. import defaults
from ..data.warehouse import fetch_dict, fetch_first, fetch_value, run, transaction
from .ann import resolve_index
from .dates import parse_as_of, ts_text
from .pairs import count_pairs, lcm_upto, load_input
from .top_up import MODES, top_up_table

log = logging.getLogger("hoprec.relations")

KINDS = ("transitions", "cooccurrence", "semantic")
TABLES = {
    "transitions": "transitions",
    "cooccurrence": "cooccurrence",
    "semantic": "semantic_neighbors",
}
COLLABORATIVE = ("transitions", "cooccurrence")
WEIGHTINGS = ("count", "inverse-hop")


@dataclass(frozen=True)
class RelationParams:
    """The knobs of a relation snapshot (METHODS.md: IIRG's settings are the defaults)."""

    window: int = defaults.WINDOW  # co-occurrence: hops in each direction
    weighting: Literal["count", "inverse-hop"] = defaults.WEIGHTING  # type: ignore[assignment]
    directed: bool = False  # co-occurrence: only a -> b (b after a)
    top_k: int = defaults.TOP_K  # neighbours kept per item
    top_up: bool = True  # IIRG top-up from semantic neighbours
    top_up_mode: Literal["chained", "independent"] = defaults.TOP_UP_MODE  # type: ignore[assignment]
    top_up_depth: int = defaults.TOP_UP_DEPTH  # semantic neighbours searched (IIRG: 500)
    strict: bool = False  # also drop validation targets
    model: str = defaults.EMBEDDING_MODEL  # sentence-transformers model for semantic
    index: str = defaults.SEMANTIC_INDEX  # semantic top-K search: exact | ann | auto

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 50:
            raise ValueError(f"window must be between 1 and 50, got {self.window}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.top_up_mode not in MODES:
            raise ValueError(f"top_up_mode must be one of {MODES}, got {self.top_up_mode!r}")
        if self.top_up_depth < 1:
            raise ValueError(f"top_up_depth must be >= 1, got {self.top_up_depth}")
        resolve_index(self.index, 0)  # an unknown index name fails here, not inside a task

    def spec(self, kind: str) -> dict[str, Any]:
        """What a snapshot of `kind` depends on (besides data fingerprints)."""
        if kind == "transitions":
            return {
                "kind": kind,
                "window": 1,
                "directed": True,
                "weighting": "count",
                "top_k": 0,
                "strict": self.strict,
                "top_up": False,
            }
        if kind == "cooccurrence":
            spec = {
                "kind": kind,
                "window": self.window,
                "directed": self.directed,
                "weighting": self.weighting,
                "top_k": self.top_k,
                "strict": self.strict,
                "top_up": self.top_up,
            }
            if self.top_up:
                spec |= {
                    "model": self.model,
                    "top_up_mode": self.top_up_mode,
                    "top_up_depth": self.top_up_depth,
                }
            return spec
        if kind == "semantic":
            return {"kind": kind, "model": self.model, "top_k": self.top_k, "index": self.index}
        raise ValueError(f"unknown relation kind {kind!r}; choose from {', '.join(KINDS)}")


@dataclass
class Snapshot:
    """A small record of one snapshot: what a task returns (the rows stay in the warehouse)."""

    snapshot_id: int
    dataset: str
    kind: str
    as_of: str | None
    status: str  # computed | cached
    rows: int
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def fingerprints(con: duckdb.DuckDBPyConnection, dataset: str, kind: str) -> dict[str, str]:
    """Content fingerprints a snapshot depends on; missing prepare is a clear error."""
    row = fetch_first(run(con, "relations/prepared_fingerprint", {"dataset": dataset}))
    if not row or not row[0]:
        raise ValueError(
            f"dataset {dataset!r} has no prepared sequences (or they predate "
            f"fingerprints); run `hoprec prepare --dataset {dataset}` first"
        )
    out = {"prepared": row[0]}
    if kind == "semantic":
        out["items"] = fetch_value(run(con, "relations/items_fingerprint", {"dataset": dataset}))
    return out


def params_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def resolved_spec(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    kind: str,
    params: RelationParams,
    semantic_id: int | None,
) -> tuple[dict[str, Any], str]:
    """A snapshot's full dependency record (params + data fingerprints) and its hash."""
    spec = params.spec(kind) | fingerprints(con, dataset, kind)
    if kind == "cooccurrence" and spec["top_up"]:
        if semantic_id is None:
            raise ValueError("co-occurrence top-up needs a semantic snapshot (semantic_id)")
        spec["semantic_snapshot"] = _semantic_hash(con, semantic_id)
    return spec, params_hash(spec)


def snapshot_params(
    con: duckdb.DuckDBPyConnection, dataset: str, snapshot_id: int
) -> tuple[str, str | None, RelationParams]:
    """(kind, as_of, the RelationParams) a stored snapshot was computed with."""
    rows = run(con, "relations/snapshot_record", {"snapshot_id": snapshot_id, "dataset": dataset})
    found = rows.fetchall()
    if not found:
        raise ValueError(f"relation snapshot #{snapshot_id} of {dataset!r} does not exist")
    kind, as_of, params_json = found[0]
    spec = json.loads(params_json)
    knobs = {f: spec[f] for f in RelationParams.__dataclass_fields__ if f in spec}
    return kind, None if as_of is None else str(as_of), RelationParams(**knobs)


def find_snapshot(
    con: duckdb.DuckDBPyConnection, dataset: str, kind: str, as_of: datetime | None, phash: str
) -> tuple | None:
    return fetch_first(
        run(
            con,
            "relations/find_snapshot",
            {"dataset": dataset, "kind": kind, "params_hash": phash, "as_of": ts_text(as_of)},
        )
    )


# --- building and storing snapshots ---------------------------------------------------------
def build_collaborative(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    spec: dict[str, Any],
    as_of: datetime | None,
    semantic_id: int | None,
    shard_files: list[str] | None = None,
    shard_input: str | None = None,
) -> dict[str, Any]:
    """Temp table `rel_out` for transitions/co-occurrence; returns input statistics.

    Merging shards, popularity and statistics come from the events the shards were counted
    from (`shard_input`, their Parquet export) when given, so the input is never loaded whole."""
    if shard_files and shard_input:
        run(con, "relations/popularity_from_export", {"path": shard_input})
    else:
        load_input(con, dataset, as_of, spec["strict"])
    lcm = lcm_upto(spec["window"]) if spec["weighting"] == "inverse-hop" else 1
    rank = {"directed": spec["directed"], "lcm": lcm, "top_k": spec["top_k"]}
    run(con, "relations/drop_ranked")
    if shard_files:  # merged and ranked a source partition at a time: memory of one shard
        parts = len(shard_files)
        for part in range(parts):
            where = {"part": part, "parts": parts}
            run(
                con,
                "relations/merge_shards",
                {"files": shard_files, "directed": spec["directed"]} | where,
            )
            run(con, "relations/ranked", rank | where)
            run(con, "relations/ranked_collect")
    else:
        count_pairs(con, spec)
        run(con, "relations/ranked", rank | {"part": 0, "parts": 1})
        run(con, "relations/ranked_collect")
    top_up = bool(spec["top_up"] and semantic_id is not None)
    if top_up:
        rows = top_up_table(
            con, dataset, spec["model"], spec["top_k"], spec["top_up_depth"], spec["top_up_mode"]
        )
        con.register("rel_top_up_rows", rows)
        try:
            run(con, "relations/top_up")
        finally:
            con.unregister("rel_top_up_rows")
    else:
        run(con, "relations/no_top_up")
    run(con, "relations/collaborative_rows", {"top_up": top_up})
    if shard_files and shard_input:
        return fetch_dict(run(con, "relations/input_stats_from_export", {"path": shard_input}))
    return fetch_dict(run(con, "relations/input_stats"))


def build_semantic(
    con: duckdb.DuckDBPyConnection, dataset: str, spec: dict[str, Any], encoder: Any = None
) -> dict[str, Any]:
    """Temp table `rel_out` with each item's exact cosine top-K; returns embedding statistics."""
    from .embeddings import semantic_neighbors

    table, emb = semantic_neighbors(
        con, dataset, spec["model"], spec["top_k"], encoder=encoder, index=spec["index"]
    )
    con.register("rel_semantic", table)
    try:
        run(con, "relations/semantic_rows")
    finally:
        con.unregister("rel_semantic")
    return {
        "items": emb.n_items,
        "embedded_now": emb.n_encoded,
        "embeddings_cached": emb.n_cached,
        "dim": int(emb.vectors.shape[1]) if emb.vectors.ndim == 2 else 0,
    }


def snapshot(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    kind: str,
    as_of: str | datetime | None = None,
    params: RelationParams | None = None,
    *,
    force: bool = False,
    semantic_id: int | None = None,
    shard_files: list[str] | None = None,
    encoder: Any = None,
    shard_input: str | None = None,
) -> Snapshot:
    """Make (or reuse) the snapshot of `kind` for `dataset` as of `as_of`.

    Semantic neighbours depend on item texts, not on time, so their snapshot has no as_of and
    one serves every date. Co-occurrence top-up reads the semantic snapshot `semantic_id`.
    """
    params = params or RelationParams()
    at = None if kind == "semantic" else parse_as_of(as_of)
    spec, phash = resolved_spec(con, dataset, kind, params, semantic_id)
    hit = None if force else find_snapshot(con, dataset, kind, at, phash)
    if hit:
        sid, rows, stats_json, seconds = hit
        log.info("%s snapshot of %s as of %s: cached (#%d)", kind, dataset, ts_text(at), sid)
        return Snapshot(
            sid, dataset, kind, ts_text(at), "cached", rows, seconds, spec, json.loads(stats_json)
        )
    started = time.perf_counter()
    try:
        if kind == "semantic":
            stats = build_semantic(con, dataset, spec, encoder)
        else:
            stats = build_collaborative(
                con, dataset, spec, at, semantic_id, shard_files, shard_input
            )
        stats |= fetch_dict(run(con, "relations/out_stats"))
        stats["shards"] = len(shard_files or []) or 1
        seconds = time.perf_counter() - started
        sid = fetch_value(run(con, "relations/next_snapshot_id"))
        with transaction(con):
            run(
                con,
                "relations/replace_snapshot",
                {
                    "snapshot_id": sid,
                    "dataset": dataset,
                    "kind": kind,
                    "as_of": ts_text(at),
                    "params_json": json.dumps(spec, sort_keys=True),
                    "params_hash": phash,
                    "rows": stats["rows"],
                    "stats_json": json.dumps(stats, default=str),
                    "seconds": seconds,
                },
                table=TABLES[kind],
            )
    finally:
        run(con, "relations/drop_staging")
    log.info(
        "%s snapshot of %s as of %s: %d rows in %.2f s (#%d)",
        kind,
        dataset,
        ts_text(at),
        stats["rows"],
        seconds,
        sid,
    )
    return Snapshot(
        sid, dataset, kind, ts_text(at), "computed", stats["rows"], seconds, spec, stats
    )


def _semantic_hash(con: duckdb.DuckDBPyConnection, semantic_id: int | None) -> str:
    """The params hash of the semantic snapshot a top-up reads (so a new one invalidates)."""
    row = fetch_first(run(con, "relations/semantic_params_hash", {"snapshot_id": semantic_id}))
    if not row:
        raise ValueError(f"semantic snapshot #{semantic_id} does not exist")
    return row[0]


def as_record(s: Snapshot) -> dict[str, Any]:
    return asdict(s)
