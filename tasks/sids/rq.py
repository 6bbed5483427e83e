"""Residual quantization for semantic IDs, as pure functions of arrays (versions.py keeps them).

RQ-KMeans: level 1 clusters the vectors, level l clusters the residuals levels < l left, so the
codes run from coarse to fine and similar items share prefixes.

Determinism: sklearn's KMeans sums centroids across OpenMP threads in lock order, so with more
than one thread the low bits (and in rare near-ties the codes) can change from run to run.
Fitting and assignment run under a one-thread limit (OpenMP and BLAS), in float64: the same
seed, data and libraries give the same codes whatever OMP_NUM_THREADS says. (On 2 cores one
thread was no slower for ml-100k or 100k x 384 synthetic vectors.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Imported here, not lazily: a thread limit only covers the libraries loaded when it is set, and
# sklearn brings its own OpenMP runtime; imported inside the limit, KMeans ran on every core.
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

SHRINK_FACTOR = 4  # codes per level <= SHRINK_FACTOR * ceil(n ** (1/L)): capacity >= 64 n
MAX_ITER = 300
_BLOCK = 8192  # rows per distance block in nearest-centroid assignment


def _root_ceil(n: int, k: int) -> int:
    """The smallest integer r with r ** k >= n (exact, no float rounding)."""
    r = max(1, round(n ** (1 / k)))
    while r**k < n:
        r += 1
    while r > 1 and (r - 1) ** k >= n:
        r -= 1
    return r


def effective_codebook(n_items: int, levels: int, codebook: int, shrink: bool = True) -> int:
    """Codes per level: min(codebook, n, max(2, 4 * ceil(n ** (1/L)))), never more than n items.

    ceil(n ** (1/L)) codes per level would just cover n items if use were uniform; 4x that gives
    4 ** L headroom (64 n codes for L = 3), so collisions stay rare without spreading a few items
    over hundreds of tokens an LLM must learn. ml-100k (1,349 items): 48; 12k items: 92; from
    250,048 items on (L = 3) the full 256.
    """
    if n_items < 1:
        raise ValueError("no items to give semantic IDs to")
    if not shrink:
        return min(codebook, n_items)
    return min(codebook, n_items, max(2, SHRINK_FACTOR * _root_ceil(n_items, levels)))


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a count vector."""
    p = np.asarray(counts, np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def _step(r: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each residual row (lowest code on ties); subtracts it from r in place.

    The one assignment rule of both build and assign_new_items, so an item's codes are exactly
    what `encode` gives its vector against the stored (float32) centroids.
    """
    c = centroids.astype(np.float64)
    half_sq = 0.5 * np.einsum("ij,ij->i", c, c)
    out = np.empty(len(r), np.int32)
    for a in range(0, len(r), _BLOCK):
        out[a : a + _BLOCK] = np.argmin(half_sq - r[a : a + _BLOCK] @ c.T, axis=1)
    r -= c[out]
    return out


def encode(vectors: np.ndarray, codebooks: Sequence[np.ndarray]) -> np.ndarray:
    """L codes per vector by nearest centroid on the residuals, level by level: int32 [n, L]."""
    r = np.array(vectors, np.float64)
    with threadpool_limits(1):
        return np.stack([_step(r, c) for c in codebooks], axis=1).reshape(len(r), len(codebooks))


def _fit_level(r: np.ndarray, k: int, seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    """float32 [k, d] centroids: of n_init k-means++ runs, the one whose codes have most entropy.

    sklearn's own n_init keeps the lowest inertia, which on residuals can be a collapsed solution
    (one code for 90% of items, a few for outliers); code entropy is what an ID needs. On ml-100k
    (48 codes, 8 seeds) picking by it lowered collisions from 28% to 23% on average (worst seed
    36% -> 27%) at the same quantization error; a single run per level reached 72%.
    """
    best: tuple[tuple[float, float], np.ndarray] | None = None
    for s in seeds:
        km = KMeans(n_clusters=k, n_init=1, max_iter=MAX_ITER, random_state=int(s)).fit(r)
        c = km.cluster_centers_.astype(np.float32)
        labels = _step(r.copy(), c)
        key = (-entropy_bits(np.bincount(labels, minlength=k)), float(km.inertia_))
        if best is None or key < best[0]:
            best = (key, c)
    assert best is not None
    return best[1]


def rq_kmeans(
    vectors: np.ndarray, levels: int, codebook: int, seed: int = 0, n_init: int = 3
) -> tuple[list[np.ndarray], np.ndarray, list[float]]:
    """Fit RQ-KMeans: (codebooks float32 [k_l, d], codes int32 [n, L], MSE after each level).

    A level gets at most as many codes as it has distinct residual rows (k_l <= codebook).
    """
    r = np.array(vectors, np.float64)
    books, codes, mse = [], [], []
    with threadpool_limits(1):
        for level in range(levels):
            k = min(codebook, len(np.unique(r, axis=0)))
            seeds = np.random.SeedSequence([seed, level]).generate_state(n_init)
            one = r.mean(0, keepdims=True).astype(np.float32)  # a single distinct row
            books.append(_fit_level(r, k, seeds) if k > 1 else one)
            codes.append(_step(r, books[-1]))
            mse.append(float(np.einsum("ij,ij->i", r, r).mean()))
    return books, np.stack(codes, axis=1).reshape(len(r), levels), mse


def disambiguate(
    codes: np.ndarray, start: Mapping[tuple[int, ...], int] | None = None
) -> np.ndarray:
    """The extra code of each row (rows in item_idx order): 0, 1, 2, ... among rows with the
    same L codes, counting on from `start[codes]` (the next free code) for codes already taken."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return np.zeros(0, np.int32)
    uniq, inv = np.unique(codes, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv)
    rank = np.empty(len(codes), np.int64)
    rank[order] = np.arange(len(codes)) - np.repeat(np.cumsum(counts) - counts, counts)
    if start:
        offset = np.array([start.get(tuple(int(x) for x in u), 0) for u in uniq], np.int64)
        rank += offset[inv]
    return rank.astype(np.int32)


def diagnostics(codes: np.ndarray, sizes: Sequence[int]) -> dict[str, Any]:
    """What to check about a quantization, from its L codes per item (before disambiguation).

    collision_rate: share of items whose L codes some other item has too; largest_bucket: most
    items on one L-code; items_with_d_gt0: items whose extra code is not 0 (n - distinct L-codes);
    per level: codes used / codebook size, entropy in bits and divided by log2(size) (1 = uniform;
    a one-code level counts as 1), distinct prefixes up to that level.
    """
    codes = np.asarray(codes)
    n, levels = codes.shape
    if n == 0:
        raise ValueError("no codes to diagnose")
    _, counts = np.unique(codes, axis=0, return_counts=True)
    per_level = []
    for lv in range(levels):
        cnt = np.bincount(codes[:, lv], minlength=sizes[lv])
        h = entropy_bits(cnt)
        per_level.append(
            {
                "level": lv + 1,
                "token": chr(ord("a") + lv),
                "size": int(sizes[lv]),
                "used": int((cnt > 0).sum()),
                "use": float((cnt > 0).sum() / sizes[lv]),
                "entropy_bits": h,
                "entropy_norm": h / math.log2(sizes[lv]) if sizes[lv] > 1 else 1.0,
                "largest_code": int(cnt.max()),
                "prefixes": int(len(np.unique(codes[:, : lv + 1], axis=0))),
            }
        )
    sizes_hist = np.bincount(counts)
    return {
        "items": int(n),
        "levels": int(levels),
        "distinct_codes": int(len(counts)),
        "collision_rate": float(counts[counts > 1].sum() / n),
        "colliding_items": int(counts[counts > 1].sum()),
        "items_with_d_gt0": int(n - len(counts)),
        "largest_bucket": int(counts.max()),
        "per_level": per_level,
        "bucket_sizes": {str(s): int(c) for s, c in enumerate(sizes_hist) if c},
    }


def plot_diagnostics(
    codes: np.ndarray, sizes: Sequence[int], stats: Mapping[str, Any], path: Path
) -> Path:
    """PNG: items per code (codes by rank) for each level, and how many L-codes hold k items."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    levels = len(sizes)
    fig = Figure(figsize=(3.6 * (levels + 1), 3.0), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, levels + 1)
    for lv, ax in enumerate(axes[:-1]):
        cnt = np.sort(np.bincount(codes[:, lv], minlength=sizes[lv]))[::-1]
        s = stats["per_level"][lv]
        ax.bar(np.arange(len(cnt)), cnt, width=1.0, color="C0")
        ax.set(
            title=f"level {s['token']}: {s['used']}/{s['size']} used, "
            f"H/Hmax={s['entropy_norm']:.2f}",
            xlabel="code (by items, descending)",
            ylabel="items",
        )
    hist = {int(k): v for k, v in stats["bucket_sizes"].items()}
    axes[-1].bar(list(hist), list(hist.values()), color="C1")
    axes[-1].set(
        title=f"collisions {stats['collision_rate']:.1%}, largest bucket {stats['largest_bucket']}",
        xlabel="items per L-code",
        ylabel="L-codes",
        yscale="log",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
