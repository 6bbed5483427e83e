"""Reading one source file into the `stage` table (line_no, raw, parse_error, canonical fields as
text): numbered lines with undecodable and NUL-holding lines set aside, header and field
resolution, and the per-format staging SQL. `ingest.py` checks and loads what is staged."""

from __future__ import annotations

import ast
import codecs
import gzip
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .formats import ML100K_GENRES, OPTIONAL, REQUIRED, Source
from .warehouse import fetch_row, row_count, run

MAX_LINE_SIZE = 64 << 20
MAX_RECORD_LINES = 200  # a quoted CSV field may span at most this many lines
FIELDS = ("user_id", "item_id", "ts", "rating", "title", "description", "categories")


class IngestError(ValueError):
    """A fatal problem with an input: a missing file, column or field, or a wrong format."""


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
        if cols == [""]:  # an empty file: nothing to load, like an empty JSON-lines file
            return {}, 0
        twice = sorted({c for c in cols if cols.count(c) > 1 and c in src.fields.values()})
        if twice:
            raise IngestError(
                f"{path}: the header names {twice} more than once, so which column is meant "
                "is ambiguous; rename one"
            )
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
    """`raw_lines(line_no, raw)` and `rejected(line_no, raw, reason)` for a text file.

    UTF-8 is read by DuckDB directly. Any other encoding is first decoded in Python into a
    temporary UTF-8 copy, line by line: DuckDB aborts a whole file on one byte its decoder
    refuses (latin-1's 0x80-0x9F), where a line that does not decode should only be set aside.
    Lines holding a NUL byte are set aside too: the reader would cut them there."""
    utf8 = encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8bom")
    with tempfile.TemporaryDirectory(prefix="hoprec-ingest-") as tmp:
        source, aside = path, []
        if not utf8:
            source = Path(tmp) / "utf8.txt"
            aside = transcode(path, encoding, source)
        new_line = "\\r\\n" if b"\r\n" in head_bytes(source) else "\\n"
        run(
            con,
            "ingest/load_raw_lines",
            {
                "path": str(source),
                "nul": "\x00",
                "new_line": new_line,
                "encoding": "utf-8" if not utf8 else encoding,
                "max_line_size": MAX_LINE_SIZE,
            },
        )
        aside += [(n, raw, "line contains a NUL byte") for n, raw in nul_lines(source)]
    n_rejects = row_count(con, "raw_rejects")
    run(con, "ingest/number_lines" if n_rejects else "ingest/number_lines_plain")
    run(con, "ingest/rejected_lines", {"encoding": encoding})
    rows = pa.table(
        {
            "line_no": pa.array([n for n, _, _ in aside], pa.int64()),
            "raw": pa.array([r for _, r, _ in aside], pa.string()),
            "reason": pa.array([why for _, _, why in aside], pa.string()),
        }
    )
    con.register("aside_rows", rows)
    try:
        run(con, "ingest/set_aside")
    finally:
        con.unregister("aside_rows")


def transcode(path: Path, encoding: str, out: Path) -> list[tuple[int, str, str]]:
    """Write `path` (any encoding Python knows, gzip or not) as UTF-8 to `out`, keeping line
    numbers: a line that does not decode is written empty and returned as (line, raw, reason)."""
    import io

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise IngestError(f"{path}: unknown text encoding {encoding!r} (--encoding)") from None
    opener: Any = gzip.open if _is_gzip(path) else open
    bad: list[tuple[int, str, str]] = []
    with opener(path, "rb") as raw, open(out, "w", encoding="utf-8", newline="") as dst:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        for n, line in enumerate(text, 1):
            if "\ufffd" in line:
                reason = f"invalid bytes for encoding {encoding} (set --encoding)"
                bad.append((n, line.rstrip("\r\n"), reason))
                line = "\r\n" if line.endswith("\r\n") else "\n"
            dst.write(line)
    return bad


def nul_lines(path: Path, chunk: int = 1 << 24) -> list[tuple[int, str]]:
    """(line number, the line with NUL shown as \\0) of every line of a UTF-8 file holding a
    NUL byte. One fast scan first; lines are counted only when a NUL exists."""
    opener: Any = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as f:
        if not any(b"\x00" in block for block in iter(lambda: f.read(chunk), b"")):
            return []
    with opener(path, "rb") as f:
        return [
            (n, line.rstrip(b"\r\n").replace(b"\x00", b"\\0").decode("utf-8", "replace"))
            for n, line in enumerate(f, 1)
            if b"\x00" in line
        ]


def join_quoted_records(
    con: duckdb.DuckDBPyConnection, src: Source, n_fields: int | None, skip: int
) -> None:
    """Read a CSV record whose quoted field holds a newline as one record, numbered by its
    first line, as CSV readers do.

    Such a record opens and closes on lines with an odd number of quotes. Consecutive odd lines
    are paired when they lie at most MAX_RECORD_LINES apart and their joined text parses as one
    record of the file's width; otherwise the opening line stays alone (and is quarantined as
    unbalanced), so a stray quote never swallows the good rows after it."""
    lines = run(
        con, "ingest/quoted_line_ranges", {"skip": skip, "max_span": MAX_RECORD_LINES}
    ).fetchall()
    if not lines:
        return
    text = {n: raw for n, raw, _ in lines}
    odd = [n for n, _, is_odd in lines if is_odd]
    records: list[tuple[int, int, str]] = []
    i = 0
    while i + 1 < len(odd):
        first, last = odd[i], odd[i + 1]
        span = range(first, last + 1)
        joined = "\n".join(text[n] for n in span if n in text)
        if last - first <= MAX_RECORD_LINES and _one_record(joined, src.delim, n_fields):
            records.append((first, last, joined))
            i += 2
        else:
            i += 1
    if not records:
        return
    rows = pa.table(
        {
            "first": pa.array([r[0] for r in records], pa.int64()),
            "last": pa.array([r[1] for r in records], pa.int64()),
            "raw": pa.array([r[2] for r in records], pa.string()),
        }
    )
    con.register("quoted_rows", rows)
    try:
        run(con, "ingest/join_quoted_records")
    finally:
        con.unregister("quoted_rows")


def _one_record(text: str, delim: str, n_fields: int | None) -> bool:
    """True when `text` splits into quoted/plain fields exactly, `n_fields` of them: the same
    rule `stage_delimited.sql` applies."""
    pattern = re.compile(_field_re(delim), re.S)
    found = list(pattern.finditer(text + delim))
    whole = "".join(m.group(0) for m in found) == text + delim
    return whole and (n_fields is None or len(found) == n_fields)


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


Staged = tuple[str, dict[str, Any]]  # (SQL file with one SELECT of the staged rows, params)
STAGE_TABLE: Staged = ("ingest/rows_staged", {})


def stage(con: duckdb.DuckDBPyConnection, path: Path, src: Source) -> Staged:
    """Stage a file's rows (line_no, raw, parse_error, canonical fields as text).

    Returns the SELECT that yields them, for the check to run as its `{stage}` part: delimited
    text and JSON (the bulk of large inputs) are parsed inside the check, in one pass with no
    table of their own; the other readers fill the temp table `stage`."""
    loc, n_fields = resolve_fields(path, src)
    cols = {f"c_{f}": loc.get(f) for f in FIELDS}
    run(con, "ingest/no_rejects")
    if src.reader == "parquet":
        run(con, "ingest/stage_parquet", {"path": str(path), **cols})
        return STAGE_TABLE
    if src.reader == "json_items" and _is_json_document(path):
        run(con, "ingest/docs_json_object", {"path": str(path)})
        return "ingest/rows_json", {
            "invalid_reason": "entry is not a JSON object",
            **cols,
            "c_item_id": "$.item_id",
        }
    load_raw_lines(con, path, src.encoding)
    if src.stage_sql:
        run(con, src.stage_sql, {"genres": list(ML100K_GENRES)})
    elif src.reader == "delimited":
        if src.quote_aware:
            join_quoted_records(con, src, n_fields, skip=1 if src.header else 0)
        return "ingest/rows_delimited", {
            "skip": 1 if src.header else 0,
            "delim": src.delim,
            "quote_aware": src.quote_aware,
            "field_re": _field_re(src.delim),
            "n_fields": n_fields,
            "cat_sep": src.cat_sep or "|",
            **cols,
        }
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
        return "ingest/rows_json", {"invalid_reason": invalid, **cols}
    return STAGE_TABLE


def check_fields_present(con: duckdb.DuckDBPyConnection, path: Path, src: Source) -> None:
    """Fatal when records parse but none carries a required field (wrong mapping or format).
    Reads the `checked` rows (their presence flags), so it runs after the check."""
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
