"""Evaluation rows, memorization groups and gain shares on a hand-made case."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tasks.evaluation import evaluate, gain_table, metric_table, store

N = 4
# training successors: 1 -> 2 only
T = sp.csr_matrix((np.array([5.0]), (np.array([1]), np.array([2]))), shape=(N + 1, N + 1))
HIST = [np.array([1]), np.array([1]), np.array([3])]
TARGETS = np.array([2, 4, 4])        # user 0: target 2 in C(u) = {2}; users 1, 2: not


def fixed(order: list[int]):
    """A scorer ranking items in `order` for every user."""
    def score(histories):
        s = np.zeros((len(histories), N + 1))
        for rank, item in enumerate(order):
            s[:, item] = len(order) - rank
        return s
    return score


def test_groups_metrics_and_gains(con):
    res = evaluate("toy", "test", HIST, TARGETS, {"memorizer": fixed([2, 3, 4, 1]),
                                                   "generalizer": fixed([4, 2, 3, 1])}, T, ks=(1, 5))
    assert res.group_sizes == {"all": 3, "memorization": 1, "non-memorization": 2}
    cell = {(r["model"], r["group"], r["metric"], r["k"]): r["value"] for r in res.rows}
    # memorizer: user 0 hits 2 at rank 1; users 1/2 find 4 at rank 2 (1 is history) / rank 3
    assert cell[("memorizer", "memorization", "recall", 1)] == 1
    assert cell[("memorizer", "non-memorization", "recall", 1)] == 0
    assert cell[("memorizer", "non-memorization", "mrr", 0)] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert cell[("generalizer", "non-memorization", "recall", 1)] == 1
    # memorization rate: share of the top-5 inside C(u) = {2} for users 0, 1 and {} for user 2
    assert cell[("memorizer", "all", "memorization_rate", 5)] == pytest.approx((1 / 5 + 1 / 5 + 0) / 3)
    rows = metric_table(res, k=5)
    assert {r["model"] for r in rows} == {"memorizer", "generalizer"} and len(rows) == 6
    gains = gain_table(res, "memorizer", k=1)[0]
    ndcg1 = {("memorizer", "all"): 1 / 3, ("generalizer", "all"): 2 / 3}
    assert gains["gain all"] == pytest.approx(ndcg1[("generalizer", "all")] - ndcg1[("memorizer", "all")])
    # the generalizer's whole gain comes from the non-memorization users
    assert gains["share non-memorization"] == pytest.approx(2.0)
    assert gains["share memorization"] == pytest.approx(-1.0)
    store(con, res)
    store(con, res)                                                # a rerun replaces its rows
    assert con.execute("SELECT count(*) FROM eval_results").fetchone()[0] == len(res.rows)
