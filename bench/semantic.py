"""Semantic top-K benchmark: hoprec's blocked exact `cosine_topk` next to a plain numpy full matrix,
and (--ann) the approximate index (tasks/relations/ann.py) next to exact.

    python bench/semantic.py [--n 100000] [--d 384] [--k 20] [--block 2048] [--seed 0] [--ref-n N]
    python bench/semantic.py --ann [--sizes 100000 1000000] [--d 384] [--queries 2000]

--ann: clustered synthetic unit vectors (--clusters random centres, per-cluster noise of norm
0.5..1.5 times the centre's), so neighbours mean something as in text embeddings; isotropic
random vectors in 384 dimensions have no near neighbours at all. For each size it times the
index over every item, the exact top-10 of a seeded sample of --queries items (the exact time
of all items is measured in full up to --exact-full items and otherwise estimated from that
sample, which the output says), and recall@10 of the index against exact on that sample.

Seeded random unit vectors. The numpy reference is what one would write first: the whole n x n
score matrix (V @ V.T), diagonal set to -inf, argpartition for the top k, then a sort. It needs
about 12 n^2 bytes (float32 scores + int64 partition indices): 120 GB at n = 100,000. So both run
at `--ref-n` (default: the largest n, in thousands, whose reference fits in 60% of the available
memory), where the ratio and the check that both give the same neighbours are taken, and hoprec
alone also runs at the full `--n`. Every measurement runs in its own child process, so its peak
memory (ru_maxrss) is its own; "extra" is the peak above that process's state just before timing
(Python, libraries and the vectors).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REF_BYTES_PER_PAIR = 12  # float32 score + int64 argpartition index per (row, column)
GEN_CHUNK = 4096  # rows drawn at a time: any prefix of the vectors is the same


def unit_vectors(n: int, d: int, seed: int) -> np.ndarray:
    """Seeded random unit vectors; the first m rows do not depend on n."""
    rng = np.random.default_rng(seed)
    v = np.empty((n, d), np.float32)
    for a in range(0, n, GEN_CHUNK):
        v[a : a + GEN_CHUNK] = rng.standard_normal((min(GEN_CHUNK, n - a), d), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def clustered_vectors(n: int, d: int, seed: int, clusters: int = 2048) -> np.ndarray:
    """Seeded clustered unit vectors; the first m rows do not depend on n."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.uniform(0.5, 1.5, clusters).astype(np.float32) / np.sqrt(d)
    draw = np.random.default_rng([seed, 1])
    v = np.empty((n, d), np.float32)
    for a in range(0, n, GEN_CHUNK):
        m = min(GEN_CHUNK, n - a)
        label = draw.integers(0, clusters, m)
        v[a : a + m] = centres[label] + noise[label, None] * draw.standard_normal(
            (m, d), dtype=np.float32
        )
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def ann_bench(args: argparse.Namespace) -> int:
    """ANN vs exact at each size: time, recall@10 on a sample, ratios."""
    from hoprec.tasks.relations.ann import n_lists, n_probe, resolve_index
    from hoprec.tasks.relations.embeddings import cosine_topk, semantic_topk

    print(
        f"semantic top-10, approximate index vs exact: {args.d}-d clustered unit vectors "
        f"({args.clusters} clusters), seed {args.seed}, {len(os.sched_getaffinity(0))} CPU cores"
    )
    rows = []
    for n in args.sizes:
        v = clustered_vectors(n, args.d, args.seed, args.clusters)
        q = np.sort(np.random.default_rng(args.seed + 1).choice(n, min(n, args.queries), False))
        t = time.perf_counter()
        nbrs, _ = semantic_topk(v, 10, "ann")
        ann_s = time.perf_counter() - t
        assert resolve_index("ann", n) == "ann"
        t = time.perf_counter()
        want, _ = cosine_topk(v, 10, args.block, rows=q)
        sample_s = time.perf_counter() - t
        if n <= args.exact_full:
            t = time.perf_counter()
            full, _ = cosine_topk(v, 10, args.block)
            exact_s, how = time.perf_counter() - t, "measured"
            assert (full[q] == want).all()
        else:
            exact_s, how = sample_s * n / len(q), f"estimated from {len(q):,} rows"
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(nbrs[q], want)]))
        lists = n_lists(n)
        print(
            f"  n={n:>9,}: ann {ann_s:8.1f} s ({lists} lists, {n_probe(lists)} probed)   "
            f"exact {exact_s:9.1f} s ({how})   exact/ann {exact_s / ann_s:6.1f}x   "
            f"recall@10 {recall:.4f} on {len(q):,} items",
            flush=True,
        )
        rows.append((n, ann_s, exact_s, recall))
    if len(rows) > 1:
        (n0, a0, e0, _), (n1, a1, e1, _) = rows[0], rows[-1]
        print(
            f"growth {n0:,} -> {n1:,} items ({n1 / n0:.0f}x): ann {a1 / a0:.1f}x, "
            f"exact {e1 / e0:.1f}x"
        )
    ok = all(r[3] >= args.min_recall for r in rows)
    print("OK" if ok else f"RECALL BELOW {args.min_recall}")
    return 0 if ok else 1


def numpy_reference(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-matrix top-k: the plain approach hoprec's blocked version is measured against.

    `v @ v.T` on one buffer would take OpenBLAS's syrk path (half the flops), which segfaults
    here from n = 28,000 (numpy/numpy#19685), so the product is a gemm against a copy, as in hoprec.
    """
    s = v @ v.T.copy()
    np.fill_diagonal(s, -np.inf)
    top = np.argpartition(s, -k, axis=1)[:, -k:]
    scores = np.take_along_axis(s, top, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(scores, order, axis=1)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(method: str, n: int, d: int, k: int, block: int, seed: int, out: str | None) -> None:
    """One measurement; prints a JSON line, saves neighbours to `out` if given."""
    from hoprec.tasks.relations.embeddings import cosine_topk

    v = unit_vectors(n, d, seed)
    base = maxrss_mb()
    t = time.perf_counter()
    if method == "hoprec":
        nbrs, scores = cosine_topk(v, k, block)
    else:
        nbrs, scores = numpy_reference(v, k)
    secs = time.perf_counter() - t
    if out:
        np.savez(out, nbrs=nbrs, scores=scores)
    print(
        json.dumps(
            {"method": method, "n": n, "seconds": secs, "peak_mb": maxrss_mb(), "base_mb": base}
        )
    )


def measure(method: str, args: argparse.Namespace, n: int, out: str | None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        method,
        "--n",
        str(n),
        "--d",
        str(args.d),
        "--k",
        str(args.k),
        "--block",
        str(args.block),
        "--seed",
        str(args.seed),
    ]
    if out:
        cmd += ["--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{method} at n={n} failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  {method:<7} n={n:>7,}  {res['seconds']:8.2f} s   peak RSS {res['peak_mb']:8.0f} MB"
        f"   extra {res['peak_mb'] - res['base_mb']:8.0f} MB",
        flush=True,
    )
    return res


def available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def same_up_to_ties(
    v: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float = 1e-6
) -> tuple[int, int]:
    """(rows with identical neighbour sets, rows differing only among ties at the k-th score);
    any other row is a real disagreement."""
    same = (np.sort(a, axis=1) == np.sort(b, axis=1)).all(axis=1)
    tied = 0
    for r in np.flatnonzero(~same):
        diff = np.array(sorted(set(a[r].tolist()) ^ set(b[r].tolist())))
        kth = min((v[a[r]] @ v[r]).min(), (v[b[r]] @ v[r]).min())
        tied += bool(np.all(np.abs(v[diff] @ v[r] - kth) <= tol))
    return int(same.sum()), tied


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=384)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ref-n", type=int, default=0, help="n for the comparison (0: largest that fits)"
    )
    p.add_argument("--ann", action="store_true", help="benchmark the approximate index instead")
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="--ann: item counts"
    )
    p.add_argument("--clusters", type=int, default=2048, help="--ann: clusters of the vectors")
    p.add_argument("--queries", type=int, default=2000, help="--ann: sampled items for recall@10")
    p.add_argument(
        "--exact-full",
        type=int,
        default=100_000,
        help="--ann: time exact over all items up to this n, else estimate it from the sample",
    )
    p.add_argument("--min-recall", type=float, default=0.99, help="--ann: recall@10 target")
    p.add_argument("--child", choices=["hoprec", "numpy"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ann:
        return ann_bench(args)
    if args.child:
        child(args.child, args.n, args.d, args.k, args.block, args.seed, args.out)
        return 0

    avail = available_bytes()
    fits = int((0.6 * avail / REF_BYTES_PER_PAIR) ** 0.5) // 1000 * 1000
    ref_n = min(args.n, args.ref_n or fits)
    need = REF_BYTES_PER_PAIR * args.n**2 / 1e9
    print(
        f"semantic top-{args.k}: {args.n:,} x {args.d} float32 unit vectors, seed {args.seed}, "
        f"block {args.block}, {len(os.sched_getaffinity(0))} CPU cores, "
        f"{avail / 2**30:.1f} GiB available"
    )
    if ref_n < args.n:
        why = "does not fit" if need * 1e9 > 0.6 * avail else "--ref-n given"
        print(
            f"numpy full matrix at n={args.n:,} needs ~{need:.1f} GB ({why}): comparing both "
            f"at n={ref_n:,} (~{REF_BYTES_PER_PAIR * ref_n**2 / 1e9:.1f} GB)"
        )
    with tempfile.TemporaryDirectory(prefix="hoprec-bench-") as tmp:
        outs = {m: str(Path(tmp) / f"{m}.npz") for m in ("hoprec", "numpy")}
        mine = measure("hoprec", args, ref_n, outs["hoprec"])
        ref = measure("numpy", args, ref_n, outs["numpy"])
        full = measure("hoprec", args, args.n, None) if ref_n < args.n else mine
        a, b = (np.load(outs[m]) for m in ("hoprec", "numpy"))
        v = unit_vectors(ref_n, args.d, args.seed)
        same, tied = same_up_to_ties(v, a["nbrs"], b["nbrs"])
        close = np.allclose(a["scores"], b["scores"], atol=1e-5)
    ok = same + tied == ref_n and close
    print(
        f"\nat n={ref_n:,}: hoprec {mine['seconds']:.2f} s vs numpy {ref['seconds']:.2f} s "
        f"-> ratio {mine['seconds'] / ref['seconds']:.2f}x (hoprec / numpy); extra memory "
        f"{mine['peak_mb'] - mine['base_mb']:.0f} MB vs {ref['peak_mb'] - ref['base_mb']:.0f} MB"
    )
    print(
        f"neighbour sets: {same:,} rows identical, {tied:,} differ only among ties at the k-th "
        f"score, {ref_n - same - tied:,} disagree; scores equal within 1e-5: {close}"
    )
    print(
        f"hoprec at n={args.n:,}: {full['seconds']:.2f} s, peak RSS {full['peak_mb']:.0f} MB "
        f"(extra {full['peak_mb'] - full['base_mb']:.0f} MB)"
    )
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
