"""MemGen's adaptive ID/GR fusion (Ding et al. 2026).

Each model's top-`top` list is min-max normalised per user and the two are mixed with
a = sigmoid(k * (MSP - tau)), MSP being the ID model's maximum softmax probability, so users on
whom the ID model is confident lean on it and the others on the generative (GR) model.

Unlisted items. Literal min-max sends a list's last item to 0, the value an unlisted item gets,
so "50th in the ID list" would earn nothing over "not in it". We place the unlisted items one
mean gap (range / (m - 1)) below the list's last item and min-max over the list plus that
virtual item: the m listed scores map affinely onto [1/m, 1] (order and relative gaps kept,
scale-free) and unlisted items are 0, strictly below. `floor=0` gives the literal reading.
Items in neither list are -inf in the fused matrix (after everything, as `mask_items` does).

Paper grid: "k in {1, 5, ..., 25}" is read as the arithmetic sequence 1, 5, 9, ..., 25
(step 4, 7 values); tau in 0, 0.1, ..., 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from .metrics import mask_items, target_ranks, top_k

GRID_KS = (1, 5, 9, 13, 17, 21, 25)
GRID_TAUS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def max_softmax_prob(id_scores: np.ndarray) -> np.ndarray:
    """Per user, the largest softmax probability over the finite items (column 0 and -inf
    ignored; raw logits in). 1 / sum(exp(x - max)) never overflows. A row with no finite item
    has no confidence: 0."""
    x = np.asarray(id_scores, dtype=np.float64)[:, 1:]
    finite = np.isfinite(x)
    has = finite.any(axis=1)
    top = np.where(finite, x, -np.inf).max(axis=1, initial=-np.inf)
    top = np.where(has, top, 0.0)
    z = np.where(finite, np.exp(np.where(finite, x, 0.0) - top[:, None]), 0.0).sum(axis=1)
    return np.where(has, 1.0 / np.where(has, z, 1.0), 0.0)


def _normalized(
    scores: np.ndarray, exclude: Sequence[np.ndarray], top: int, floor: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(normalised full matrix, listed mask); see the module docstring for the floor."""
    if floor is not None and not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must lie in [0, 1], got {floor}")
    masked = mask_items(scores, exclude)
    lists = top_k(masked, top)  # same tie order as the evaluation
    vals = np.take_along_axis(masked, lists, axis=1)
    ok = np.isfinite(vals)  # beam scorers: fewer finite items
    m = ok.sum(axis=1, keepdims=True)
    hi = np.where(ok, vals, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    lo = np.where(ok, vals, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    spread = hi > lo  # False: all equal (or empty) -> 1
    lo, span = np.where(spread, lo, 0.0), np.where(spread, hi - lo, 1.0)
    base = 1.0 / np.maximum(m, 1) if floor is None else np.full_like(span, floor)
    norm = np.where(spread, base + (1.0 - base) * (np.where(ok, vals, lo) - lo) / span, 1.0)
    out = np.zeros(masked.shape)
    listed = np.zeros(masked.shape, dtype=bool)
    rows = np.broadcast_to(np.arange(len(lists))[:, None], lists.shape)
    out[rows[ok], lists[ok]] = norm[ok]
    listed[rows[ok], lists[ok]] = True
    return out, listed


def top_normalized(
    scores: np.ndarray, exclude: Sequence[np.ndarray], top: int = 50, floor: float | None = None
) -> np.ndarray:
    """Full matrix: each user's top-`top` finite items (padding and history masked) min-max
    normalised onto [floor, 1] (floor = 1/list length by default; an all-equal list gets 1);
    every other item 0."""
    return _normalized(scores, exclude, top, floor)[0]


def _mix(nid: np.ndarray, ngr: np.ndarray, listed: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    fused = alpha[:, None] * nid + (1.0 - alpha[:, None]) * ngr
    return np.where(listed, fused, -np.inf)


def fuse(
    id_scores: np.ndarray,
    gr_scores: np.ndarray,
    exclude: Sequence[np.ndarray],
    k: float,
    tau: float,
    top: int = 50,
    floor: float | None = None,
) -> np.ndarray:
    """a * ID + (1 - a) * GR on the normalised top lists, a = sigmoid(k * (MSP - tau));
    items in neither list (padding and history included) are -inf."""
    nid, id_listed = _normalized(id_scores, exclude, top, floor)
    ngr, gr_listed = _normalized(gr_scores, exclude, top, floor)
    alpha = expit(k * (max_softmax_prob(id_scores) - tau))
    return _mix(nid, ngr, id_listed | gr_listed, alpha)


def _compact(listed: np.ndarray, targets: np.ndarray) -> tuple[Any, ...]:
    """Per user the listed items in index order, padded to the widest row: (rows, cols of the
    listed cells, their column in the compact matrix, its width, each target's column or -1)."""
    rows, cols = np.nonzero(listed)  # row-major: item index ascending
    counts = listed.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(rows)) - starts[rows]
    width = max(int(counts.max(initial=0)), 1)
    tpos = np.full(len(targets), -1)
    hit = cols == targets[rows]
    tpos[rows[hit]] = pos[hit]
    return rows, cols, pos, width, tpos


def grid_search(
    id_scores: np.ndarray,
    gr_scores: np.ndarray,
    exclude: Sequence[np.ndarray],
    targets: np.ndarray,
    ks: Sequence[float] = GRID_KS,
    taus: Sequence[float] = GRID_TAUS,
    top: int = 50,
    floor: float | None = None,
) -> dict:
    """Best (k, tau) by validation NDCG@10 (first in k-major grid order on ties) and the grid.

    Normalised lists and MSP are computed once; each point is a weighted sum over the listed
    cells only. Ranks equal `target_ranks` on the full fused matrix: everything outside the
    union is -inf, so a listed target's rank is its rank among the listed items in index order,
    and an unlisted target's (union + unlisted items of smaller index + 1) never changes."""
    targets = np.asarray(targets, dtype=np.int64)
    nid, id_listed = _normalized(id_scores, exclude, top, floor)
    ngr, gr_listed = _normalized(gr_scores, exclude, top, floor)
    listed = id_listed | gr_listed
    msp = max_softmax_prob(id_scores)
    rows, cols, pos, width, tpos = _compact(listed, targets)
    a_id = np.full((len(targets), width), 0.0)
    a_gr = np.full((len(targets), width), 0.0)
    a_id[rows, pos], a_gr[rows, pos] = nid[rows, cols], ngr[rows, cols]
    pad = np.ones((len(targets), width), dtype=bool)
    pad[rows, pos] = False
    inside = tpos >= 0
    below = np.bincount(rows, weights=cols < targets[rows], minlength=len(targets)).astype(int)
    outside_rank = listed.sum(axis=1) + targets - below + 1
    grid = []
    for k in ks:
        for tau in taus:
            alpha = expit(k * (msp - tau))[:, None]
            fused = np.where(pad, -np.inf, alpha * a_id + (1.0 - alpha) * a_gr)
            ranks = outside_rank.copy()
            if inside.any():
                ranks[inside] = target_ranks(fused[inside], tpos[inside])
            ndcg = np.where(ranks <= 10, 1.0 / np.log2(ranks + 1.0), 0.0)
            grid.append({"k": k, "tau": tau, "ndcg@10": float(ndcg.mean()) if len(ndcg) else 0.0})
    best = max(range(len(grid)), key=lambda i: (grid[i]["ndcg@10"], -i))
    return {
        "k": grid[best]["k"],
        "tau": grid[best]["tau"],
        "ndcg@10": grid[best]["ndcg@10"],
        "grid": grid,
    }
