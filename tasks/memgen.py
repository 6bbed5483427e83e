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


def _has(keys: np.ndarray, a: np.ndarray, b: np.ndarray, m: int) -> bool:
    return bool(np.isin(np.asarray(a, np.int64) * m + b, keys).any())


def categorize(histories: Sequence[np.ndarray], targets: np.ndarray, users: np.ndarray,
               items: np.ndarray, n_items: int, max_hop: int = 4) -> tuple[list[str], list[int]]:
    """(category, hop) per test instance; hop 0 for memorization and uncategorized."""
    m = n_items + 1
    s = within_hops(users, items, max_hop, n_items)
    adj = sp.csr_matrix((np.ones(len(s[1])), (s[1] // m, s[1] % m)), shape=(m, m))
    adj.data[:] = 1
    adj_t = adj.T.tocsr()
    labels, hops = [], []
    for hist, v in zip(histories, targets):
        hist = np.asarray(hist, np.int64)
        if len(hist) and _has(s[1], hist[-1:], np.array([v]), m):
            labels.append("memorization"), hops.append(0)
            continue
        found = None
        for h in range(1, max_hop + 1):
            us = hist[-h:]
            vv = np.full(len(us), v)
            if h >= 2 and _has(s[h], us, vv, m):
                found = "substitutability"
            elif _has(s[h], vv, us, m):
                found = "symmetry"
            elif (adj[us] @ adj_t[v].T).sum() > 0:                    # u -> x -> v
                found = "transitivity"
            elif ((adj[v] @ adj_t[us].T).sum() > 0                    # v -> x -> u
                  or (adj[v] @ adj[us].T).sum() > 0                   # v -> x <- u
                  or (adj_t[v] @ adj_t[us].T).sum() > 0):             # v <- x -> u
                found = "second-order symmetry"
            if found:
                labels.append(found), hops.append(h)
                break
        if not found:
            labels.append("uncategorized"), hops.append(0)
    return labels, hops


def category_masks(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """A boolean user mask per category that occurs (for grouped metrics)."""
    arr = np.array(labels)
    return {c: arr == c for c in CATEGORIES if (arr == c).any()}
