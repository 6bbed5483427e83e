"""MemGen's instance categories (Ding et al.): why a test target could be predicted at all.

- memorization: (last history item, target) is a training transition; no other label.
- otherwise, for h = 1..4 over the last h history items u, target v, the smallest h that
  matches, checked in this order: substitutability (u then v within h positions, h >= 2),
  symmetry (v then u within h), transitivity (u -> x -> v), second-order symmetry
  (v -> x -> u, v -> x <- u or v <- x -> u); anything else is uncategorized.
"Then within h" reads the training sequences; "->" is a one-hop training transition.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

CATEGORIES = ("memorization", "substitutability", "symmetry", "transitivity",
              "second-order symmetry", "uncategorized")


def within_hops(users: np.ndarray, items: np.ndarray, max_hop: int, n_items: int) -> list[np.ndarray]:
    """S[h] (h = 1..max_hop; S[0] empty): sorted keys a * (n+1) + b of every (a, b) with b at
    most h positions after a in some training sequence (`users`/`items` ordered by user, pos)."""
    m = n_items + 1
    out = [np.empty(0, np.int64)]
    for d in range(1, max_hop + 1):
        same = (users[d:] == users[:-d]) & (items[d:] != items[:-d])      # no self-pairs
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


def categorize(histories: Sequence[np.ndarray], targets: np.ndarray, users: np.ndarray,
               items: np.ndarray, n_items: int, max_hop: int = 4) -> tuple[list[str], list[int]]:
    """(category, hop) per test instance; hop 0 for memorization and uncategorized.

    Vectorized: each instance contributes its last `max_hop` history items u_o (o = 1 is the
    last); every relation is looked up once for all (u_o, v) pairs, then combined per hop."""
    m = n_items + 1
    within = [_matrix(k, m) for k in within_hops(users, items, max_hop, n_items)]
    adj = within[1].astype(np.int32)
    two = {"u->x->v": adj @ adj,                       # [u, v]: u -> x -> v; [v, u]: v -> x -> u
           "v->x<-u": adj @ adj.T, "v<-x->u": adj.T @ adj}
    n = len(targets)
    inst = np.repeat(np.arange(n), [min(len(h), max_hop) for h in histories])
    offset = np.concatenate([np.arange(1, min(len(h), max_hop) + 1) for h in histories] or [[]])
    u = np.concatenate([np.asarray(h, np.int64)[::-1][:max_hop] for h in histories] or [[]])
    u, offset = u.astype(np.int64), offset.astype(np.int64)
    v = np.asarray(targets, np.int64)[inst]
    forward = _lookup(two["u->x->v"], u, v)
    second = (_lookup(two["u->x->v"], v, u) | _lookup(two["v->x<-u"], v, u)
              | _lookup(two["v<-x->u"], v, u))

    def any_upto(flags: np.ndarray, h: int) -> np.ndarray:
        return np.bincount(inst, weights=(flags & (offset <= h)), minlength=n) > 0

    labels = np.full(n, "uncategorized", dtype=object)
    hops = np.zeros(n, dtype=int)
    done = np.zeros(n, bool)
    memo = any_upto(_lookup(within[1], u, v), 1)       # (last item, target) is a transition
    labels[memo], done = "memorization", memo.copy()
    for h in range(1, max_hop + 1):
        checks = [("substitutability", any_upto(_lookup(within[h], u, v), h) if h >= 2
                   else np.zeros(n, bool)),
                  ("symmetry", any_upto(_lookup(within[h], v, u), h)),
                  ("transitivity", any_upto(forward, h)),
                  ("second-order symmetry", any_upto(second, h))]
        for name, hit in checks:
            new = hit & ~done
            labels[new], hops[new], done = name, h, done | new
    return labels.tolist(), hops.tolist()


def category_masks(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """A boolean user mask per category that occurs (for grouped metrics)."""
    arr = np.array(labels)
    return {c: arr == c for c in CATEGORIES if (arr == c).any()}
