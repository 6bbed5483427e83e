"""Approximate semantic neighbours: FAISS k-means lists, exact scores within the probed lists.

Why: the exact top-k (`embeddings.cosine_topk`) is quadratic, about 2 minutes at 100k items and
hours at 1M on 2 cores. An inverted file (IVF) splits the items into k-means lists (FAISS's
seeded k-means and flat centroid search) and compares each item only with the members of its
`nprobe` nearest lists. Because every item is also a query, the search runs list by list: all
items probing a list are scored against its members in one matrix product (BLAS speed, each list
read once), not query by query. Scores are true float32 cosines and rows are ordered as the exact
path orders them (score descending, then index ascending, self left out by index), so only
recall is approximate: the benchmark (bench/semantic.py) measures it against exact.

Why not FAISS's own IVF search: per query it streams the probed lists from memory (IVF-Flat),
or it ranks by 4-bit product-quantized codes, whose recall@10 fell to 0.80 at 1M clustered
vectors. Deterministic for fixed vectors and settings: the k-means sample and seed are fixed,
centroid search is exact, and the list-by-list merge runs in a fixed order.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .. import defaults

log = logging.getLogger("hoprec.ann")

INDEXES: tuple[str, ...] = ("exact", "ann", "auto")
ANN_MIN_ITEMS = 1024  # below this an index has too few items per list to be worth building
POINTS_PER_LIST = 32  # k-means training rows per list
KMEANS_ITERS = 10  # enough for lists that only route queries
MIN_NPROBE = 16  # lists searched per query: at least this many...
NPROBE_SHARE = 128  # ...or one list in this many
QUERY_ROWS = 8192  # queries scored against one list at a time (bounds the score block)


def resolve_index(index: str, n: int, switch: int = defaults.ANN_SWITCH_ITEMS) -> str:
    """'exact' or 'ann' for a catalogue of n items: "auto" is exact below `switch` items, and
    "ann" is exact below ANN_MIN_ITEMS (too few items to train lists on)."""
    if index not in INDEXES:
        raise ValueError(f"index must be one of {', '.join(INDEXES)}, got {index!r}")
    if index == "auto":
        index = "ann" if n >= switch else "exact"
    return "ann" if index == "ann" and n >= ANN_MIN_ITEMS else "exact"


def n_lists(n: int) -> int:
    """IVF lists: the power of two nearest 4 sqrt(n) (FAISS's guideline: 4..16 sqrt(n)), with
    >= 64 items a list on average."""
    target = 2 ** round(math.log2(max(4 * math.sqrt(n), 1)))
    return max(1, min(target, n // 64))


def n_probe(nlist: int) -> int:
    """Lists searched per query (bench/semantic.py: recall@10 >= 0.99 at 100k and 1M)."""
    return min(nlist, max(MIN_NPROBE, nlist // NPROBE_SHARE))


def probe_lists(v: np.ndarray, seed: int = 0) -> np.ndarray:
    """[n, nprobe] int64: each row's nearest k-means lists, nearest first (FAISS k-means on a
    seeded sample, exact L2 centroid search; on unit rows L2 order is cosine order)."""
    import faiss

    n, d = v.shape
    nlist = n_lists(n)
    take = min(n, nlist * POINTS_PER_LIST)
    rows = np.sort(np.random.default_rng(seed).choice(n, take, replace=False))
    t0 = time.perf_counter()
    km = faiss.Kmeans(  # min_points_per_centroid only silences FAISS's "too few" warning
        d,
        nlist,
        niter=KMEANS_ITERS,
        seed=seed,
        max_points_per_centroid=POINTS_PER_LIST,
        min_points_per_centroid=1,
    )
    km.train(v[rows])
    flat = faiss.IndexFlatL2(d)
    flat.add(np.asarray(km.centroids, np.float32))
    _, probes = flat.search(v, n_probe(nlist))
    log.info(
        "ann: %d lists from %d of %d rows, %d probed per row, in %.1f s",
        nlist,
        take,
        n,
        probes.shape[1],
        time.perf_counter() - t0,
    )
    return probes.astype(np.int64)


def merge(
    ids: np.ndarray, scores: np.ndarray, new_ids: np.ndarray, new_scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best len(ids[0]) of two candidate sets a row, by (score desc, index asc)."""
    kk = ids.shape[1]
    i = np.concatenate([ids, new_ids], axis=1)
    s = np.concatenate([scores, new_scores], axis=1)
    order = np.lexsort((i, -s), axis=1)[:, :kk]
    return np.take_along_axis(i, order, axis=1), np.take_along_axis(s, order, axis=1)


def ann_topk(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-k of every row, shaped and ordered as `cosine_topk`'s answer:
    (neighbours int64 [n, k'], scores float32 [n, k']), k' = min(k, n - 1)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    n = v.shape[0]
    kk = max(0, min(k, n - 1))
    ids = np.full((n, kk), n, np.int64)  # n: no candidate yet (sorts after every real index)
    best = np.full((n, kk), -np.inf, np.float32)
    if kk == 0:
        return ids, best
    probes = probe_lists(v, seed)
    members = np.argsort(probes[:, 0], kind="stable")  # rows by their nearest list
    bounds = np.searchsorted(probes[members, 0], np.arange(probes.max() + 2))
    by_list = np.argsort(probes.ravel(), kind="stable") // probes.shape[1]  # queries by list
    q_bounds = np.searchsorted(np.sort(probes.ravel()), np.arange(probes.max() + 2))
    t0 = time.perf_counter()
    for p in range(len(bounds) - 1):
        mem = members[bounds[p] : bounds[p + 1]]
        if len(mem) == 0:
            continue
        mv = v[mem].T.copy()
        take = min(kk, len(mem))
        for a in range(q_bounds[p], q_bounds[p + 1], QUERY_ROWS):
            q = by_list[a : min(a + QUERY_ROWS, q_bounds[p + 1])]
            s = v[q] @ mv
            own = np.flatnonzero(probes[q, 0] == p)  # queries that are members: drop self
            s[own, np.searchsorted(mem, q[own])] = -np.inf
            better = np.flatnonzero(s.max(axis=1) >= best[q, -1])  # only these can change
            if len(better) == 0:
                continue
            q, s = q[better], s[better]
            if take < len(mem):
                part = np.argpartition(s, len(mem) - take, axis=1)[:, len(mem) - take :]
            else:
                part = np.broadcast_to(np.arange(len(mem)), s.shape)
            new_s = np.take_along_axis(s, part, axis=1)
            new_i = np.where(np.isfinite(new_s), mem[part], n)
            ids[q], best[q] = merge(ids[q], best[q], new_i, new_s)
        if p % 256 == 255:
            log.info("ann: list %d/%d (%.1f s)", p + 1, len(bounds) - 1, time.perf_counter() - t0)
    return ids, best
