"""SID versions in the warehouse: how codes become tokens, and reading and writing a version's
codes, codebooks and SIDs. Everything that reads SIDs (instructions, training, the SID
transformer, evaluation) comes through here."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..data.warehouse import fetch_arrow, run
from ..relations.embeddings import item_text, text_sha256


# --- tokens ----------------------------------------------------------------------------------
def _token(pos: int, code: int) -> str:
    return f"<{chr(ord('a') + pos)}_{int(code)}>"


def sid_tokens(codes: Sequence[int]) -> str:
    """[12, 7, 201, 0] -> '<a_12><b_7><c_201><d_0>': position i uses the i-th letter."""
    return "".join(_token(i, c) for i, c in enumerate(codes))


# --- warehouse -------------------------------------------------------------------------------
@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    for name, t in tables.items():
        con.register(name, t)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def list_matrix(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A list column of equal-length rows -> a 2-d array."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(dtype)
    return flat.reshape(len(column), -1) if len(column) else flat.reshape(0, 0)


def list_array(m: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(m.ravel(), type_), m.shape[1])


def catalogue(con: duckdb.DuckDBPyConnection, dataset: str) -> tuple[np.ndarray, list[str], str]:
    """(item_idx, item_id, fingerprint of item ids and the exact texts that get embedded)."""
    ids = run(con, "sids/catalogue", {"dataset": dataset}).fetchall()
    if not ids:
        raise ValueError(f"dataset {dataset!r} has no prepared items; run `hoprec prepare` first")
    fields = run(con, "embeddings/item_fields", {"dataset": dataset}).fetchall()
    h = hashlib.sha256()
    for (idx, item_id), (_, title, cats, desc) in zip(ids, fields, strict=True):
        h.update(f"{idx}\t{item_id}\t{text_sha256(item_text(title, cats, desc))}\n".encode())
    return np.array([i for i, _ in ids], np.int32), [i for _, i in ids], h.hexdigest()


def first_row(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> tuple | None:
    """The first row of `sql/<name>.sql`, fetched to the end: DuckDB 2.0 refuses register and
    unregister on a connection whose last result is unfinished, as fetchone() leaves it."""
    rows = run(con, name, params).fetchall()
    return rows[0] if rows else None


def version_row(con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str) -> tuple:
    row = first_row(con, "sids/find_version", {"dataset": dataset, "sid_version": sid_version})
    if not row:
        raise ValueError(
            f"SID version {sid_version!r} of dataset {dataset!r} does not exist; "
            f"run `hoprec sids --dataset {dataset}` first"
        )
    return row


def load_codebooks(con: duckdb.DuckDBPyConnection, sid_version: str) -> list[np.ndarray]:
    """A version's centroids, one float32 [k_l, d] array per level."""
    t = fetch_arrow(run(con, "sids/codebooks", {"sid_version": sid_version}))
    levels = t.column("level").to_numpy()
    cents = list_matrix(t.column("centroid"), np.float32)
    return [cents[levels == lv] for lv in np.unique(levels)]


def version_codes(con: duckdb.DuckDBPyConnection, sid_version: str) -> np.ndarray:
    """All codes (L + 1 per item) of a version, in item_idx order."""
    return list_matrix(
        fetch_arrow(run(con, "sids/version_codes", {"sid_version": sid_version})).column("codes"),
        np.int32,
    )


def insert_codes(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    sid_version: str,
    item_idx: np.ndarray,
    item_ids: list[str],
    full: np.ndarray,
    incremental: bool,
) -> None:
    new = pa.table(
        {
            "item_id": pa.array(item_ids, pa.string()),
            "item_idx": pa.array(item_idx, pa.int32()),
            "codes": list_array(full, pa.int32()),
            "sid": pa.array([sid_tokens(c) for c in full.tolist()], pa.string()),
        }
    )
    with registered(con, sid_new_codes=new):
        run(
            con,
            "sids/insert_codes",
            {"sid_version": sid_version, "dataset": dataset, "incremental": incremental},
        )


def load_sids(con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str) -> dict[int, str]:
    """item_idx -> SID for the dataset's current items that have one in the version."""
    version_row(con, dataset, sid_version)
    keys = {"dataset": dataset, "sid_version": sid_version}
    return dict(run(con, "sids/load_sids", keys).fetchall())


def code_matrix(sids: Mapping[int, str], n_items: int) -> np.ndarray:
    """[n_items + 1, L] integer codes of every item's SID, row 0 (padding) zeros: the one
    parser of SID strings that the SID transformer and prefix memorization share."""
    missing = [i for i in range(1, n_items + 1) if i not in sids]
    if missing:
        raise ValueError(f"{len(missing)} items have no SID: {missing[:5]}")
    rows = [[int(c) for c in re.findall(r"<[a-z]_(\d+)>", sids[i])] for i in range(1, n_items + 1)]
    if len({len(r) for r in rows}) > 1:
        raise ValueError("SIDs of different lengths in one version")
    return np.array([[0] * (len(rows[0]) if rows else 0)] + rows, dtype=np.int64)


def all_sid_tokens(con: duckdb.DuckDBPyConnection, sid_version: str) -> list[str]:
    """Every token a tokenizer must add for the version: each codebook code of each level, and
    the disambiguation codes in use (d_0 .. d_max; assign_new_items can add one more)."""
    row = first_row(con, "sids/version_levels", {"sid_version": sid_version})
    if not row:
        raise ValueError(f"SID version {sid_version!r} does not exist")
    rows = run(con, "sids/token_codes", {"sid_version": sid_version, "levels": row[0]}).fetchall()
    return [_token(p, c) for p, c in rows]
