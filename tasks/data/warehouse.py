"""The DuckDB warehouse: one file, a schema built from `sql/schema/*.sql`, one writer at a time.

DuckDB allows one writing process per file. A file lock next to the database serializes hoprec
writers and, after a timeout, fails with a message that names the file instead of retrying.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock, Timeout

from .. import defaults
from ..settings import default_warehouse

LOCK_TIMEOUT_S = 600.0
LOCK_NOTICE_S = 3.0  # a writer waiting this long says whom it waits for
log = logging.getLogger("hoprec.warehouse")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse's writer lock, or has the file open."""


class WarehouseError(RuntimeError):
    """The warehouse path is not a DuckDB database (a directory, a damaged file)."""


def sql_text(name: str) -> str:
    """The text of `sql/<name>.sql`: every statement hoprec runs lives there."""
    return resources.files("hoprec.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def sql_names(folder: str) -> list[str]:
    """Names (without .sql) of the SQL files in `sql/<folder>/`, sorted."""
    root = resources.files("hoprec.sql").joinpath(folder)
    return sorted(f"{folder}/{p.name[:-4]}" for p in root.iterdir() if p.name.endswith(".sql"))


def ident(name: str, allowed: set[str] | None = None) -> str:
    """Check an identifier that must be formatted into SQL: the whitelist, else a safe shape."""
    if (allowed is not None and name not in allowed) or not _IDENT.match(name):
        raise ValueError(f"identifier {name!r} is not allowed here")
    return name


def run(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, Any] | None = None,
    parts: Mapping[str, str] | None = None,
    **fmt: str,
) -> duckdb.DuckDBPyConnection:
    """Execute `sql/<name>.sql` with bound `$params`; `fmt` fills whitelisted `{identifiers}`.

    `parts` maps a `{placeholder}` to the name of another SQL file holding one SELECT, which
    is put in as a subquery: a pipeline step that feeds one consumer then runs inside it,
    without a table of its own (a temp table in between costs a full write and read).
    A file may hold several statements (each ending with `;` at a line end); each gets the
    parameters it uses, since DuckDB binds parameters one statement at a time.
    """
    text = sql_text(name)
    if fmt:
        text = text.format(**{k: ident(v) for k, v in fmt.items()})
    for key, part in (parts or {}).items():
        select = sql_text(part).strip().removesuffix(";")
        if _STATEMENT_END.search(select):
            raise ValueError(f"sql/{part}.sql must be one SELECT to be a part of sql/{name}.sql")
        placeholder = "{" + ident(key) + "}"
        if any(placeholder in line for line in text.splitlines() if line.lstrip().startswith("--")):
            raise ValueError(f"sql/{name}.sql names {placeholder} in a comment")
        text = text.replace(placeholder, f"(\n{select}\n)")
    params = params or {}
    cur = con
    for stmt in _STATEMENT_END.split(text):
        body = "\n".join(line for line in stmt.splitlines() if not line.lstrip().startswith("--"))
        if not body.strip():
            continue
        used = set(re.findall(r"\$([A-Za-z_]\w*)", body))
        missing = used - params.keys()
        if missing:
            raise ValueError(f"sql/{name}.sql needs parameters {sorted(missing)}")
        bound = {k: params[k] for k in used}
        cur = con.execute(stmt, bound) if bound else con.execute(stmt)
    return cur


def fetch_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """All rows of a result as dicts keyed by column name."""
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def fetch_first(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, or None. The result is read to its end: a half-read result
    leaves the connection busy, and the next `con.sql()` on it then fails."""
    rows = cur.fetchall()
    return rows[0] if rows else None


def fetch_row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The single row of a result that always has one (an aggregate, a count)."""
    row = fetch_first(cur)
    if row is None:
        raise LookupError("the query returned no row")
    return row


def fetch_value(cur: duckdb.DuckDBPyConnection) -> Any:
    """The first column of `fetch_row`."""
    return fetch_row(cur)[0]


def fetch_arrow(cur: duckdb.DuckDBPyConnection) -> Any:
    """A result as an Arrow table (DuckDB's stubs type it optional; a query always has one)."""
    table = cur.to_arrow_table()
    if table is None:
        raise LookupError("the query returned no result")
    return table


def fetch_dict(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The single row of a result (a stats query) as a dict."""
    return fetch_dicts(cur)[0]


COUNTABLE = {
    "interactions",
    "items",
    "quarantine",
    "ingest_batches",
    "sequences",
    "item_index",
    "raw_rejects",
    "rejected",
    "new_items",
    "kc",
}


def row_count(con: duckdb.DuckDBPyConnection, table: str, dataset: str | None = None) -> int:
    """Rows of a (whitelisted) table, optionally of one dataset."""
    sql = f"SELECT count(*) FROM {ident(table, COUNTABLE)}"
    if dataset is None:
        return int(fetch_value(con.execute(sql)))
    return int(fetch_value(con.execute(sql + " WHERE dataset = ?", [dataset])))


def export_parquet(
    con: duckdb.DuckDBPyConnection,
    query: str,
    target: Path,
    params: Mapping[str, Any] | None = None,
) -> Path:
    """Stream a query's result to Parquet via a temp file and an atomic rename (no half file)."""
    import pyarrow.parquet as pq

    tmp = target.with_name(target.name + ".tmp")
    reader: Any = con.execute(query, dict(params or {})).to_arrow_reader()
    with pq.ParquetWriter(tmp, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    os.replace(tmp, target)
    return target


def resolve(path: str | Path | None) -> Path:
    """The warehouse path to use: the given one, else HOPREC_WAREHOUSE, else the default."""
    return Path(path).expanduser().absolute() if path else default_warehouse()


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table, sequence and view idempotently from `sql/schema/`."""
    for name in sql_names("schema"):
        run(con, name)


def _holder(owner: Path) -> str:
    """Who holds the writer lock, as its last holder recorded it."""
    try:
        pid, _, command = owner.read_text().partition(" ")
    except OSError:
        return "another hoprec process"
    return f"pid {pid} ({command or 'hoprec'})"


def memory_limit() -> str:
    """DuckDB's memory cap for the warehouse: HOPREC_MEMORY_LIMIT ('8GB', '50%'), else the
    default. Past it, temp tables spill to disk rather than the process being killed."""
    return os.environ.get("HOPREC_MEMORY_LIMIT") or defaults.MEMORY_LIMIT


def _open(db: Path) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, with the errors a user can act on put in words."""
    try:
        return duckdb.connect(str(db), config={"memory_limit": memory_limit()})
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"PID (\d+)", text)
            who = f"process {pid.group(1)}" if pid else "another process"
            raise WarehouseBusy(
                f"warehouse {db} is open in {who} (a DuckDB shell or notebook, even read-only, "
                "blocks writers); close it and run again"
            ) from None
        if "memory" in text.lower() and not db.is_dir():
            raise ValueError(
                f"memory limit {memory_limit()!r} (HOPREC_MEMORY_LIMIT) is not a size DuckDB "
                "reads; use e.g. 8GB or 50%"
            ) from None
        if "not a valid DuckDB database" in text or "Corrupt" in text or "checksum" in text:
            raise WarehouseError(
                f"warehouse {db} is not a readable DuckDB database (damaged or not DuckDB): move "
                "it aside and rebuild it with `hoprec ingest` (the files) and `hoprec prepare`; "
                "the last prepared sequences are also in .hoprec/prepared/<dataset>/*.parquet"
            ) from None
        raise


@contextmanager
def connect(
    path: str | Path | None = None, *, read_only: bool = False, lock_timeout: float = LOCK_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating it and its schema), holding the writer lock unless read-only."""
    db = resolve(path)
    if read_only:
        if not db.exists():
            raise FileNotFoundError(f"warehouse {db} does not exist; run `hoprec ingest` first")
        con = duckdb.connect(str(db), read_only=True)
        try:
            yield con
        finally:
            con.close()
        return
    if db.is_dir():
        raise WarehouseError(f"warehouse path {db} is a directory; name a file (--warehouse)")
    db.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock(db):  # this process's own tasks queue here, silently
        with _locked(db, lock_timeout) as con:
            yield con


def _thread_lock(db: Path) -> threading.Lock:
    """One lock per warehouse for the threads of this process: a flow's parallel tasks wait
    for each other here, and only other processes are reported as holders."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(db, threading.Lock())


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def _locked(db: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened under its file lock (one writer process at a time)."""
    lock = FileLock(str(db) + ".lock")
    owner = Path(str(db) + ".lock.owner")
    try:
        lock.acquire(timeout=min(LOCK_NOTICE_S, lock_timeout))
    except Timeout:
        log.warning(
            "warehouse %s is in use by %s; waiting up to %.0f s for it",
            db,
            _holder(owner),
            lock_timeout,
        )
        try:
            lock.acquire(timeout=max(lock_timeout - LOCK_NOTICE_S, 0))
        except Timeout as exc:
            raise WarehouseBusy(
                f"warehouse {db} is in use by {_holder(owner)} (waited {lock_timeout:.0f} s); "
                "try again when it has finished (the lock goes with the process: no file needs "
                "deleting)"
            ) from exc
    try:
        owner.write_text(f"{os.getpid()} {' '.join(sys.argv)[:200]}")
        con = _open(db)
        try:
            ensure_schema(con)
            yield con
        finally:
            con.close()
    finally:
        lock.release()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolled back on any error, so a batch lands whole or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
