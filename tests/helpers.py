"""Small helpers for tests: write fixture files and ingest them with the plain functions."""
from __future__ import annotations

import gzip
from pathlib import Path

from tasks.formats import generic_source
from tasks.ingest import BatchResult, get_format, ingest_file, plan_files


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write a fixture file; a .gz name is gzip-compressed."""
    data = text if isinstance(text, bytes) else text.encode(encoding)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def ingest(con, dataset: str, fmt: str, *paths: Path, kind: str = "interactions",
           mapping: dict[str, str] | None = None, ts_unit: str | None = None) -> list[BatchResult]:
    """Plan and ingest like the flow does, without Prefect."""
    f = get_format(fmt)
    override = generic_source(f, kind, mapping or {}, ts_unit or "s", None, None) if f.generic else None
    return [ingest_file(con, dataset, fmt, src, p, ts_unit=ts_unit)
            for p, src in plan_files(f, list(paths), override)]


def rows(con, sql: str, *params) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()
