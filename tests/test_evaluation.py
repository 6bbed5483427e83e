"""Evaluation rows, memorization groups and gain shares on a hand-made case."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import scipy.sparse as sp

from hoprec.tasks.evaluation.evaluate import evaluate, store
from hoprec.tasks.evaluation.report import bootstrap_rows, gain_rows, metric_rows

N = 4
# training successors: 1 -> 2 only
T = sp.csr_matrix((np.array([5.0]), (np.array([1]), np.array([2]))), shape=(N + 1, N + 1))
HIST = [np.array([1]), np.array([1]), np.array([3])]
TARGETS = np.array([2, 4, 4])  # user 0: target 2 in C(u) = {2}; users 1, 2: not


def fixed(order: list[int]):
    """A scorer ranking items in `order` for every user."""

    def score(histories):
        s = np.zeros((len(histories), N + 1))
        for rank, item in enumerate(order):
            s[:, item] = len(order) - rank
        return s

    return score


def test_groups_metrics_and_gains(con):
    res = evaluate(
        "toy",
        "test",
        HIST,
        TARGETS,
        {"memorizer": fixed([2, 3, 4, 1])(HIST), "generalizer": fixed([4, 2, 3, 1])(HIST)},
        T,
        ks=(1, 5, 10),
    )
    assert res.group_sizes == {"all": 3, "memorization": 1, "non-memorization": 2}
    cell = {(r["model"], r["group"], r["metric"], r["k"]): r["value"] for r in res.rows}
    # memorizer: user 0 hits 2 at rank 1; users 1/2 find 4 at rank 2 (1 is history) / rank 3
    assert cell[("memorizer", "memorization", "recall", 1)] == 1
    assert cell[("memorizer", "non-memorization", "recall", 1)] == 0
    assert cell[("memorizer", "non-memorization", "mrr", 0)] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert cell[("generalizer", "non-memorization", "recall", 1)] == 1
    # memorization rate: share of the top-5 inside C(u) = {2} for users 0, 1 and {} for user 2
    assert cell[("memorizer", "all", "memorization_rate", 5)] == pytest.approx(
        (1 / 5 + 1 / 5 + 0) / 3
    )
    runs = [{"eval": asdict(res)}]  # one run: plain values, no spread
    rows = metric_rows(runs)
    assert {r["model"] for r in rows} == {"memorizer", "generalizer"} and len(rows) == 6
    [gains] = gain_rows(runs, "memorizer")
    # NDCG@10: memorizer 1, 1/log2(4), 1/log2(3) (users 0, 1, 2); generalizer 1/log2(3), 1, 1
    # -> gain all = (1/log2(3) - 1 + 1 - 1/2 + 1 - 1/log2(3)) / 3 = 1/6, a total of 3/6 = 1/2
    assert gains["gain all"] == f"{1 / 6:.4f}"
    # the non-memorization users carry more than the whole gain; the memorization user loses
    non_memo = (1 - 1 / 2) + (1 - 1 / np.log2(3))
    assert gains["share non-memorization"] == f"{non_memo / 0.5:.0%}"  # 174%
    assert gains["share memorization"] == f"{(1 / np.log2(3) - 1) / 0.5:.0%}"  # -74%
    # per-user values behind the paired bootstrap: one memorization user loses 1 - 1/log2(3),
    # both others gain; a single user's interval is that user's difference
    assert res.memorization == [True, False, False]
    boot = {r["group"]: r for r in bootstrap_rows(runs, "memorizer")}
    loss = 1 / np.log2(3) - 1
    assert boot["memorization"]["ΔNDCG@10 [95% CI]"] == f"{loss:+.4f} [{loss:+.4f}, {loss:+.4f}]"
    assert boot["memorization"]["NDCG@10"] == "significant"
    assert boot["non-memorization"]["ΔR@10 [95% CI]"].startswith("+0.0000")  # all hit at 10
    store(con, res)
    store(con, res)  # a rerun replaces its rows
    assert con.execute("SELECT count(*) FROM eval_results").fetchone()[0] == len(res.rows)
