"""Ranking metrics against values computed by hand on crafted rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoprec.tasks.evaluation.metrics import (
    entropy_bits,
    grouped_metrics,
    mask_items,
    ranking_metrics,
    target_ranks,
    top_k,
)

# 3 users, items 1..5 (column 0 = padding)
SCORES = np.array(
    [
        [9, 5.0, 4.0, 3.0, 2.0, 1.0],  # order 1,2,3,4,5
        [9, 1.0, 2.0, 3.0, 4.0, 5.0],  # order 5,4,3,2,1
        [9, 2.0, 2.0, 1.0, 2.0, 0.0],  # ties: 1,2,4 (by index), then 3, 5
    ]
)


def test_ranks_and_lists_by_hand():
    masked = mask_items(SCORES, [np.array([]), np.array([5]), np.array([])])
    assert masked[0, 0] == -np.inf and masked[1, 5] == -np.inf
    assert target_ranks(masked, np.array([3, 1, 4])).tolist() == [3, 4, 3]
    assert top_k(masked, 3).tolist() == [[1, 2, 3], [4, 3, 2], [1, 2, 4]]


def test_metric_values_by_hand():
    masked = mask_items(SCORES, [np.array([]), np.array([5]), np.array([])])
    ranks = target_ranks(masked, np.array([3, 1, 4]))  # 3, 4, 3
    m = ranking_metrics(ranks, top_k(masked, 5), n_items=5, ks=(1, 3, 5))
    assert m[("recall", 1)] == 0 and m[("recall", 3)] == pytest.approx(2 / 3)
    assert m[("recall", 5)] == 1
    assert m[("ndcg", 3)] == pytest.approx((2 * (1 / math.log2(4))) / 3)
    assert m[("ndcg", 5)] == pytest.approx((2 / math.log2(4) + 1 / math.log2(5)) / 3)
    assert m[("mrr", 0)] == pytest.approx((1 / 3 + 1 / 4 + 1 / 3) / 3)
    # top-1 lists: 1, 4, 1 -> 2 distinct of 5 items; entropy of (2/3, 1/3)
    assert m[("coverage", 1)] == pytest.approx(2 / 5)
    assert m[("entropy", 1)] == pytest.approx(
        -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    )
    # top-3 lists cover items 1, 2, 3, 4
    assert m[("coverage", 3)] == pytest.approx(4 / 5)


def test_groups_split_users():
    out = grouped_metrics(
        SCORES,
        np.array([1, 5, 4]),
        [np.array([])] * 3,
        {"first": np.array([True, False, False]), "rest": np.array([False, True, True])},
        ks=(1,),
    )
    assert out["first"][("recall", 1)] == 1 and out["first"][("users", 0)] == 1
    assert out["rest"][("recall", 1)] == pytest.approx(0.5)  # user 2 hits, user 3 not
    assert out["all"][("recall", 1)] == pytest.approx(2 / 3)


def test_entropy_of_uniform_lists():
    assert entropy_bits(np.array([1, 2, 3, 4])) == pytest.approx(2.0)
    assert entropy_bits(np.array([7, 7, 7])) == 0


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 12), st.integers(1, 6))
def test_rank_agrees_with_sorted_lists(seed, n_items, n_users):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n_users, n_items + 1)).astype(float)  # many ties
    masked = mask_items(scores, [np.array([]) for _ in range(n_users)])
    targets = rng.integers(1, n_items + 1, size=n_users)
    full = top_k(masked, n_items)
    for u in range(n_users):
        expected = sorted(range(1, n_items + 1), key=lambda i: (-masked[u, i], i))
        assert full[u].tolist() == expected
        assert target_ranks(masked, targets)[u] == expected.index(targets[u]) + 1


def test_per_user_values_by_hand():
    from hoprec.tasks.evaluation.metrics import per_user

    v = per_user(np.array([1, 3, 12]), k=10)
    assert v["ndcg@10"].tolist() == [1.0, 0.5, 0.0]  # 1/log2(1+1), 1/log2(3+1), beyond 10
    assert v["recall@10"].tolist() == [1.0, 1.0, 0.0]


def test_paired_bootstrap_intervals():
    from hoprec.tasks.evaluation.metrics import paired_bootstrap

    assert paired_bootstrap(np.full(30, 0.2)) == pytest.approx((0.2, 0.2, 0.2))
    mean, lo, hi = paired_bootstrap(np.tile([-1.0, 1.0], 50))
    assert mean == 0 and lo < 0 < hi  # a symmetric difference is not significant
    assert paired_bootstrap(np.arange(10.0), seed=3) == paired_bootstrap(np.arange(10.0), seed=3)
    mean, lo, hi = paired_bootstrap(np.r_[np.ones(90), np.zeros(10)])
    assert mean == pytest.approx(0.9) and 0.8 < lo < 0.9 < hi <= 0.97
