"""Memorization diagnostics, all in one place: why a target could be predicted at all.

IIRG's one-hop analysis: C(u) = the top-50 training successors of the input history; users
whose target is in C(u) benefit from memorization, and a model's memorization rate is the share
of its top-5 inside C(u).

MemGen's instance categories, as MemGen's code defines them (`mem_gen_categorizer.py`,
`FineGrainedEvaluator`; tests hold a literal port against this vectorized version). Relations
come from training sequences; R_h(a, b) means b follows a within h positions (self-pairs kept,
as MemGen keeps them). For an instance (history, target v):

- memorization: R_1(last history item, v). It is the only label then.
- otherwise each pattern is checked for h = 1..4 (substitutability from h = 2, since its h = 1
  is memorization), only when the history has at least h items, over the last h history items
  u, and labelled at its own smallest matching h: substitutability R_h(u, v); symmetry R_h(v, u);
  transitivity R_h(u, x) and R_h(x, v); second-order symmetry R_h(v, x) and R_h(x, u), or
  R_h(v, x) and R_h(u, x), or R_h(x, v) and R_h(x, u). Several labels per instance; none is
  "uncategorized" (an empty history gets no label at all in MemGen, "uncategorized" here).
- the primary label, for grouped metrics: memorization; else the pattern found at the smallest
  h, ties in the order above; else uncategorized.

MemGen's token-level (prefix) memorization (`token_mem_categorizer.py`): with prefix_n(i) the
first n SID codes of item i, an instance is memorized at the smallest hop h = 1..4 for which some
of its last h history items u (those that exist) has prefix_n(u) -> prefix_n(v) within h
positions in a training sequence; otherwise unseen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..recommenders.baselines import history_matrix

LOGICS = ("substitutability", "symmetry", "transitivity", "second-order symmetry")
CATEGORIES = ("memorization", *LOGICS, "uncategorized")
MAX_HOP = 4


def _pairs_at(users: np.ndarray, items: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of every b exactly d positions after a in a training sequence (`users`/`items`
    ordered by user, then position)."""
    same = users[d:] == users[:-d]
    return items[:-d][same].astype(np.int64), items[d:][same].astype(np.int64)


def within_hops(
    users: np.ndarray, items: np.ndarray, n_items: int, max_hop: int = MAX_HOP
) -> list[sp.csr_matrix]:
    """R[h] (h = 1..max_hop; R[0] empty): boolean (n+1)^2 matrices, R[h][a, b] when b follows a
    within h positions in some training sequence."""
    m = n_items + 1
    out: list[sp.csr_matrix] = [sp.csr_matrix((m, m), dtype=np.int8)]  # R[0]: no pair
    rows, cols = np.zeros(0, np.int64), np.zeros(0, np.int64)
    for d in range(1, max_hop + 1):
        a, b = _pairs_at(users, items, d)
        rows, cols = np.concatenate([rows, a]), np.concatenate([cols, b])
        mat = sp.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(m, m))
        out.append((mat > 0).astype(np.int8).tocsr())
    return out


def _lookup(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """mat[rows[i], cols[i]] != 0 for every i, in one vectorized sparse lookup."""
    if not len(rows):
        return np.zeros(0, bool)
    return np.asarray(mat[rows, cols]).ravel() != 0


def _common(x: sp.csr_matrix, rx: np.ndarray, y: sp.csr_matrix, ry: np.ndarray) -> np.ndarray:
    """Row rx[i] of x and row ry[i] of y share a nonzero column, for every i."""
    if not len(rx):
        return np.zeros(0, bool)
    return np.asarray(x[rx].multiply(y[ry]).sum(axis=1)).ravel() > 0


def _instance_pairs(
    histories: Sequence[np.ndarray], targets: np.ndarray, max_hop: int
) -> tuple[np.ndarray, ...]:
    """(instance, distance from the end, u, v) for the last `max_hop` history items."""
    none = [np.zeros(0, np.int64)]
    inst = np.repeat(np.arange(len(targets)), [min(len(h), max_hop) for h in histories])
    dist = np.concatenate([np.arange(1, min(len(h), max_hop) + 1) for h in histories] or none)
    u = np.concatenate([np.asarray(h, np.int64)[::-1][:max_hop] for h in histories] or none)
    v = np.asarray(targets, np.int64)[inst]
    return inst, dist.astype(np.int64), u.astype(np.int64), v


def memgen_labels(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    max_hop: int = MAX_HOP,
) -> list[dict[str, int]]:
    """MemGen's labels of each instance as {pattern: its smallest hop}: {"memorization": 1},
    several generalization patterns, {"uncategorized": 0}, or {} for an empty history.

    Vectorized: each instance contributes its last `max_hop` history items; every relation is
    looked up once per hop for all (u, v) pairs, then combined per instance."""
    n = len(targets)
    rel = within_hops(users, items, n_items, max_hop)
    inst, dist, u, v = _instance_pairs(histories, targets, max_hop)
    length = np.array([len(h) for h in histories], dtype=np.int64)

    def per_instance(flags: np.ndarray, h: int) -> np.ndarray:
        hit = np.bincount(inst, weights=flags & (dist <= h), minlength=n) > 0
        return hit & (length >= h)

    memo = per_instance(_lookup(rel[1], u, v) & (dist == 1), 1)
    found = {logic: np.zeros(n, np.int64) for logic in LOGICS}
    for h in range(1, max_hop + 1):
        r, rt = rel[h], rel[h].T.tocsr()
        flags = {
            "substitutability": _lookup(r, u, v) if h >= 2 else np.zeros(len(u), bool),
            "symmetry": _lookup(r, v, u),
            "transitivity": _common(r, u, rt, v),
            "second-order symmetry": _common(r, v, rt, u)
            | _common(r, v, r, u)
            | _common(rt, v, rt, u),
        }
        for logic in LOGICS:
            new = per_instance(flags[logic], h) & (found[logic] == 0)
            found[logic][new] = h
    out: list[dict[str, int]] = []
    for i in range(n):
        if not length[i]:
            out.append({})
        elif memo[i]:
            out.append({"memorization": 1})
        else:
            labels = {logic: int(found[logic][i]) for logic in LOGICS if found[logic][i]}
            out.append(labels or {"uncategorized": 0})
    return out


def primary(labels: dict[str, int]) -> tuple[str, int]:
    """One label per instance for grouped metrics: memorization; else the pattern at the
    smallest hop (ties in LOGICS order); else uncategorized. Memorization and uncategorized
    carry hop 0."""
    if "memorization" in labels:
        return "memorization", 0
    found = [(h, LOGICS.index(p), p) for p, h in labels.items() if p in LOGICS]
    if not found:
        return "uncategorized", 0
    h, _, pattern = min(found)
    return pattern, h


def categorize(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    max_hop: int = MAX_HOP,
) -> tuple[list[str], list[int]]:
    """(primary category, hop) per instance; see `primary`."""
    prim = [
        primary(lab) for lab in memgen_labels(histories, targets, users, items, n_items, max_hop)
    ]
    return [p for p, _ in prim], [h for _, h in prim]


def category_masks(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """A boolean user mask per primary category that occurs (for grouped metrics)."""
    arr = np.array(labels)
    return {c: arr == c for c in CATEGORIES if (arr == c).any()}


def label_masks(labels: Sequence[dict[str, int]]) -> dict[str, np.ndarray]:
    """A boolean user mask per multi-label `pattern_h` (MemGen's table), in MemGen's order; an
    instance lies in every one of its labels."""
    names = (
        ["memorization"]
        + [f"{p}_{h}" for p in LOGICS for h in range(1, MAX_HOP + 1) if (p, h) != (LOGICS[0], 1)]
        + ["uncategorized"]
    )
    flat = [
        {(p if p in ("memorization", "uncategorized") else f"{p}_{h}") for p, h in lab.items()}
        for lab in labels
    ]
    masks = {name: np.array([name in f for f in flat], dtype=bool) for name in names}
    return {name: m for name, m in masks.items() if m.any()}


# --- IIRG's one-hop analysis --------------------------------------------------------------
def successor_candidates(
    histories: Sequence[np.ndarray], transitions: sp.csr_matrix, size: int = 50
) -> list[np.ndarray]:
    """IIRG's C(u): the `size` most frequent training successors summed over the history
    (count desc, then item index), items with a zero count never included."""
    summed = (history_matrix(histories, transitions.shape[0] - 1) @ transitions).toarray()
    out = []
    for row in summed:
        cand = np.flatnonzero(row > 0)
        order = np.lexsort((cand, -row[cand]))
        out.append(cand[order[:size]])
    return out


def memorization_split(candidates: Sequence[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """True for memorization-benefiting users (target in C(u)), False for the others."""
    return np.array([t in set(c.tolist()) for c, t in zip(candidates, targets)], dtype=bool)


def memorization_rate(candidates: Sequence[np.ndarray], lists: np.ndarray, k: int = 5) -> float:
    """Mean share of a model's top-k that lies in C(u)."""
    shares = [len(set(top[:k].tolist()) & set(c.tolist())) / k for c, top in zip(candidates, lists)]
    return float(np.mean(shares)) if shares else 0.0


# --- token-level (SID prefix) memorization ---------------------------------------------------
def prefix_keys(codes: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """(key per item_idx, number of keys): items share a key iff their first n codes agree;
    row 0 (padding) gets -1."""
    codes = np.asarray(codes)
    if not 1 <= n <= codes.shape[1]:
        raise ValueError(f"prefix length {n} outside 1..{codes.shape[1]}")
    uniq, inv = np.unique(codes[1:, :n], axis=0, return_inverse=True)
    return np.concatenate([[-1], inv.reshape(-1)]).astype(np.int64), len(uniq)


def prefix_hops(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    codes: np.ndarray,
    n: int,
    max_hop: int = MAX_HOP,
) -> np.ndarray:
    """Per instance the smallest hop (1..max_hop) at which it is n-gram prefix memorized, 0 when
    unseen. A prefix pair first seen at distance m in training matches a history item at
    distance d from hop max(d, m) on, so the answer is the minimum of that over d."""
    key, size = prefix_keys(codes, n)
    big = max_hop + 1
    first = {}  # prefix pair key -> smallest training distance
    for d in range(max_hop, 0, -1):
        a, b = _pairs_at(users, items, d)
        for k in np.unique(key[a] * size + key[b]).tolist():
            first[k] = d
    inst, dist, u, v = _instance_pairs(histories, targets, max_hop)
    seen = np.array([first.get(k, big) for k in (key[u] * size + key[v]).tolist()], np.int64)
    hop = np.maximum(dist, seen)
    best = np.full(len(targets), big, np.int64)
    np.minimum.at(best, inst, hop)
    return np.where(best <= max_hop, best, 0)


def prefix_memorization(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    codes: np.ndarray,
    max_hop: int = MAX_HOP,
) -> dict[str, np.ndarray]:
    """Masks `{n}-gram h{h}` (memorized at smallest hop h) and `{n}-gram unseen` for every prefix
    length n = 1..L of the SIDs: MemGen's token-level table."""
    out = {}
    for n in range(1, np.asarray(codes).shape[1] + 1):
        hops = prefix_hops(histories, targets, users, items, codes, n, max_hop)
        for h in range(1, max_hop + 1):
            out[f"{n}-gram h{h}"] = hops == h
        out[f"{n}-gram unseen"] = hops == 0
    return {k: m for k, m in out.items() if m.any()}
