"""Baselines against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import write_sequences

from hoprec.tasks.evaluation.metrics import mask_items, top_k
from hoprec.tasks.recommenders.baselines import (
    knn_scores,
    markov_scores,
    popularity,
    popularity_scores,
    relation_matrix,
)
from hoprec.tasks.relations.snapshots import snapshot

N = 5
# transitions: 1->2 (3 times), 1->3 (1), 2->3 (2), 4->5 (1)
T = sp.csr_matrix(
    (np.array([3.0, 1, 2, 1]), (np.array([1, 1, 2, 4]), np.array([2, 3, 3, 5]))),
    shape=(N + 1, N + 1),
)
POP = np.array([0, 4.0, 3, 5, 1, 2])


def test_markov_backs_off_to_popularity():
    s = markov_scores([np.array([4, 1]), np.array([5])], T, POP)
    lists = top_k(mask_items(s, [np.array([4, 1]), np.array([5])]), 3)
    assert lists[0].tolist() == [2, 3, 5]  # successors of 1: 2 (3), 3 (1); then popularity
    assert lists[1].tolist() == [3, 1, 2]  # 5 has no successor: pure popularity


def test_knn_sums_over_history():
    s = knn_scores([np.array([1, 2])], T, POP)
    # 3: 1 (from 1) + 2 (from 2) = 3 ties with 2: 3 (from 1); popularity puts 3 (pop 5) first
    assert top_k(mask_items(s, [np.array([])]), 2)[0].tolist() == [3, 2]
    assert popularity_scores(POP, 2).shape == (2, N + 1)


def test_relation_matrix_and_popularity_from_the_warehouse(con):
    write_sequences(con, "syn", [[1, 2, 3, 1, 2], [2, 3, 4]])
    snap = snapshot(con, "syn", "transitions")
    m = relation_matrix(con, "transitions", snap.snapshot_id, 4)
    # relations keep validation targets (not strict): user 1 [1, 2, 3, 1], user 2 [2, 3]
    assert (m[1, 2], m[2, 3], m[3, 1], m.sum()) == (1, 2, 1, 4)
    assert popularity(con, "syn", "test", 4).tolist() == [0, 2, 2, 2, 0]
    assert popularity(con, "syn", "valid", 4).tolist() == [0, 1, 2, 1, 0]
    with pytest.raises(ValueError):
        relation_matrix(con, "items", snap.snapshot_id, 4)
