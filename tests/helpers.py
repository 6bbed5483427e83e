"""Small helpers for tests: write fixture files and ingest them with the plain functions."""

from __future__ import annotations

import gzip
from pathlib import Path

from hoprec.tasks.data.formats import generic_source
from hoprec.tasks.data.ingest import BatchResult, get_format, ingest_file, plan_files


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write a fixture file; a .gz name is gzip-compressed."""
    data = text if isinstance(text, bytes) else text.encode(encoding)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def ingest(
    con,
    dataset: str,
    fmt: str,
    *paths: Path,
    kind: str = "interactions",
    mapping: dict[str, str] | None = None,
    ts_unit: str | None = None,
    encoding: str | None = None,
) -> list[BatchResult]:
    """Plan and ingest like the flow does, without Prefect."""
    f = get_format(fmt)
    override = (
        generic_source(f, kind, mapping or {}, ts_unit or "s", None, encoding)
        if f.generic
        else None
    )
    return [
        ingest_file(con, dataset, fmt, src, p, ts_unit=ts_unit)
        for p, src in plan_files(f, list(paths), override)
    ]


def rows(con, sql: str, *params) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def write_sequences(con, dataset: str, seqs: list[list[int]], n_items: int | None = None) -> None:
    """Store ordered item sequences as a prepared dataset (leave-one-out labels, day ts per
    position) without going through ingest/prepare: the relation tests' fixture data."""
    import hashlib
    import json

    con.execute("DELETE FROM sequences WHERE dataset = ?", [dataset])
    con.execute("DELETE FROM item_index WHERE dataset = ?", [dataset])
    con.execute("DELETE FROM prepare_runs WHERE dataset = ?", [dataset])
    rows = []
    for u, seq in enumerate(seqs, start=1):
        n = len(seq)
        for p, item in enumerate(seq, start=1):
            split = (
                ("test" if p == n else "valid" if p == n - 1 else "train") if n >= 3 else "train"
            )
            rows.append(
                (
                    dataset,
                    f"u{u}",
                    u,
                    p,
                    item,
                    f"2000-01-{p:02d}" if p <= 28 else f"2000-02-{p - 28:02d}",
                    split,
                )
            )
    if rows:
        con.executemany(
            "INSERT INTO sequences VALUES (?, ?, ?, ?, ?, CAST(? AS TIMESTAMP), ?)", rows
        )
    top = n_items or max((i for s in seqs for i in s), default=0)
    con.executemany(
        "INSERT INTO item_index VALUES (?, ?, ?)", [(dataset, str(i), i) for i in range(1, top + 1)]
    )
    fp = hashlib.md5(json.dumps(seqs).encode()).hexdigest()
    con.execute(
        "INSERT INTO prepare_runs VALUES (?, '{}', ?, '', now()::TIMESTAMP)",
        [dataset, json.dumps({"fingerprint": fp})],
    )


def fake_encoder(texts: list[str], dim: int = 16):
    """Deterministic unit vectors from the text (stable across processes; no model needed)."""
    import hashlib

    import numpy as np

    seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
    out = np.stack([np.random.default_rng(s).standard_normal(dim) for s in seeds])
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def prepare_ml100k(con, ml100k_dir: Path, out_dir: Path) -> None:
    """The embedded ml-100k, ingested and prepared with the defaults (5-core, leave-one-out)."""
    from hoprec.tasks.data.prepare import PrepareParams, prepare

    ingest(con, "ml100k", "ml-100k", ml100k_dir)
    prepare(con, "ml100k", PrepareParams(), out_dir)


# seven items whose SIDs share prefixes: what the tiny-model scoring tests rank (`tiny` fixture)
TINY_SIDS = {i: f"<a_{i % 3}><b_{i // 3}><c_0><d_0>" for i in range(1, 8)}


def write_successor_samples(path: Path, items: dict[int, str]) -> Path:
    """A build Parquet of next-item samples "After [sid(i)]?" -> "[sid(next i)]", one an item,
    the items in a cycle: a task the training tests can learn in a few steps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hoprec.tasks.llm.instructions import SCHEMA
    from hoprec.tasks.llm.prompts import messages

    order = sorted(items)
    rows = [
        {
            "task": "next-item",
            "key": f"n:{i}",
            "user_idx": i,
            "input_items": [i],
            "input_pos": [0],
            "target_items": [j],
            "target_pos": [1],
            "messages": messages(f"After [{items[i]}]?", f"[{items[j]}]"),
            "loss_weight": 1.0,
        }
        for i, j in zip(order, order[1:] + order[:1])
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path
