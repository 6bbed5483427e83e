"""Semantic IDs (SIDs): item embeddings quantized (rq.py) into short token strings, versioned.

Every SID has L + 1 codes: the L RQ codes and a disambiguation code (TIGER): 0 for the first item
of an L-code in item_idx order, 1, 2, ... for the next. A fixed length keeps constrained decoding
a plain trie of depth L + 1, and no SID is ever a prefix of another, even after new items join.

A version is keyed by everything it depends on (model, parameters, the item ids and exact texts),
so the same request is a cache hit. Within a version nothing changes: new items get the nearest
centroid per level (no re-quantizing) and the next free disambiguation code of their L-code.
Items are keyed by item_id, which survives a re-prepare that renumbers item_idx.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from .. import defaults
from ..data.warehouse import run, transaction
from ..relations.embeddings import DEFAULT_MODEL, Encoder, embed_items
from ..reports import md_table
from ..settings import state_dir
from .rq import diagnostics, disambiguate, effective_codebook, encode, plot_diagnostics, rq_kmeans
from .store import (
    catalogue,
    first_row,
    insert_codes,
    list_array,
    load_codebooks,
    registered,
    version_codes,
    version_row,
)

log = logging.getLogger("hoprec.sids")

METHODS = ("rq-kmeans",)
ALGORITHM = "sklearn-kmeans++/n_init-max-entropy/float64/v1"  # in the version hash
TEXT_INPUTS = {"dataset", "codebook_used", "algorithm", "items", "catalogue"}  # besides SidParams


@dataclass(frozen=True)
class SidParams:
    """How a SID version is built; all of it goes into the version id."""

    levels: int = defaults.SID_LEVELS  # L: RQ levels
    codebook: int = defaults.SID_CODEBOOK  # codes per level before the small-catalogue shrink
    seed: int = 0
    model: str = DEFAULT_MODEL  # embedding model (relations/embeddings.py)
    method: str = "rq-kmeans"
    n_init: int = 3  # k-means runs per level; the one with most code entropy wins
    shrink: bool = True  # shrink the codebook for small catalogues (effective_codebook)

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= 8:
            raise ValueError(f"levels must be between 1 and 8, got {self.levels}")
        if not 1 <= self.codebook <= 65536:
            raise ValueError(f"codebook must be between 1 and 65536, got {self.codebook}")
        if self.seed < 0 or self.n_init < 1:
            raise ValueError(f"need seed >= 0 and n_init >= 1, got {self.seed}, {self.n_init}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")


@dataclass
class SidResult:
    """A small record of one version: what the task returns (the SIDs stay in the warehouse)."""

    sid_version: str
    dataset: str
    status: str  # computed | cached
    n_items: int
    levels: int
    codebook: int  # effective codes per level
    seconds: float  # build time (of the original build when cached)
    png: str  # diagnostics plot
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


def _png_path(sid_version: str) -> Path:
    return state_dir() / "sids" / re.sub(r"[^A-Za-z0-9._-]", "_", sid_version) / "diagnostics.png"


def _refresh(
    con: duckdb.DuckDBPyConnection,
    sid_version: str,
    sizes: Sequence[int],
    stats: dict[str, Any],
    full: np.ndarray | None = None,
) -> Path:
    """Re-plot a version's diagnostics (codes from the warehouse unless given)."""
    full = version_codes(con, sid_version) if full is None else full
    return plot_diagnostics(full[:, : len(sizes)], sizes, stats, _png_path(sid_version))


# --- the API ---------------------------------------------------------------------------------
def version_spec(
    dataset: str, params: SidParams, n_items: int, fingerprint: str
) -> tuple[dict[str, Any], str]:
    """Everything a version depends on, and its id `<dataset>-rq<L>x<C>-<hash8>`."""
    c = effective_codebook(n_items, params.levels, params.codebook, params.shrink)
    spec = asdict(params) | {
        "dataset": dataset,
        "codebook_used": c,
        "algorithm": ALGORITHM,
        "items": n_items,
        "catalogue": fingerprint,
    }
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return spec, f"{dataset}-rq{params.levels}x{c}-{h}"


def build_sids(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    params: SidParams = SidParams(),
    *,
    force: bool = False,
    encoder: Encoder | None = None,
) -> SidResult:
    """Make (or reuse) the SID version of the dataset's current catalogue.

    The same request (params, model, item ids and texts) returns the stored version without
    embedding or clustering; `force` rebuilds it and swaps it in one transaction. A changed
    catalogue is a new version: to keep SIDs stable as items arrive, keep a version and call
    assign_new_items.
    """
    item_idx, item_ids, fp = catalogue(con, dataset)
    spec, version = version_spec(dataset, params, len(item_idx), fp)
    c = spec["codebook_used"]
    keys = {"sid_version": version, "dataset": dataset}
    if not force and (hit := first_row(con, "sids/find_version", keys)):
        stats = json.loads(hit[5])
        png = _png_path(version)
        if not png.exists():
            png = _refresh(con, version, [p["size"] for p in stats["per_level"]], stats)
        log.info("SIDs of %s: cached (%s)", dataset, version)
        return SidResult(
            version,
            dataset,
            "cached",
            stats["items"],
            hit[2],
            hit[3],
            hit[6],
            str(png),
            json.loads(hit[4]),
            stats,
        )
    t0 = time.perf_counter()
    emb = embed_items(con, dataset, params.model, encoder=encoder)
    if not np.array_equal(emb.item_idx, item_idx):
        raise RuntimeError("item_index changed while embedding; run again")
    t1 = time.perf_counter()
    books, codes, mse = rq_kmeans(emb.vectors, params.levels, c, params.seed, params.n_init)
    full = np.column_stack([codes, disambiguate(codes)]).astype(np.int32)
    sizes = [len(b) for b in books]
    stats = diagnostics(codes, sizes) | {
        "dim": emb.dim,
        "rq_mse": mse,
        "embedded_now": emb.n_encoded,
        "embeddings_cached": emb.n_cached,
        "embed_seconds": t1 - t0,
        "quantize_seconds": time.perf_counter() - t1,
        "incremental_items": 0,
    }
    seconds = time.perf_counter() - t0
    cents = np.concatenate(books)
    centroids = pa.table(
        {
            "level": pa.array(np.repeat(np.arange(1, len(books) + 1), sizes), pa.int32()),
            "code": pa.array(np.concatenate([np.arange(s) for s in sizes]), pa.int32()),
            "centroid": list_array(cents, pa.float32()),
        }
    )
    with transaction(con):
        run(con, "sids/delete_version", {"sid_version": version})
        with registered(con, sid_new_centroids=centroids):
            run(con, "sids/insert_centroids", keys)
        insert_codes(con, dataset, version, item_idx, item_ids, full, incremental=False)
        run(
            con,
            "sids/insert_version",
            keys
            | {
                "model": params.model,
                "method": params.method,
                "levels": params.levels,
                "codebook": c,
                "params_json": json.dumps(spec, sort_keys=True),
                "stats_json": json.dumps(stats),
                "seconds": seconds,
            },
        )
    png = _refresh(con, version, sizes, stats, full)
    log.info(
        "SIDs of %s: %d items, %dx%d codes, %.1f%% collisions, largest bucket %d, %.1f s (%s)",
        dataset,
        len(item_idx),
        params.levels,
        c,
        100 * stats["collision_rate"],
        stats["largest_bucket"],
        seconds,
        version,
    )
    return SidResult(
        version,
        dataset,
        "computed",
        len(item_idx),
        params.levels,
        c,
        seconds,
        str(png),
        spec,
        stats,
    )


def assign_new_items(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    sid_version: str,
    *,
    encoder: Encoder | None = None,
) -> int:
    """Give SIDs to the dataset's items that have none in the version; returns how many.

    Each gets the nearest stored centroid per level on its residuals and the next free
    disambiguation code of its L-code; no existing SID or centroid changes.
    """
    _, model, levels, _, _, stats_json, _ = version_row(con, dataset, sid_version)
    new = run(con, "sids/unassigned", {"dataset": dataset, "sid_version": sid_version}).fetchall()
    if not new:
        return 0
    idx = np.array([i for i, _ in new], np.int32)
    emb = embed_items(con, dataset, model, encoder=encoder)
    books = load_codebooks(con, sid_version)
    codes = encode(emb.vectors[np.searchsorted(emb.item_idx, idx)], books)
    sizes = [len(b) for b in books]
    with transaction(con):
        taken = run(
            con, "sids/next_free", {"sid_version": sid_version, "levels": levels}
        ).fetchall()
        d = disambiguate(codes, {tuple(p): n for p, n in taken})
        insert_codes(
            con,
            dataset,
            sid_version,
            idx,
            [i for _, i in new],
            np.column_stack([codes, d]).astype(np.int32),
            incremental=True,
        )
        full = version_codes(con, sid_version)
        old = json.loads(stats_json)
        stats = (
            old
            | diagnostics(full[:, :levels], sizes)
            | {"incremental_items": old.get("incremental_items", 0) + len(new)}
        )
        run(con, "sids/update_stats", {"sid_version": sid_version, "stats_json": json.dumps(stats)})
    _refresh(con, sid_version, sizes, stats, full)
    log.info("SIDs of %s: %d new items added to %s", dataset, len(new), sid_version)
    return len(new)


def sid_provenance(
    con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str
) -> tuple[bool, str]:
    """(text_only, detail) for a leakage audit: the version exists for the dataset and its
    recorded inputs are only the item catalogue (ids + exact texts), the embedding model and the
    RQ parameters; build_sids reads item_index, items and item_embeddings, never an event."""
    row = first_row(con, "sids/find_version", {"dataset": dataset, "sid_version": sid_version})
    if not row:
        return False, f"SID version {sid_version!r} of {dataset!r} does not exist"
    spec = json.loads(row[4])
    inputs = set(spec) - set(asdict(SidParams()))
    if inputs != TEXT_INPUTS:
        return False, (
            f"{sid_version} records inputs {sorted(inputs)}, expected {sorted(TEXT_INPUTS)}"
        )
    return True, (
        f"{sid_version}: {spec['method']} of `{spec['model']}` embeddings of "
        f"{spec['items']:,} item texts, catalogue {spec['catalogue'][:8]}"
    )


def sids_report(result: SidResult | Mapping[str, Any]) -> str:
    """The markdown a person reads after a SID build: summary, per-level table, bucket sizes,
    and where the diagnostics plot is (the flow attaches the image as its own artifact)."""
    r = asdict(result) if is_dataclass(result) else dict(result)
    s = r["stats"]
    summary = {
        "version": r["sid_version"],
        "status": r["status"],
        "items": r["n_items"],
        "codes": f"{r['levels']} x {r['codebook']} (+ d)",
        "collision rate": s["collision_rate"],
        "largest bucket": s["largest_bucket"],
        "items with d > 0": s["items_with_d_gt0"],
        "added later": s.get("incremental_items", 0),
        "seconds": round(r["seconds"], 2),
    }
    levels = [
        {
            "level": p["token"],
            "codes": p["size"],
            "used": p["used"],
            "use": p["use"],
            "entropy (bits)": p["entropy_bits"],
            "entropy / max": p["entropy_norm"],
            "largest code": p["largest_code"],
            "distinct prefixes": p["prefixes"],
            "residual MSE": (s.get("rq_mse") or [None] * len(s["per_level"]))[p["level"] - 1],
        }
        for p in s["per_level"]
    ]
    buckets = [{"items per L-code": int(k), "L-codes": v} for k, v in s["bucket_sizes"].items()]
    lines = [
        f"# Semantic IDs of `{r['dataset']}`",
        "",
        md_table([summary]),
        "",
        f"Model `{r['params'].get('model')}`, seed {r['params'].get('seed')}, "
        f"{r['params'].get('n_init')} k-means runs per level. Collision rate: share of items "
        "whose L codes another item shares (they differ only in the d code).",
        "",
        "## Levels",
        "",
        md_table(levels),
        "",
        "## Bucket sizes",
        "",
        md_table(buckets),
        "",
    ]
    lines.append(f"Plot: `{r['png']}`")
    return "\n".join(lines)


def as_record(result: SidResult) -> dict[str, Any]:
    return asdict(result)


# --- Prefect tasks -------------------------------------------------------------------------
# The version registry in the warehouse is the cache, so the tasks do not cache results.
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from ..data.warehouse import connect  # noqa: E402


@task(name="semantic-ids", cache_policy=NO_CACHE)
def sids_task(
    warehouse: str, dataset: str, params: SidParams, force: bool = False
) -> dict[str, Any]:
    """Quantize the item embeddings into a SID version (or reuse the stored one)."""
    with connect(warehouse) as con:
        return as_record(build_sids(con, dataset, params, force=force))


@task(name="assign-semantic-ids", cache_policy=NO_CACHE)
def assign_task(warehouse: str, dataset: str, sid_version: str) -> int:
    """Give SIDs to items that joined the catalogue after the version was built."""
    with connect(warehouse) as con:
        return assign_new_items(con, dataset, sid_version)
