"""Non-neural baselines as full score matrices: popularity, one-hop Markov, co-occurrence kNN.

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

from ..data.sequences import n_items
from ..data.warehouse import ident, run
from ..relations.snapshots import TABLES

EVAL_SPLITS = {"valid": ["train"], "test": ["train", "valid"]}


def popularity(
    con: duckdb.DuckDBPyConnection, dataset: str, split: str, n_items: int
) -> np.ndarray:
    """Events per item that a `split` evaluation may see; index 0 is padding."""
    pop = np.zeros(n_items + 1)
    for item, n in run(
        con, "evaluation/popularity", {"dataset": dataset, "splits": EVAL_SPLITS[split]}
    ).fetchall():
        pop[item] = n
    return pop


def relation_matrix(
    con: duckdb.DuckDBPyConnection, table: str, snapshot_id: int, n_items: int, column: str = "n"
) -> sp.csr_matrix:
    """A snapshot as a sparse (n_items+1)^2 matrix of counts (`n`) or weights."""
    rows = run(
        con,
        "evaluation/relation_pairs",
        {"snapshot_id": snapshot_id},
        table=ident(table, set(TABLES.values())),
    ).fetchall()
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


def markov_scores(
    histories: Sequence[np.ndarray], transitions: sp.csr_matrix, pop: np.ndarray
) -> np.ndarray:
    """Successor counts of each user's last item; popularity where they tie or are absent."""
    last = np.array([h[-1] if len(h) else 0 for h in histories])
    return with_popularity_ties(transitions[last].toarray(), pop, 1.0)


def history_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Users x items counts of the items in each history."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if len(rows)
        else np.zeros(0, np.int64)
    )
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(histories), n_items + 1))


def knn_scores(
    histories: Sequence[np.ndarray],
    relation: sp.csr_matrix,
    pop: np.ndarray,
    resolution: float = 1.0,
) -> np.ndarray:
    """Relation weights summed over every history item (each occurrence counts)."""
    primary = (history_matrix(histories, relation.shape[0] - 1) @ relation).toarray()
    return with_popularity_ties(primary, pop, resolution)


MODELS = ("popularity", "markov", "cooc-knn")


def baseline_scores(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    split: str,
    model: str,
    snapshots: dict[str, int],
    histories: Sequence[np.ndarray],
) -> np.ndarray:
    """One baseline's scores [users, n_items + 1], from the popularity and relation snapshots
    that an evaluation on `split` may see."""
    if model not in MODELS:
        raise ValueError(f"unknown baseline {model!r}; choose from {', '.join(MODELS)}")
    n = n_items(con, dataset)
    pop = popularity(con, dataset, split, n)
    if model == "popularity":
        return popularity_scores(pop, len(histories))
    if model == "markov":
        return markov_scores(
            histories, relation_matrix(con, "transitions", snapshots["transitions"], n), pop
        )
    return knn_scores(
        histories, relation_matrix(con, "cooccurrence", snapshots["cooccurrence"], n), pop
    )
