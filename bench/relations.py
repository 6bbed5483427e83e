"""Relations benchmark: hoprec's co-occurrence snapshot next to a scipy.sparse reference.

    python bench/relations.py [--rows 1000000 10000000] [--window 5] [--top-k 10] [--semantic]

A seeded synthetic dataset (power-law item popularity, geometric sequence lengths) is stored as
a prepared dataset in a fresh warehouse. Then, each in its own child process so peak memory
(ru_maxrss) is its own:
- hoprec: `snapshot(kind="cooccurrence")` with W symmetric raw counts and top-K (no top-up):
  read the events, count pairs, rank with the popularity tie-break, write the snapshot;
- scipy: read the same events (Parquet -> numpy), count pairs with a COO -> CSR sum, and take
  the same top-K with the same tie-break (one vectorized sort).
Both produce the same pair counts; the parent checks that the top-K lists (and counts) are
identical, then prints times, peak memory and the ratios. `--semantic` also runs
bench/semantic.py (semantic top-20 over 100k random 384-d vectors vs a numpy full matrix).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synth(
    rows: int, seed: int = 0, n_items: int = 100_000, mean_len: int = 20, alpha: float = 1.0
) -> pa.Table:
    """user_idx, pos, item_idx: Zipf(alpha) item popularity, 3 + geometric sequence lengths."""
    rng = np.random.default_rng(seed)
    lengths = 3 + rng.geometric(1.0 / (mean_len - 2), size=int(rows / mean_len * 1.3) + 10)
    ends = np.cumsum(lengths)
    users = int(np.searchsorted(ends, rows)) + 1
    lengths = lengths[:users]
    lengths[-1] -= ends[users - 1] - rows
    lengths = lengths[lengths > 0]
    p = 1.0 / np.arange(1, n_items + 1) ** alpha
    ids = rng.permutation(n_items) + 1  # popularity rank -> item index
    items = ids[rng.choice(n_items, size=int(lengths.sum()), p=p / p.sum())].astype(np.int32)
    user = np.repeat(np.arange(1, len(lengths) + 1, dtype=np.int32), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = (np.arange(len(user)) - starts + 1).astype(np.int32)
    return pa.table({"user_idx": user, "pos": pos, "item_idx": items})


def setup(
    events: pa.Table, workdir: Path, n_items: int, step: str = "seconds"
) -> tuple[Path, Path]:
    """A warehouse with the events as prepared dataset `synth` (all train), and their Parquet.
    A user's k-th event lands k `step`s (seconds or hours) after 2000-01-01."""
    offset = {"seconds": "to_seconds(pos)", "hours": "to_hours(pos)"}[step]
    from hoprec.tasks.data.warehouse import connect

    wh, parquet = workdir / "bench.duckdb", workdir / "events.parquet"
    pq.write_table(events, parquet)
    with connect(wh) as con:
        con.execute(
            f"""INSERT INTO sequences SELECT 'synth', user_idx::VARCHAR, user_idx, pos,
                       item_idx, TIMESTAMP '2000-01-01' + {offset}, 'train'
                       FROM read_parquet(?)""",
            [str(parquet)],
        )
        con.execute(
            "INSERT INTO item_index SELECT 'synth', i::VARCHAR, i FROM range(1, ?) t(i)",
            [n_items + 1],
        )
        con.execute(
            "INSERT INTO prepare_runs VALUES ('synth', '{}', ?, '', now()::TIMESTAMP)",
            [json.dumps({"fingerprint": f"bench-{events.num_rows}"})],
        )
    return wh, parquet


def scipy_cooccurrence(parquet: Path, window: int, k: int) -> tuple[pa.Table, int]:
    """The reference: pair counts via scipy.sparse, top-K by (count, popularity, index)."""
    import scipy.sparse as sp

    t = pq.read_table(parquet)
    user, item = t["user_idx"].to_numpy(), t["item_idx"].to_numpy()
    order = np.lexsort((t["pos"].to_numpy(), user))
    user, item = user[order], item[order]
    n = int(item.max()) + 1
    rows, cols = [], []
    for hop in range(1, window + 1):
        same = user[hop:] == user[:-hop]
        a, b = item[:-hop][same], item[hop:][same]
        keep = a != b
        rows += [a[keep], b[keep]]
        cols += [b[keep], a[keep]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.coo_matrix((np.ones(len(r), np.int64), (r, c)), shape=(n, n)).tocsr()
    m.sum_duplicates()
    pop = np.bincount(item, minlength=n)
    prank = np.empty(n, np.int64)  # position in (popularity desc, index) order
    prank[np.lexsort((np.arange(n), -pop))] = np.arange(n)
    src = np.repeat(np.arange(n), np.diff(m.indptr))
    top = int(m.data.max())
    assert n * (top + 1) * n < 2**62, "sort key would overflow"
    key = (src.astype(np.int64) * (top + 1) + (top - m.data)) * n + prank[m.indices]
    order = np.argsort(key)  # keys are unique: no stability needed
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], np.diff(m.indptr))
    sel = order[rank < k]  # rank is per position in sorted order
    out = pa.table(
        {
            "src": src[sel].astype(np.int32),
            "dst": m.indices[sel].astype(np.int32),
            "n": m.data[sel],
            "rank": (rank[rank < k] + 1).astype(np.int32),
        }
    )
    return out, int(m.nnz)


def child(method: str, args: argparse.Namespace) -> None:
    """Run one implementation, print {seconds, peak_mib, ...} as JSON."""
    started = time.perf_counter()
    if method == "sharded":
        extra = sharded_child(args)
        seconds = extra.pop("seconds")
    elif method == "scipy":
        out, nnz = scipy_cooccurrence(Path(args.parquet), args.window, args.top_k)
        seconds = time.perf_counter() - started
        pq.write_table(out, args.out)
        extra = {"pairs": nnz, "rows": out.num_rows}
    else:
        from hoprec.tasks.data.warehouse import connect
        from hoprec.tasks.relations.snapshots import RelationParams, snapshot

        with connect(args.warehouse) as con:
            started = time.perf_counter()
            snap = snapshot(
                con,
                "synth",
                "cooccurrence",
                None,
                RelationParams(window=args.window, top_k=args.top_k, top_up=False),
                force=True,
            )
            seconds = time.perf_counter() - started
        extra = {"snapshot_id": snap.snapshot_id, "rows": snap.rows}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, **extra}))


def sharded_child(args: argparse.Namespace) -> dict:
    """The sharded path the flow takes with --shards: export the events to Parquet, count each
    user shard in its own process (at most --workers at once, a fresh process per shard, each
    DuckDB capped at --shard-memory), then sum the shards and rank in the warehouse."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from hoprec.tasks.data.warehouse import connect
    from hoprec.tasks.relations.pairs import count_shard, export_input
    from hoprec.tasks.relations.snapshots import RelationParams, resolved_spec, snapshot

    params = RelationParams(window=args.window, top_k=args.top_k, top_up=False)
    folder = Path(args.warehouse).parent / "shards"
    with connect(args.warehouse) as con:
        started = time.perf_counter()
        spec, _ = resolved_spec(con, "synth", "cooccurrence", params, None)
        events = export_input(con, "synth", None, spec["strict"], folder / "input.parquet")
        outs = [str(folder / f"shard-{i:04d}.parquet") for i in range(args.shards)]
        spawn = multiprocessing.get_context("spawn")  # no fork of a process running DuckDB
        with ProcessPoolExecutor(args.workers[0], spawn, max_tasks_per_child=1) as pool:
            list(
                pool.map(
                    count_shard,
                    [str(events)] * args.shards,
                    range(args.shards),
                    [args.shards] * args.shards,
                    [spec] * args.shards,
                    outs,
                    [args.shard_memory] * args.shards,
                )
            )
        counted = time.perf_counter()
        shard_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        snap = snapshot(
            con,
            "synth",
            "cooccurrence",
            None,
            params,
            force=True,
            shard_files=outs,
            shard_input=str(events),
        )
        seconds = time.perf_counter() - started
    for f in folder.iterdir():
        f.unlink()
    return {
        "seconds": seconds,
        "count_seconds": counted - started,
        "shard_peak_mib": shard_peak,
        "snapshot_id": snap.snapshot_id,
        "rows": snap.rows,
    }


def measure(method: str, args: argparse.Namespace, **kw: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        method,
        "--window",
        str(args.window),
        "--top-k",
        str(args.top_k),
        "--shards",
        str(args.shards),
        "--shard-memory",
        args.shard_memory,
    ] + [x for k, v in kw.items() for x in (f"--{k}", v)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def differing_rows(wh: Path, left: str, right: str, params: list) -> int:
    """Rows in one query's result and not the other's, both ways (0: the same rows)."""
    import duckdb

    with duckdb.connect(str(wh), read_only=True) as con:
        (diff,) = con.execute(
            f"""WITH x AS ({left}), y AS ({right})
                SELECT (SELECT count(*) FROM (SELECT * FROM x EXCEPT SELECT * FROM y)) +
                       (SELECT count(*) FROM (SELECT * FROM y EXCEPT SELECT * FROM x))""",
            params,
        ).fetchone()
    return int(diff)


def same_result(wh: Path, snapshot_id: int, ref: str) -> bool:
    """A stored co-occurrence snapshot holds the scipy reference's rows."""
    stored = "SELECT src, dst, n, rank FROM cooccurrence WHERE snapshot_id = ?"
    return (
        differing_rows(
            wh, stored, "SELECT src, dst, n, rank FROM read_parquet(?)", [snapshot_id, ref]
        )
        == 0
    )


def run_size(rows: int, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        events = synth(rows, args.seed, args.items)
        wh, parquet = setup(events, work, args.items)
        print(
            f"\n{rows:,} interactions, {events['user_idx'][-1].as_py():,} users, "
            f"{args.items:,} items (setup {time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        del events
        results: dict[str, list[dict]] = {"hoprec": [], "scipy": []}
        for _ in range(args.repeat):
            if not args.no_reference:
                results["scipy"].append(
                    measure("scipy", args, parquet=str(parquet), out=str(work / "ref.parquet"))
                )
                results["hoprec"].append(measure("hoprec", args, warehouse=str(wh)))
        if args.no_reference:
            return run_sharded(args, wh, work, None)
        best = {m: min(r, key=lambda x: x["seconds"]) for m, r in results.items()}
        # each forced run replaces the last one's snapshot: check the one that is stored
        ok = same_result(wh, results["hoprec"][-1]["snapshot_id"], str(work / "ref.parquet"))
        h, s = best["hoprec"], best["scipy"]
        print(
            f"  scipy reference : {s['seconds']:7.2f} s  peak {s['peak_mib']:8.0f} MiB  "
            f"({s['pairs']:,} pairs, {s['rows']:,} top-{args.top_k} rows)"
        )
        print(
            f"  hoprec snapshot : {h['seconds']:7.2f} s  peak {h['peak_mib']:8.0f} MiB  "
            f"({h['rows']:,} rows written)"
        )
        print(
            f"  ratio hoprec/scipy: time {h['seconds'] / s['seconds']:.2f}x, "
            f"peak memory {h['peak_mib'] / s['peak_mib']:.2f}x "
            f"(best of {args.repeat}; target <= 1.0x both)"
        )
        print(f"  same top-{args.top_k} lists and counts: {'OK' if ok else 'MISMATCH'}")
        if args.shards > 1:
            ok = run_sharded(args, wh, work, results["hoprec"][-1]) and ok
        return ok


def same_snapshots(wh: Path, a: int, b: int) -> bool:
    """The archived single run `a` and the stored snapshot `b` hold the same rows."""
    archived = "SELECT src, dst, n, rank FROM cooccurrence_archive WHERE snapshot_id = ?"
    stored = "SELECT src, dst, n, rank FROM cooccurrence WHERE snapshot_id = ?"
    return differing_rows(wh, archived, stored, [a, b]) == 0


def run_sharded(args: argparse.Namespace, wh: Path, work: Path, single: dict | None) -> bool:
    """Time the sharded path with each --workers count; check it equals the single run."""
    import duckdb

    ok = True
    if single:  # keep the single run's rows: each forced snapshot replaces the last one
        with duckdb.connect(str(wh)) as con:
            con.execute(
                "CREATE OR REPLACE TABLE cooccurrence_archive AS SELECT * FROM cooccurrence "
                "WHERE snapshot_id = ?",
                [single["snapshot_id"]],
            )
    base = None
    for workers in args.workers:
        r = measure("sharded", args, warehouse=str(wh), workers=str(workers))
        base = base or r["seconds"]
        same = same_snapshots(wh, single["snapshot_id"], r["snapshot_id"]) if single else None
        ok = ok and same is not False
        print(
            f"  hoprec {args.shards} shards, {workers} worker(s): {r['seconds']:7.2f} s "
            f"(counting {r['count_seconds']:.2f} s; speed-up {base / r['seconds']:.2f}x vs "
            f"{args.workers[0]} worker(s))  peak {r['peak_mib']:8.0f} MiB merge process, "
            f"{r['shard_peak_mib']:6.0f} MiB largest shard process"
            + ("" if same is None else f"; same as unsharded: {'OK' if same else 'MISMATCH'}"),
            flush=True,
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where the temporary warehouse goes")
    p.add_argument("--semantic", action="store_true", help="also run bench/semantic.py")
    p.add_argument(
        "--shards", type=int, default=1, help="also run the sharded path with this many shards"
    )
    p.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="parallel shard processes to try"
    )
    p.add_argument("--shard-memory", default="2GB", help="DuckDB memory limit of each shard")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip scipy and the unsharded run (for sizes they cannot hold)",
    )
    p.add_argument("--child", choices=["hoprec", "scipy", "sharded"], help=argparse.SUPPRESS)
    p.add_argument("--warehouse", help=argparse.SUPPRESS)
    p.add_argument("--parquet", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args)
        return 0
    print(f"co-occurrence snapshot, W={args.window} symmetric counts, top-{args.top_k}")
    ok = all([run_size(rows, args) for rows in args.rows])
    if args.semantic:
        sys.path.insert(0, str(Path(__file__).parent))
        from semantic import main as semantic_main

        ok = semantic_main([]) == 0 and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
