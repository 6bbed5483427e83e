"""Ingest benchmark: hoprec's ingest of a synthetic CSV next to a bare DuckDB read of the same file.

    python bench/ingest.py [--rows 10000000] [--repeat 3]

Both are measured in the same run, on the same file; the figure is their ratio (target <= 2x).
hoprec's time covers the whole batch: sha256, line numbering, validation, quarantine, dedup and
the committed insert into a fresh warehouse.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from hoprec.tasks.data.formats import FORMATS, generic_source
from hoprec.tasks.data.ingest import ingest_file
from hoprec.tasks.data.warehouse import connect
from hoprec.tasks.settings import apply_settings


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    """user_id,item_id,timestamp,rating with power-law-ish ids, written by DuckDB."""
    duckdb.execute(f"SELECT setseed({1 / seed})")
    duckdb.execute(f"""
        COPY (SELECT 'u' || CAST(floor(pow(random(), 2) * 200000) AS BIGINT) AS user_id,
                     CAST(floor(pow(random(), 3) * 60000) AS BIGINT) AS item_id,
                     1500000000 + i AS timestamp, 1 + CAST(random() * 4 AS INTEGER) AS rating
              FROM range({rows}) t(i)) TO '{path}' (HEADER)""")


def bare_read(path: Path) -> float:
    t = time.perf_counter()
    duckdb.connect().execute("SELECT count(*) FROM read_csv(?)", [str(path)]).fetchone()
    return time.perf_counter() - t


def hoprec_ingest(path: Path, workdir: Path) -> tuple[float, int]:
    wh = workdir / f"wh-{time.monotonic_ns()}.duckdb"
    src = generic_source(FORMATS["csv"], "interactions", {}, "s", None, None)
    t = time.perf_counter()
    with connect(wh) as con:
        res = ingest_file(con, "bench", "csv", src, path)
    return time.perf_counter() - t, res.rows_loaded


def main() -> None:
    apply_settings()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hoprec-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"events-{args.rows}.csv"
    if not csv.exists():
        t = time.perf_counter()
        make_csv(csv, args.rows)
        print(
            f"generated {csv} ({csv.stat().st_size / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - t:.1f} s"
        )
    bare, mine = [], []
    for _ in range(args.repeat):
        bare.append(bare_read(csv))
        secs, loaded = hoprec_ingest(csv, work)
        mine.append(secs)
    b, m = statistics.median(bare), statistics.median(mine)
    print(f"rows: {args.rows:,} (loaded {loaded:,})")
    print(f"bare DuckDB read_csv COUNT(*): median {b:.2f} s  {[round(x, 2) for x in bare]}")
    print(f"hoprec ingest (full batch):    median {m:.2f} s  {[round(x, 2) for x in mine]}")
    print(f"ratio hoprec / bare read: {m / b:.2f}x  (target <= 2x)")


if __name__ == "__main__":
    main()
