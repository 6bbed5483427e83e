"""Ingest: one file becomes one batch of good rows plus quarantined bad rows, in one transaction.

Files stream through DuckDB's readers (raw lines, JSON functions, read_parquet); Python only
peeks at headers and orchestrates. Validation is SQL in `sql/ingest/`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from .. import defaults
from ..errors import raise_if_environment
from .assets import sha256_of
from .formats import FORMATS, Format, Source, source_for
from .staging import IngestError, check_fields_present, stage
from .warehouse import (
    fetch_dicts,
    fetch_first,
    fetch_row,
    fetch_value,
    row_count,
    run,
    transaction,
)

log = logging.getLogger("hoprec.ingest")


@dataclass
class BatchResult:
    """What happened to one file: a small record, fit to be a task result."""

    path: str
    kind: str
    status: str  # loaded | skipped | failed
    batch_id: int | None = None
    sha256: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    seconds: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def options_hash(src: Source, ts_unit: str | None, ts_window: tuple[str, str]) -> str:
    """What besides the bytes decides what a file loads as: the format's source (fields,
    delimiter, encoding, unit), the unit given, the timestamp window. Part of the skip key, so
    a file read with the wrong options can be read again with the right ones."""
    blob = json.dumps([asdict(src), ts_unit, list(ts_window)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    fmt_name: str,
    src: Source,
    path: Path,
    *,
    ts_unit: str | None = None,
    ts_window: tuple[str, str] = (defaults.TS_MIN, defaults.TS_MAX),
    force: bool = False,
) -> BatchResult:
    """Load one file as one batch. Skips a file whose content was already ingested. Timestamps
    outside `ts_window` are quarantined (sources without timestamps of their own, P5 sequence
    files, are exempt)."""
    t0 = time.perf_counter()
    sha = sha256_of(path)  # of the bytes as stored, compressed or not
    options = options_hash(src, ts_unit, ts_window)
    keys = {"dataset": dataset, "kind": src.kind, "sha256": sha}
    prior = (
        None if force else fetch_first(run(con, "ingest/find_batch", keys | {"options": options}))
    )
    earlier = (
        [b for (b,) in run(con, "ingest/earlier_batches", keys | {"path": str(path)}).fetchall()]
        if force
        else []
    )
    if prior:
        return BatchResult(
            str(path),
            src.kind,
            "skipped",
            prior[0],
            sha,
            note=f"same content and options as batch {prior[0]} ({prior[1]}); --force reloads",
            seconds=time.perf_counter() - t0,
        )
    # Staging fills connection-local temp tables outside the transaction: their rowids are the
    # line order only when committed, and the batch transaction then covers just the writes.
    run(con, "ingest/drop_staging")
    rows_sql, rows_params = stage(con, path, src)
    unit = ts_unit or src.ts_unit
    lo, hi = (None, None) if src.reader == "p5_sequences" else ts_window
    checks = {"ts_unit": unit, "ts_min": lo, "ts_max": hi} if src.kind == "interactions" else {}
    run(con, f"ingest/check_{src.kind}", checks | rows_params, parts={"stage": rows_sql})
    check_fields_present(con, path, src)
    hint = unit_hint(con, unit) if src.kind == "interactions" else ""
    n_read, n_good, n_bad = fetch_row(run(con, "ingest/checked_counts"))
    n_rejected = row_count(con, "rejected")
    with transaction(con):
        for old in earlier:  # --force: the earlier batches of this file go, in this transaction
            run(con, "ingest/drop_batch", {"batch_id": old})
        batch_id = run(
            con,
            "ingest/open_batch",
            {
                "dataset": dataset,
                "kind": src.kind,
                "format": fmt_name,
                "path": str(path),
                "sha256": sha,
                "options": options,
            },
        )
        batch_id = fetch_value(batch_id)
        params = {"batch_id": batch_id, "dataset": dataset, "path": str(path)}
        run(con, "ingest/insert_quarantine", params)
        before = row_count(con, src.kind, dataset)
        if src.kind == "interactions":
            run(con, "ingest/insert_interactions", params)
            loaded = row_count(con, src.kind, dataset) - before
        else:
            run(con, "ingest/upsert_items", params)
            loaded = row_count(con, "new_items")
        result = BatchResult(
            str(path),
            src.kind,
            "loaded",
            batch_id,
            sha,
            rows_read=n_read + n_rejected,
            rows_loaded=loaded,
            rows_quarantined=n_bad + n_rejected,
            rows_duplicate=n_good - loaded,
            note=hint,
        )
        run(
            con,
            "ingest/close_batch",
            {
                "batch_id": batch_id,
                "rows_read": result.rows_read,
                "rows_loaded": loaded,
                "rows_quarantined": result.rows_quarantined,
                "rows_duplicate": result.rows_duplicate,
            },
        )
    run(con, "ingest/drop_staging")
    result.seconds = time.perf_counter() - t0
    return result


# What a broken file raises: it fails that file, never the others (a truncated gzip raises
# EOFError, a fake one BadGzipFile, an unreadable file OSError, DuckDB its own errors).
FILE_ERRORS: tuple[type[BaseException], ...] = (
    IngestError,
    duckdb.Error,
    OSError,
    EOFError,
    UnicodeError,
    zlib.error,
)


def ingest_or_record(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    fmt_name: str,
    src: Source,
    path: Path,
    **options: Any,
) -> BatchResult:
    """`ingest_file`, except that a file that cannot be read becomes a failed batch with its
    reason (in `ingest_batches.error` and the result's note) instead of stopping the run."""
    try:
        return ingest_file(con, dataset, fmt_name, src, path, **options)
    except FILE_ERRORS as exc:
        raise_if_environment(exc)  # a full disk fails every later file too: stop here
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = reason.removeprefix(f"{path}: ")
        run(con, "ingest/drop_staging")
        try:
            sha = sha256_of(path)
        except OSError:
            sha = ""
        keys = {
            "dataset": dataset,
            "kind": src.kind,
            "format": fmt_name,
            "path": str(path),
            "sha256": sha,
            "error": reason,
        }
        with transaction(con):
            batch_id = fetch_value(run(con, "ingest/failed_batch", keys))
        log.warning("%s failed: %s", path, reason)
        return BatchResult(str(path), src.kind, "failed", batch_id, sha, note=reason)


def unit_hint(con: duckdb.DuckDBPyConnection, unit: str) -> str:
    """A note when most timestamps land after 2200: the wrong unit, and the one to use."""
    late, parsed = fetch_row(run(con, "ingest/unit_hint"))
    if not parsed or late / parsed <= 0.5 or unit not in ("s", "ms"):
        return ""
    better = {"s": "ms", "ms": "us"}[unit]
    return (
        f"{late:,} of {parsed:,} timestamps fall after 2200 read as `{unit}`: "
        f"they look like `--ts-unit {better}`"
    )


def list_batches(con: duckdb.DuckDBPyConnection, dataset: str) -> list[dict[str, Any]]:
    """The dataset's batches with their counts and status."""
    return fetch_dicts(run(con, "ingest/list_batches", {"dataset": dataset}))


def drop_batch(con: duckdb.DuckDBPyConnection, dataset: str, batch_id: int) -> dict[str, Any]:
    """Remove one batch and what it loaded, atomically; returns what was removed."""
    found = [b for b in list_batches(con, dataset) if b["batch_id"] == batch_id]
    if not found:
        raise IngestError(
            f"dataset {dataset!r} has no batch {batch_id}; see `hoprec batches "
            f"list --dataset {dataset}`"
        )
    counts = {
        table: row_count_where(con, table, batch_id)
        for table in ("interactions", "items", "quarantine")
    }
    with transaction(con):
        run(con, "ingest/drop_batch", {"batch_id": batch_id})
    return {"batch_id": batch_id, "path": found[0]["path"], "kind": found[0]["kind"], **counts}


def row_count_where(con: duckdb.DuckDBPyConnection, table: str, batch_id: int) -> int:
    """Rows of `table` that came from one batch."""
    return int(fetch_value(run(con, "ingest/batch_rows", {"batch_id": batch_id}, table=table)))


def plan_files(
    fmt: Format, paths: list[Path], src_override: Source | None = None
) -> list[tuple[Path, Source]]:
    """Expand paths (files or directories) to (file, source) pairs; fail fast on anything missing.

    Interaction files come after item files are listed, so a run reads items first.
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"input path(s) not found: {', '.join(missing)}")
    planned: list[tuple[Path, Source]] = []
    for p in paths:
        candidates = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
        for f in candidates:
            src = src_override or source_for(fmt, f)
            if src is not None:
                planned.append((f, src))
            elif not p.is_dir():
                patterns = ", ".join(pat for pat, _ in fmt.files)
                raise IngestError(
                    f"{f}: format {fmt.name} does not read this file (it reads {patterns})"
                )
    if not planned:
        raise IngestError(f"no file of format {fmt.name} found in {', '.join(map(str, paths))}")
    return sorted(planned, key=lambda fs: fs[1].kind != "items")


def get_format(name: str) -> Format:
    """The format called `name`, or an error that lists the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise IngestError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


# --- Prefect tasks -------------------------------------------------------------------------
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from .warehouse import connect  # noqa: E402


@task(name="ingest-file", cache_policy=NO_CACHE, task_run_name="ingest {path.name}")
def ingest_file_task(
    warehouse: str,
    dataset: str,
    fmt_name: str,
    src: Source,
    path: Path,
    ts_unit: str | None = None,
    ts_window: tuple[str, str] = (defaults.TS_MIN, defaults.TS_MAX),
    force: bool = False,
) -> dict[str, Any]:
    """Load one file into the warehouse; returns its batch record (idempotent by sha256)."""
    from prefect.logging import get_run_logger

    logger = get_run_logger()
    with connect(warehouse) as con:
        result = ingest_or_record(
            con, dataset, fmt_name, src, path, ts_unit=ts_unit, ts_window=ts_window, force=force
        )
    logger.info(
        "%s %s: read %s, loaded %s, quarantined %s, duplicates %s (%.1f s)",
        result.status,
        path,
        result.rows_read,
        result.rows_loaded,
        result.rows_quarantined,
        result.rows_duplicate,
        result.seconds,
    )
    return result.as_dict()


@task(name="quarantine-summary", cache_policy=NO_CACHE)
def quarantine_summary(warehouse: str, batch_ids: list[int]) -> list[dict[str, Any]]:
    """Bad rows of these batches grouped by reason, with one example line each."""
    if not batch_ids:
        return []
    with connect(warehouse) as con:
        return fetch_dicts(run(con, "ingest/quarantine_summary", {"batch_ids": batch_ids}))


@task(name="drop-batch", cache_policy=NO_CACHE)
def drop_batch_task(warehouse: str, dataset: str, batch_id: int) -> dict[str, Any]:
    """Drop one batch of the warehouse (see `drop_batch`)."""
    with connect(warehouse) as con:
        return drop_batch(con, dataset, batch_id)
