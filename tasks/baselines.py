"""Non-neural baselines and IIRG's one-hop memorization analysis, as full score matrices.

Popularity, one-hop Markov (successor counts of the last history item, backing off to
popularity) and multi-hop co-occurrence kNN (relation weights summed over the history) read the
same relation snapshots the LLM's instruction data came from, so no baseline sees a held-out
target either. Popularity breaks every tie: it is added as a fraction below the primary
score's resolution, so it reorders only exact ties.
"""
from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import scipy.sparse as sp

from tasks.relations import TABLES
from tasks.warehouse import ident, run

EVAL_SPLITS = {"valid": ["train"], "test": ["train", "valid"]}


def popularity(con: duckdb.DuckDBPyConnection, dataset: str, split: str, n_items: int) -> np.ndarray:
    """Events per item that a `split` evaluation may see; index 0 is padding."""
    pop = np.zeros(n_items + 1)
    for item, n in run(con, "eval/popularity", {"dataset": dataset,
                                                "splits": EVAL_SPLITS[split]}).fetchall():
        pop[item] = n
    return pop


def relation_matrix(con: duckdb.DuckDBPyConnection, table: str, snapshot_id: int, n_items: int,
                    column: str = "n") -> sp.csr_matrix:
    """A snapshot as a sparse (n_items+1)^2 matrix of counts (`n`) or weights."""
    rows = run(con, "eval/relation_pairs", {"snapshot_id": snapshot_id},
               table=ident(table, set(TABLES.values()))).fetchall()
    if not rows:
        return sp.csr_matrix((n_items + 1, n_items + 1))
    src, dst, n, w = (np.array(c) for c in zip(*rows))
    data = n if column == "n" else w
    return sp.csr_matrix((data.astype(np.float64), (src, dst)), shape=(n_items + 1, n_items + 1))


def with_popularity_ties(primary: np.ndarray, pop: np.ndarray, resolution: float) -> np.ndarray:
    """primary + popularity scaled below `resolution` (the smallest primary difference)."""
    return primary + pop[None, :] / (pop.max() + 1.0) * resolution


def popularity_scores(pop: np.ndarray, n_users: int) -> np.ndarray:
    return np.tile(pop, (n_users, 1))


def markov_scores(histories: Sequence[np.ndarray], transitions: sp.csr_matrix,
                  pop: np.ndarray) -> np.ndarray:
    """Successor counts of each user's last item; popularity where they tie or are absent."""
    last = np.array([h[-1] if len(h) else 0 for h in histories])
    return with_popularity_ties(transitions[last].toarray(), pop, 1.0)


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Users x items counts of the items in each history."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if len(rows) else []
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(histories), n_items + 1))


def knn_scores(histories: Sequence[np.ndarray], relation: sp.csr_matrix, pop: np.ndarray,
               resolution: float = 1.0) -> np.ndarray:
    """Relation weights summed over every history item (each occurrence counts)."""
    primary = (history_matrix(histories, relation.shape[0] - 1) @ relation).toarray()
    return with_popularity_ties(primary, pop, resolution)


def successor_candidates(histories: Sequence[np.ndarray], transitions: sp.csr_matrix,
                         size: int = 50) -> list[np.ndarray]:
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
