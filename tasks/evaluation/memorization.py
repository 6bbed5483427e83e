"""Memorization diagnostics, all in one place: why a target could be predicted at all.

IIRG's one-hop analysis: C(u) = the top-50 training successors of the input history; users
whose target is in C(u) benefit from memorization, and a model's memorization rate is the share
of its top-5 inside C(u).

MemGen's instance categories (Ding et al.):

- memorization: (last history item, target) is a training transition; no other label.
- otherwise, for h = 1..4 over the last h history items u, target v, the smallest h that
  matches, checked in this order: substitutability (u then v within h positions, h >= 2),
  symmetry (v then u within h), transitivity (u -> x -> v), second-order symmetry
  (v -> x -> u, v -> x <- u or v <- x -> u); anything else is uncategorized.
"Then within h" reads the training sequences; "->" is a one-hop training transition.

MemGen's token-level memorization: an instance is n-gram prefix memorized when some training
transition j -> j' shares the first n SID codes of (last history item, target).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..recommenders.baselines import history_matrix

CATEGORIES = (
    "memorization",
    "substitutability",
    "symmetry",
    "transitivity",
    "second-order symmetry",
    "uncategorized",
)


def within_hops(
    users: np.ndarray, items: np.ndarray, max_hop: int, n_items: int
) -> list[np.ndarray]:
    """S[h] (h = 1..max_hop; S[0] empty): sorted keys a * (n+1) + b of every (a, b) with b at
    most h positions after a in some training sequence (`users`/`items` ordered by user, pos)."""
    m = n_items + 1
    out = [np.empty(0, np.int64)]
    for d in range(1, max_hop + 1):
        same = (users[d:] == users[:-d]) & (items[d:] != items[:-d])  # no self-pairs
        keys = items[:-d][same].astype(np.int64) * m + items[d:][same]
        out.append(np.union1d(out[-1], keys))
    return out


def _matrix(keys: np.ndarray, m: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(keys), bool), (keys // m, keys % m)), shape=(m, m))


def _lookup(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """mat[rows[i], cols[i]] != 0 for every i, in one vectorized sparse lookup."""
    if not len(rows):
        return np.zeros(0, bool)
    return np.asarray(mat[rows, cols]).ravel() != 0


def categorize(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    n_items: int,
    max_hop: int = 4,
) -> tuple[list[str], list[int]]:
    """(category, hop) per test instance; hop 0 for memorization and uncategorized.

    Vectorized: each instance contributes its last `max_hop` history items u_o (o = 1 is the
    last); every relation is looked up once for all (u_o, v) pairs, then combined per hop."""
    m = n_items + 1
    within = [_matrix(k, m) for k in within_hops(users, items, max_hop, n_items)]
    adj = within[1].astype(np.int32)
    two = {
        "u->x->v": adj @ adj,  # [u, v]: u -> x -> v; [v, u]: v -> x -> u
        "v->x<-u": adj @ adj.T,
        "v<-x->u": adj.T @ adj,
    }
    n = len(targets)
    inst = np.repeat(np.arange(n), [min(len(h), max_hop) for h in histories])
    none = [np.zeros(0, np.int64)]
    offset = np.concatenate([np.arange(1, min(len(h), max_hop) + 1) for h in histories] or none)
    u = np.concatenate([np.asarray(h, np.int64)[::-1][:max_hop] for h in histories] or none)
    u, offset = u.astype(np.int64), offset.astype(np.int64)
    v = np.asarray(targets, np.int64)[inst]
    forward = _lookup(two["u->x->v"], u, v)
    second = (
        _lookup(two["u->x->v"], v, u)
        | _lookup(two["v->x<-u"], v, u)
        | _lookup(two["v<-x->u"], v, u)
    )

    def any_upto(flags: np.ndarray, h: int) -> np.ndarray:
        return np.bincount(inst, weights=(flags & (offset <= h)), minlength=n) > 0

    labels = np.full(n, "uncategorized", dtype=object)
    hops = np.zeros(n, dtype=int)
    done = np.zeros(n, bool)
    memo = any_upto(_lookup(within[1], u, v), 1)  # (last item, target) is a transition
    labels[memo], done = "memorization", memo.copy()
    for h in range(1, max_hop + 1):
        checks = [
            (
                "substitutability",
                any_upto(_lookup(within[h], u, v), h) if h >= 2 else np.zeros(n, bool),
            ),
            ("symmetry", any_upto(_lookup(within[h], v, u), h)),
            ("transitivity", any_upto(forward, h)),
            ("second-order symmetry", any_upto(second, h)),
        ]
        for name, hit in checks:
            new = hit & ~done
            labels[new], hops[new], done = name, h, done | new
    return labels.tolist(), hops.tolist()


def category_masks(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """A boolean user mask per category that occurs (for grouped metrics)."""
    arr = np.array(labels)
    return {c: arr == c for c in CATEGORIES if (arr == c).any()}


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
def transitions_from_sequences(
    sequences: Sequence[np.ndarray], self_loops: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of every consecutive pair in the training sequences. Self-transitions j -> j
    are dropped by default, as `memgen.within_hops` does, so n = L agrees with its
    item-level memorization."""
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) > 1]
    if not seqs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = np.concatenate([s[:-1] for s in seqs])
    dst = np.concatenate([s[1:] for s in seqs])
    keep = np.ones(len(src), bool) if self_loops else src != dst
    return src[keep], dst[keep]


def last_items(histories: Sequence[np.ndarray]) -> np.ndarray:
    """Each history's last item; 0 for an empty history."""
    return np.array([h[-1] if len(h) else 0 for h in histories], dtype=np.int64)


def prefix_keys(codes: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """(key per item_idx, number of keys): items share a key iff their first n codes agree;
    row 0 (padding) gets -1."""
    codes = np.asarray(codes)
    if not 1 <= n <= codes.shape[1]:
        raise ValueError(f"prefix length {n} outside 1..{codes.shape[1]}")
    uniq, inv = np.unique(codes[1:, :n], axis=0, return_inverse=True)
    return np.concatenate([[-1], inv.reshape(-1)]).astype(np.int64), len(uniq)


def prefix_memorized(
    last: np.ndarray,
    targets: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    codes: np.ndarray,
    n: int,
) -> np.ndarray:
    """True where some training transition j -> j' has prefix_n(j) = prefix_n(last) and
    prefix_n(j') = prefix_n(target); never for an empty history (last <= 0)."""
    key, size = prefix_keys(codes, n)
    last = np.asarray(last, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    seen = np.unique(key[src] * size + key[dst])  # pairs of prefix keys < size**2
    valid = (last > 0) & (targets > 0)
    query = key[np.where(valid, last, 0)] * size + key[np.where(valid, targets, 0)]
    return valid & np.isin(query, seen)


def prefix_memorization(
    last: np.ndarray,
    targets: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    codes: np.ndarray,
    max_n: int | None = None,
) -> dict[int, np.ndarray]:
    """{n: prefix_memorized(..., n)} for n = 1..max_n (default: the SID length L). n = L is
    item-level memorization when SIDs are unique; memorized at n implies memorized at n - 1."""
    max_n = np.asarray(codes).shape[1] if max_n is None else max_n
    return {n: prefix_memorized(last, targets, src, dst, codes, n) for n in range(1, max_n + 1)}
