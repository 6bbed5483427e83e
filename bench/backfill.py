"""Backfill benchmark: dates counted from Parquet exports in parallel vs in the warehouse.

    python bench/backfill.py [--rows 5000000] [--dates 8]

A seeded synthetic dataset (bench/relations.py's generator and setup; event k of a user lands
k hours after 2000-01-01, so later as-of dates see longer prefixes) is stored as a prepared dataset.
Then the backfill flow makes transitions and co-occurrence snapshots (no top-up) for `--dates`
daily as-of dates, forced: first one date at a time in the warehouse (the default, and the
reference), then with `from_exports` (two dates counted at once from Parquet, the warehouse
held only to export and write), in the same process after an untimed warm-up run that starts
Prefect's API. Both must give the same snapshots.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))


def rows_of(wh: Path, ids: list[int]) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(
            "SELECT src, dst, n, rank FROM cooccurrence WHERE snapshot_id IN (SELECT unnest(?)) "
            "UNION ALL SELECT src, dst, n, rank FROM transitions WHERE snapshot_id IN "
            "(SELECT unnest(?)) ORDER BY ALL",
            [ids, ids],
        ).fetchall()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dates", type=int, default=8)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    from relations import setup, synth

    from hoprec.tasks.settings import apply_settings

    apply_settings()
    from hoprec.flows.backfill import backfill_flow

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        t0 = time.perf_counter()
        wh, _ = setup(synth(args.rows), Path(tmp), 100_000, step="hours")
        print(f"{args.rows:,} events, setup {time.perf_counter() - t0:.1f} s", flush=True)
        common = dict(dataset="synth", every="1d", warehouse=str(wh), top_up=False, force=True)
        backfill_flow(start="2000-01-02", end="2000-01-02", **common)  # warm-up: Prefect's API
        base, expected, ok = 0.0, None, True
        for mode in ("warehouse", "exports"):
            t = time.perf_counter()
            out = backfill_flow(
                start="2000-01-02",
                end=f"2000-01-{1 + args.dates:02d}",
                from_exports=mode == "exports",
                **common,
            )
            secs = time.perf_counter() - t
            got = rows_of(wh, [r["snapshot_id"] for r in out["snapshots"]])
            expected = expected if expected is not None else got
            ok = ok and got == expected
            base = base or secs
            print(
                f"  {mode:9}: {secs:7.2f} s for {len(out['snapshots'])} snapshots; "
                f"{secs / base:.2f}x the warehouse run's time; "
                f"same snapshots: {'OK' if got == expected else 'MISMATCH'}",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
