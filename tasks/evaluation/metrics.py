"""Full-catalogue ranking metrics: Recall/NDCG@K, MRR, coverage@K and entropy@K, per user group.

Every scorer hands over a full score matrix (users x items, column 0 = padding), so ranks are
exact over the whole catalogue; ties are broken by item index (smaller first), the same order
`top_k` uses, so a target's rank and the lists agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

KS = (1, 5, 10, 20)


def mask_items(scores: np.ndarray, exclude: Sequence[np.ndarray]) -> np.ndarray:
    """A copy with padding (column 0) and each user's excluded items (history) at -inf."""
    out = np.array(scores, dtype=np.float64, copy=True)
    out[:, 0] = -np.inf
    for u, items in enumerate(exclude):
        if len(items):
            out[u, np.asarray(items, dtype=np.int64)] = -np.inf
    return out


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each user's target: items scoring higher, plus equal-scoring items with
    a smaller index, plus one. A target masked to -inf ranks after every finite item."""
    rows = np.arange(len(targets))
    t = scores[rows, targets][:, None]
    idx = np.arange(scores.shape[1])[None, :]
    ahead = (scores > t) | ((scores == t) & (idx < targets[:, None]))
    return ahead.sum(axis=1) + 1


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each user's k best items by (score desc, item index asc)."""
    k = min(k, scores.shape[1])
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k]
        if k < scores.shape[1]
        else np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    )
    # exact ties at the boundary: take every item scoring >= the k-th value, then sort
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    for u in range(scores.shape[0]):
        cand = np.flatnonzero(scores[u] >= kth[u])
        order = np.lexsort((cand, -scores[u, cand]))
        out[u] = cand[order[:k]]
    return out


def entropy_bits(items: np.ndarray) -> float:
    """Shannon entropy (bits) of how often each item appears in the lists."""
    _, counts = np.unique(items, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def ranking_metrics(
    ranks: np.ndarray, lists: np.ndarray, n_items: int, ks: Sequence[int] = KS
) -> dict[tuple[str, int], float]:
    """{(metric, k): value}; MRR has k = 0 (full catalogue). `lists`: top-max(ks) per user."""
    out: dict[tuple[str, int], float] = {("users", 0): float(len(ranks))}
    if not len(ranks):
        return out
    out[("mrr", 0)] = float(np.mean(1.0 / ranks))
    for k in ks:
        hit = ranks <= k
        out[("recall", k)] = float(hit.mean())
        out[("ndcg", k)] = float(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0).mean())
        top = lists[:, :k]
        out[("coverage", k)] = float(len(np.unique(top)) / n_items)
        out[("entropy", k)] = entropy_bits(top)
    return out


def ranked(
    scores: np.ndarray, targets: np.ndarray, exclude: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(each target's rank, each user's top-k list) with padding and history masked: the one
    pass over the score matrix that every metric below reads."""
    masked = mask_items(scores, exclude)
    return target_ranks(masked, targets), top_k(masked, k)


def metrics_by_group(
    ranks: np.ndarray,
    lists: np.ndarray,
    n_items: int,
    groups: Mapping[str, np.ndarray] | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, dict[tuple[str, int], float]]:
    """Metrics for all users and for each named boolean user mask."""
    out = {"all": ranking_metrics(ranks, lists, n_items, ks)}
    for name, m in (groups or {}).items():
        out[name] = ranking_metrics(ranks[m], lists[m], n_items, ks)
    return out


def grouped_metrics(
    scores: np.ndarray,
    targets: np.ndarray,
    exclude: Sequence[np.ndarray],
    groups: Mapping[str, np.ndarray] | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, dict[tuple[str, int], float]]:
    """Metrics for all users and for each named boolean user mask, from a score matrix."""
    ranks, lists = ranked(scores, targets, exclude, max(ks))
    return metrics_by_group(ranks, lists, scores.shape[1] - 1, groups, ks)


def per_user(ranks: np.ndarray, k: int = 10) -> dict[str, np.ndarray]:
    """Each user's NDCG@k and Recall@k (hit): what paired comparisons resample."""
    hit = ranks <= k
    return {
        f"ndcg@{k}": np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0),
        f"recall@{k}": hit.astype(np.float64),
    }


def paired_bootstrap(
    diff: np.ndarray, draws: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-user differences between two models on the same
    users, and its percentile bootstrap interval (users resampled with replacement)."""
    diff = np.asarray(diff, dtype=np.float64)
    if not len(diff):
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(diff), size=(draws, len(diff)))
    means = diff[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(diff.mean()), float(low), float(high)
