"""Adaptive ID/GR fusion and SID-prefix memorization: hand values and literal oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoprec.tasks.evaluation.fusion import (
    GRID_KS,
    GRID_TAUS,
    fuse,
    grid_search,
    max_softmax_prob,
    top_normalized,
)
from hoprec.tasks.evaluation.metrics import grouped_metrics, top_k

INF = np.inf
# 2 users, items 1..5, top 3
ID = np.array(
    [
        [0, math.log(3), 0, 0, -INF, -INF],  # finite 1, 2, 3: MSP 3/5
        [0, 0, 0, 0, 0, 0.0],
    ]
)  # flat over 5 items: MSP 1/5
GR = np.array(
    [
        [0, -INF, 1, -INF, 3, 2],  # beam-like: 3 finite items
        [0, 9, 1, 2, 3, 4.0],
    ]
)
EXCLUDE = [np.array([], dtype=np.int64), np.array([1])]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_grid_reading():
    assert GRID_KS == (1, 5, 9, 13, 17, 21, 25)
    assert GRID_TAUS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def test_msp_by_hand():
    assert max_softmax_prob(ID).tolist() == pytest.approx([0.6, 0.2])
    huge = np.array([[5.0, 1000.0, 999.0, -INF], [0, -INF, -INF, -INF]])  # no overflow
    e = math.exp(-1)
    assert max_softmax_prob(huge).tolist() == pytest.approx([1 / (1 + e), 0.0])


def test_normalisation_by_hand():
    nid = top_normalized(ID, EXCLUDE, top=3)
    # user 0: ln3, 0, 0 -> [1/3, 1] affinely: 1, 1/3, 1/3; user 1: all equal (item 1 excluded) -> 1
    assert nid[0].tolist() == pytest.approx([0, 1, 1 / 3, 1 / 3, 0, 0])
    assert nid[1].tolist() == [0, 0, 1, 1, 1, 0]
    ngr = top_normalized(GR, EXCLUDE, top=3)
    assert ngr[0].tolist() == pytest.approx([0, 0, 1 / 3, 0, 1, 2 / 3])
    assert ngr[1].tolist() == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])
    # the literal paper reading: the list's last item at 0, like the unlisted ones
    assert top_normalized(GR, EXCLUDE, top=3, floor=0.0)[1].tolist() == [0, 0, 0, 0, 0.5, 1]
    # fewer finite items than `top`: only those; a single item gets 1
    beam = top_normalized(GR, EXCLUDE, top=50)[0]
    assert beam.tolist() == pytest.approx([0, 0, 1 / 3, 0, 1, 2 / 3])
    one = np.array([[0, -INF, 7.0, -INF]])
    assert top_normalized(one, [np.array([])], top=2).tolist() == [[0, 0, 1, 0]]
    with pytest.raises(ValueError):
        top_normalized(ID, EXCLUDE, floor=2.0)


def test_fused_scores_and_ranking_by_hand():
    a = sigmoid(5 * (0.6 - 0.2))  # user 1: sigmoid(0) = 1/2
    fused = fuse(ID, GR, EXCLUDE, k=5, tau=0.2, top=3)
    assert fused[0].tolist() == pytest.approx([-INF, a, 1 / 3, a / 3, 1 - a, (1 - a) * 2 / 3])
    assert fused[1].tolist() == pytest.approx([-INF, -INF, 0.5, 0.5 + 1 / 6, 0.5 + 1 / 3, 0.5])
    assert top_k(fused, 4).tolist() == [[1, 2, 3, 4], [4, 3, 2, 5]]  # 2 and 5 tie: index order


def adaptive_case() -> tuple[np.ndarray, ...]:
    """Disjoint top-3 lists. Users 0, 1: confident ID (MSP ~ 0.4), target = ID's top item;
    users 2, 3: flat ID (MSP ~ 0.19), target = GR's top. The target leads iff a > 1/2 exactly
    when the ID model is right, i.e. iff tau lies between the two MSP levels."""
    conf = [0, 1.0, 0.02, 0.01, 0, 0, 0]
    flat = [0, 0.2, 0.1, 0.05, 0, 0, 0]
    gr = [0, -INF, -INF, -INF, 3, 2, 1]
    ids, grs = np.array([conf, conf, flat, flat]), np.array([gr] * 4)
    return ids, grs, [np.array([], dtype=np.int64)] * 4, np.array([1, 1, 4, 4])


def test_grid_search_prefers_intermediate_tau():
    ids, grs, exclude, targets = adaptive_case()
    msp = max_softmax_prob(ids)
    assert 0.3 < msp[0] < 0.4 and 0.1 < msp[2] < 0.2
    res = grid_search(ids, grs, exclude, targets, top=3)
    half = (1 + 1 / math.log2(3)) / 2  # k = 1: a wrong side by rank 2
    assert res["grid"][0]["ndcg@10"] == pytest.approx(half)
    assert (res["k"], res["tau"], res["ndcg@10"]) == (1, 0.2, 1.0)  # first of the ties
    assert len(res["grid"]) == len(GRID_KS) * len(GRID_TAUS)
    by = {(g["k"], g["tau"]): g["ndcg@10"] for g in res["grid"]}
    for k in GRID_KS:  # tau outside the MSP gap
        assert max(by[k, tau] for tau in (0.0, 0.1, 0.4, 0.5)) < 1.0
        assert by[k, 0.2] == by[k, 0.3] == 1.0
    # each extreme alone is worse: pure ID and pure GR
    for scores in (ids, grs):
        assert grouped_metrics(scores, targets, exclude, ks=(10,))["all"][("ndcg", 10)] < 1


def oracle_normalized(row: np.ndarray, excl: set, top: int) -> dict[int, float]:
    """Literally: the top items, then min-max over them plus a virtual item one mean gap lower."""
    items = sorted(
        (i for i in range(1, len(row)) if np.isfinite(row[i]) and i not in excl),
        key=lambda i: (-row[i], i),
    )[:top]
    if not items:
        return {}
    hi, lo = row[items[0]], row[items[-1]]
    if hi == lo:
        return {i: 1.0 for i in items}
    virtual = lo - (hi - lo) / (len(items) - 1)
    return {i: (row[i] - virtual) / (hi - virtual) for i in items}


scores_st = st.integers(1, 3).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.lists(
                st.one_of(st.integers(-3, 3).map(float), st.just(-INF)), min_size=7, max_size=7
            ),
            min_size=n,
            max_size=n,
        ),
        st.lists(
            st.lists(
                st.one_of(st.integers(-3, 3).map(float), st.just(-INF)), min_size=7, max_size=7
            ),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.lists(st.integers(1, 6), max_size=3), min_size=n, max_size=n),
        st.lists(st.integers(1, 6), min_size=n, max_size=n),
    )
)


@settings(max_examples=80, deadline=None)
@given(scores_st, st.integers(1, 6))
def test_normalised_msp_and_grid_equal_the_definitions(case, top):
    ids, grs = np.array(case[0], dtype=float), np.array(case[1], dtype=float)
    hists, targets = case[2], np.array(case[3])
    exclude = [np.array(h, dtype=np.int64) for h in hists]
    for scores in (ids, grs):
        norm = top_normalized(scores, exclude, top)
        for u, row in enumerate(scores):
            want = oracle_normalized(row, set(hists[u]), top)
            got = {i: norm[u, i] for i in np.flatnonzero(norm[u])}
            assert got.keys() == want.keys()
            assert all(got[i] == pytest.approx(want[i]) for i in want)
    for u, row in enumerate(ids):
        fin = [x for x in row[1:] if np.isfinite(x)]
        want = max(math.exp(x) for x in fin) / sum(math.exp(x) for x in fin) if fin else 0.0
        assert max_softmax_prob(ids)[u] == pytest.approx(want)
    res = grid_search(ids, grs, exclude, targets, ks=(1, 25), taus=(0.0, 0.3), top=top)
    for g in res["grid"]:
        fused = fuse(ids, grs, exclude, g["k"], g["tau"], top)
        assert g["ndcg@10"] == pytest.approx(
            grouped_metrics(fused, targets, exclude, ks=(10,))["all"][("ndcg", 10)]
        )
        for u, items in enumerate(top_k(fused, 6)):  # history never listed
            listed = items[np.isfinite(fused[u, items])]
            assert not set(listed.tolist()) & set(hists[u])
            assert 0 not in listed.tolist()
    assert res["ndcg@10"] == max(g["ndcg@10"] for g in res["grid"])
