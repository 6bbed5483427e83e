"""Ingest: one file becomes one batch of good rows plus quarantined bad rows, in one transaction.

Files stream through DuckDB's readers (raw lines, JSON functions, read_parquet); Python only
peeks at headers and orchestrates. Validation is SQL in `sql/ingest/`.
"""

from __future__ import annotations

import ast
import gzip
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .assets import sha256_of
from .formats import FORMATS, ML100K_GENRES, OPTIONAL, REQUIRED, Format, Source, source_for
from .warehouse import fetch_dicts, fetch_row, fetch_value, row_count, run, transaction

log = logging.getLogger("hoprec.ingest")
MAX_LINE_SIZE = 64 << 20
FIELDS = ("user_id", "item_id", "ts", "rating", "title", "description", "categories")


class IngestError(ValueError):
    """A fatal problem with an input: a missing file, column or field, or a wrong format."""


@dataclass
class BatchResult:
    """What happened to one file: a small record, fit to be a task result."""

    path: str
    kind: str
    status: str  # loaded | skipped
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


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def head_bytes(path: Path, n: int = 1 << 16) -> bytes:
    """The first `n` decompressed bytes of a file, for sniffing headers and line endings."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as fh:
        return fh.read(n)


def header_columns(path: Path, src: Source) -> list[str]:
    """Column names of a delimited file's header; RecBole's `name:type` keeps only `name`."""
    first = head_bytes(path).split(b"\n", 1)[0].rstrip(b"\r").decode(src.encoding, "replace")
    if src.quote_aware:
        cols = [c.strip().strip('"') for c in re.findall(_field_re(src.delim), first + src.delim)]
    else:
        cols = first.split(src.delim)
    return [c.split(":", 1)[0].strip().lstrip("\ufeff") for c in cols]


def _field_re(delim: str) -> str:
    d = re.escape(delim)
    return f'("(?:[^"]|"")*"|[^"{d}]*){d}'


def resolve_fields(path: Path, src: Source) -> tuple[dict[str, Any], int | None]:
    """Where each canonical field sits in this file, and how many columns a line must have.

    Fails at once, naming the file and the column, when a required field cannot be found.
    """
    wanted = REQUIRED[src.kind] + OPTIONAL[src.kind]
    needed = set(REQUIRED[src.kind]) | set(src.explicit)
    if src.reader == "delimited" and src.header:
        cols = header_columns(path, src)
        loc: dict[str, Any] = {}
        for f in wanted:
            name = src.fields.get(f)
            if name in cols:
                loc[f] = cols.index(name) + 1
            elif f in needed:
                raise IngestError(
                    f"{path}: required column {name!r} (for {f}) is missing; the header has {cols}"
                )
        return loc, len(cols)
    if src.reader == "parquet":
        import pyarrow.parquet as pq

        cols = pq.read_schema(path).names
        loc = {}
        for f in wanted:
            name = src.fields.get(f)
            if name in cols:
                loc[f] = name
            elif f in needed:
                raise IngestError(
                    f"{path}: required column {name!r} (for {f}) is missing; "
                    f"the file has columns {cols}"
                )
        return loc, None
    if src.reader == "delimited":
        return {f: src.fields[f] for f in wanted if f in src.fields}, max(
            v for v in src.fields.values() if isinstance(v, int)
        )
    return {f: src.fields[f] for f in wanted if f in src.fields}, None


def _py_literal_to_json(col: pa.Array) -> pa.Array:
    """Vectorized UDF: a Python-literal line (Amazon 2014 meta) as JSON text, else NULL."""
    out: list[str | None] = []
    for text in col.to_pylist():
        try:
            out.append(json.dumps(ast.literal_eval(text), default=str))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out.append(None)
    return pa.array(out, pa.string())


def _ensure_udf(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.create_function(  # type: ignore[call-overload]  # arrow UDF: stubs miss the form
            "py_literal_to_json",
            _py_literal_to_json,
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    except duckdb.NotImplementedException:
        pass  # already registered on this connection


def load_raw_lines(con: duckdb.DuckDBPyConnection, path: Path, encoding: str) -> None:
    """`raw_lines(line_no, raw)` and `rejected(line_no, raw, reason)` for a text file."""
    new_line = "\\r\\n" if b"\r\n" in head_bytes(path) else "\\n"
    run(
        con,
        "ingest/load_raw_lines",
        {
            "path": str(path),
            "nul": "\x00",
            "new_line": new_line,
            "encoding": encoding,
            "max_line_size": MAX_LINE_SIZE,
        },
    )
    n_rejects = row_count(con, "raw_rejects")
    run(con, "ingest/number_lines" if n_rejects else "ingest/number_lines_plain")
    run(con, "ingest/rejected_lines", {"encoding": encoding})


def _is_json_document(path: Path) -> bool:
    """True for one JSON value spread over the file, False for JSON lines."""
    head = head_bytes(path).lstrip()
    if not head.startswith((b"{", b"[")):
        return False
    first = head.split(b"\n", 1)[0]
    try:
        json.loads(first)
        return False
    except ValueError:
        return True


def stage(con: duckdb.DuckDBPyConnection, path: Path, src: Source) -> None:
    """Fill the temp table `stage` (line_no, raw, parse_error, canonical fields as text)."""
    loc, n_fields = resolve_fields(path, src)
    cols = {f"c_{f}": loc.get(f) for f in FIELDS}
    run(con, "ingest/no_rejects")
    if src.reader == "parquet":
        run(con, "ingest/stage_parquet", {"path": str(path), **cols})
        return
    if src.reader == "json_items" and _is_json_document(path):
        run(con, "ingest/docs_json_object", {"path": str(path)})
        run(
            con,
            "ingest/stage_json",
            {"invalid_reason": "entry is not a JSON object", **cols, "c_item_id": "$.item_id"},
        )
        return
    load_raw_lines(con, path, src.encoding)
    if src.stage_sql:
        run(con, src.stage_sql, {"genres": list(ML100K_GENRES)})
    elif src.reader == "delimited":
        run(
            con,
            "ingest/stage_delimited",
            {
                "skip": 1 if src.header else 0,
                "delim": src.delim,
                "quote_aware": src.quote_aware,
                "field_re": _field_re(src.delim),
                "n_fields": n_fields,
                "cat_sep": src.cat_sep or "|",
                **cols,
            },
        )
    elif src.reader == "p5_sequences":
        run(con, "ingest/stage_p5_sequences")
    else:
        if src.reader == "pyliteral":
            _ensure_udf(con)
            run(con, "ingest/docs_pyliteral")
            invalid = "not a Python literal (broken or truncated line)"
        else:
            run(con, "ingest/docs_json")
            invalid = "broken JSON (unparseable or truncated line)"
        if src.reader == "json_items":
            cols["c_item_id"] = cols["c_item_id"] or "$.item_id"
        run(con, "ingest/stage_json", {"invalid_reason": invalid, **cols})


def check_fields_present(con: duckdb.DuckDBPyConnection, path: Path, src: Source) -> None:
    """Fatal when records parse but none carries a required field (wrong mapping or format)."""
    row = fetch_row(run(con, "ingest/stage_counts"))
    n_records, n_parsed = row[0], row[1]
    present = {"user_id": row[2], "item_id": row[3], "ts": row[4]}
    if n_records and not n_parsed and src.reader == "delimited":
        raise IngestError(
            f"{path}: no line has the {src.delim!r}-separated layout this format "
            f"expects; is --format right?"
        )
    for f in REQUIRED[src.kind]:
        if n_parsed and present[f] == 0:
            where = src.fields.get(f, f)
            raise IngestError(
                f"{path}: required field {where!r} (for {f}) is missing from every record"
            )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    fmt_name: str,
    src: Source,
    path: Path,
    *,
    ts_unit: str | None = None,
) -> BatchResult:
    """Load one file as one batch. Skips a file whose content was already ingested."""
    t0 = time.perf_counter()
    sha = sha256_of(path)  # of the bytes as stored, compressed or not
    prior = run(
        con, "ingest/find_batch", {"dataset": dataset, "kind": src.kind, "sha256": sha}
    ).fetchone()
    if prior:
        return BatchResult(
            str(path),
            src.kind,
            "skipped",
            prior[0],
            sha,
            note=f"same content as batch {prior[0]} ({prior[1]})",
            seconds=time.perf_counter() - t0,
        )
    # Staging fills connection-local temp tables outside the transaction: their rowids are the
    # line order only when committed, and the batch transaction then covers just the writes.
    run(con, "ingest/drop_staging")
    stage(con, path, src)
    check_fields_present(con, path, src)
    run(con, f"ingest/check_{src.kind}", {"ts_unit": ts_unit or src.ts_unit})
    n_read, n_good, n_bad = fetch_row(run(con, "ingest/checked_counts"))
    n_rejected = row_count(con, "rejected")
    with transaction(con):
        batch_id = run(
            con,
            "ingest/open_batch",
            {
                "dataset": dataset,
                "kind": src.kind,
                "format": fmt_name,
                "path": str(path),
                "sha256": sha,
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
    warehouse: str, dataset: str, fmt_name: str, src: Source, path: Path, ts_unit: str | None = None
) -> dict[str, Any]:
    """Load one file into the warehouse; returns its batch record (idempotent by sha256)."""
    from prefect.logging import get_run_logger

    logger = get_run_logger()
    with connect(warehouse) as con:
        result = ingest_file(con, dataset, fmt_name, src, path, ts_unit=ts_unit)
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
