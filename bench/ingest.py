"""Ingest benchmark: hoprec's ingest of one file next to what a user would do by hand.

    python bench/ingest.py [--rows 10000000] [--repeat 3]            # CSV
    python bench/ingest.py --jsonl --rows 20000000 [--repeat 1]      # Amazon-2023 JSONL, gzip

References, measured in the same run on the same file: a bare DuckDB `COUNT(*)` of the file
(reads and parses, writes nothing) and a `CREATE TABLE ... AS SELECT * FROM read_csv(...)`
(or `read_json`) into a fresh persistent DuckDB file, which is what a user does by hand; and the
same CTAS with the ids read as text, the table shape hoprec stores (ids are strings in the
warehouse, while read_csv would make a numeric item id a BIGINT). The target is hoprec <= 1.5x
the CTAS. hoprec's time covers the whole batch: sha256, line numbering, validation, quarantine,
dedup and the committed insert into a fresh warehouse.
For CSV, two floors under hoprec's cost: hoprec's table (7 columns: dataset, text ids, a
timestamp, rating, batch id, line number) written by hand from a clean read with no checks, and
the same with hoprec's exact-duplicate drop (SHAPE, SHAPE_DEDUP below).
Each measurement runs in its own process, so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    """user_id,item_id,timestamp,rating with power-law-ish ids, written by DuckDB."""
    duckdb.execute(f"SELECT setseed({1 / seed})")
    duckdb.execute(f"""
        COPY (SELECT 'u' || CAST(floor(pow(random(), 2) * 200000) AS BIGINT) AS user_id,
                     CAST(floor(pow(random(), 3) * 60000) AS BIGINT) AS item_id,
                     1500000000 + i AS timestamp, 1 + CAST(random() * 4 AS INTEGER) AS rating
              FROM range({rows}) t(i)) TO '{path}' (HEADER)""")


def make_jsonl(path: Path, rows: int, seed: int = 7) -> None:
    """Amazon-reviews-2023-shaped JSON lines (gzip): ids, ms timestamps, review text."""
    duckdb.execute(f"SELECT setseed({1 / seed})")
    duckdb.execute(f"""
        COPY (SELECT 1 + CAST(random() * 4 AS INTEGER) AS rating, 'Title ' || i % 977 AS title,
                     'Review text ' || i % 7919 || ' about the product, with some words' AS text,
                     [] AS images,
                     'B0' || CAST(floor(pow(random(), 3) * 60000) AS BIGINT) AS asin,
                     'B0' || CAST(floor(pow(random(), 3) * 60000) AS BIGINT) AS parent_asin,
                     'AE' || CAST(floor(pow(random(), 2) * 200000) AS BIGINT) AS user_id,
                     1500000000000 + i * 1000 AS timestamp, i % 13 AS helpful_vote,
                     i % 3 = 0 AS verified_purchase
              FROM range({rows}) t(i)) TO '{path}' (FORMAT json, COMPRESSION gzip)""")


# The table hoprec stores, written by hand from a clean read: dataset, text ids, a timestamp,
# rating, batch id and line number (7 columns against the file's 4); `shape-dedup` also drops
# exact duplicates as hoprec does (GROUP BY, first line kept). No validation, no quarantine, no
# line numbers that survive bad lines: a floor under hoprec's cost, not a way to ingest.
_ROWS = """SELECT user_id, item_id, make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS ts,
           CAST(rating AS DOUBLE) AS rating, row_number() OVER () AS line_no
    FROM read_csv(?, types = {'user_id': 'VARCHAR', 'item_id': 'VARCHAR'})"""
SHAPE = f"""CREATE TABLE t AS SELECT 'bench' AS dataset, user_id, item_id, ts, rating,
    CAST(1 AS BIGINT) AS batch_id, line_no FROM ({_ROWS})"""
SHAPE_DEDUP = f"""CREATE TABLE t AS SELECT 'bench' AS dataset, user_id, item_id, ts, rating,
    CAST(1 AS BIGINT) AS batch_id, min(line_no) AS line_no FROM ({_ROWS})
    GROUP BY user_id, item_id, ts, rating"""


def one(kind: str, path: Path, work: Path, jsonl: bool) -> dict:
    """Run one measurement in this process; returns seconds and rows."""
    reader = "read_json" if jsonl else "read_csv"
    t = time.perf_counter()
    if kind == "count":
        (n,) = duckdb.connect().execute(f"SELECT count(*) FROM {reader}(?)", [str(path)]).fetchone()
    elif kind in ("shape", "shape-dedup") and not jsonl:
        # hoprec's table by hand, with no checks: the floor of what storing it costs
        con = duckdb.connect(str(work / f"shape-{time.monotonic_ns()}.duckdb"))
        con.execute(SHAPE_DEDUP if kind == "shape-dedup" else SHAPE, [str(path)])
        (n,) = con.execute("SELECT count(*) FROM t").fetchone()
        con.close()
    elif kind in ("ctas", "ctas-text"):
        # ctas-text: ids as text, as hoprec stores them (read_csv would make item_id a BIGINT)
        text_ids = kind == "ctas-text" and not jsonl  # (JSON ids here are strings already)
        types = ", types = {'user_id': 'VARCHAR', 'item_id': 'VARCHAR'}" if text_ids else ""
        con = duckdb.connect(str(work / f"ctas-{time.monotonic_ns()}.duckdb"))
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?{types})", [str(path)])
        (n,) = con.execute("SELECT count(*) FROM t").fetchone()
        con.close()
    else:
        from hoprec.tasks.data.formats import FORMATS, generic_source, source_for
        from hoprec.tasks.data.ingest import ingest_file
        from hoprec.tasks.data.warehouse import connect
        from hoprec.tasks.settings import apply_settings

        apply_settings()
        fmt = "amazon-2023" if jsonl else "csv"
        src = (
            source_for(FORMATS[fmt], path)
            if jsonl
            else generic_source(FORMATS["csv"], "interactions", {}, "s", None, None)
        )
        t = time.perf_counter()
        with connect(work / f"wh-{time.monotonic_ns()}.duckdb") as con:
            n = ingest_file(con, "bench", fmt, src, path).rows_loaded
    return {"seconds": time.perf_counter() - t, "rows": n}


def measure(kind: str, path: Path, work: Path, jsonl: bool) -> tuple[float, int, float]:
    """(seconds, rows, peak RSS in GiB) of one measurement in a fresh process."""
    cmd = [sys.executable, __file__, "--one", kind, "--file", str(path), "--workdir", str(work)]
    proc = subprocess.Popen([*cmd, *(["--jsonl"] if jsonl else [])], stdout=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{kind} failed")
    got = json.loads(out.decode().strip().splitlines()[-1])
    return got["seconds"], got["rows"], usage.ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jsonl", action="store_true", help="Amazon-2023 JSONL (gzip) instead of CSV")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--one",
        choices=["count", "ctas", "ctas-text", "shape", "shape-dedup", "hoprec"],
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hoprec-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(one(args.one, args.file, work, args.jsonl)))
        return
    name = f"reviews-{args.rows}.jsonl.gz" if args.jsonl else f"events-{args.rows}.csv"
    data = work / name
    if not data.exists():
        t = time.perf_counter()
        (make_jsonl if args.jsonl else make_csv)(data, args.rows)
        size = data.stat().st_size / 2**20
        print(f"generated {data} ({size:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    runs: dict[str, list[tuple[float, int, float]]] = {
        "count": [],
        "ctas": [],
        "ctas-text": [],
        "hoprec": [],
    }
    if not args.jsonl:
        runs = {
            "count": [],
            "ctas": [],
            "ctas-text": [],
            "shape": [],
            "shape-dedup": [],
            "hoprec": [],
        }
    for _ in range(args.repeat):
        for kind in runs:
            runs[kind].append(measure(kind, data, work, args.jsonl))
    med = {k: statistics.median(s for s, _, _ in v) for k, v in runs.items()}
    peak = {k: max(m for _, _, m in v) for k, v in runs.items()}
    labels = {
        "count": "bare DuckDB COUNT(*)",
        "ctas": "CTAS into a DuckDB file",
        "ctas-text": "CTAS, ids as text",
        "shape": "hoprec's table, no checks",
        "shape-dedup": "  + exact dedup",
        "hoprec": "hoprec ingest (full batch)",
    }
    labels = {k: v for k, v in labels.items() if k in runs}
    print(f"rows: {args.rows:,} (hoprec loaded {runs['hoprec'][-1][1]:,})")
    for kind, label in labels.items():
        times = [round(s, 2) for s, _, _ in runs[kind]]
        print(f"{label:28} median {med[kind]:6.2f} s  {times}  peak RSS {peak[kind]:.2f} GiB")
    print(f"ratio hoprec / CTAS:      {med['hoprec'] / med['ctas']:.2f}x  (target <= 1.5x)")
    print(f"ratio hoprec / CTAS, ids as text: {med['hoprec'] / med['ctas-text']:.2f}x")
    print(f"ratio hoprec / COUNT(*):  {med['hoprec'] / med['count']:.2f}x")
    if "shape" in med:
        by_hand = med["shape-dedup"]
        print(
            f"floor: hoprec's table by hand / CTAS {med['shape'] / med['ctas']:.2f}x, with dedup "
            f"{by_hand / med['ctas']:.2f}x; hoprec / that {med['hoprec'] / by_hand:.2f}x"
        )


if __name__ == "__main__":
    main()
