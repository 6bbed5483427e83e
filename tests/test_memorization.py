"""Memorization diagnostics: MemGen instance categories, IIRG's C(u) and SID-prefix
memorization, by hand and against literal oracles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from hoprec.tasks.evaluation.memorization import (
    categorize,
    category_masks,
    last_items,
    memorization_rate,
    memorization_split,
    prefix_memorization,
    prefix_memorized,
    successor_candidates,
    transitions_from_sequences,
)

# training: user 1 = [1, 2, 3], user 2 = [4, 5]
USERS = np.array([1, 1, 1, 2, 2])
ITEMS = np.array([1, 2, 3, 4, 5])


def test_categories_by_hand():
    cases = [
        ([7, 1], 2, "memorization", 0),  # 1 -> 2 is a training transition
        ([1, 9], 3, "substitutability", 2),  # 1 then 3 within 2 positions
        ([2], 1, "symmetry", 1),  # 1 then 2: the target came first
        ([1], 3, "transitivity", 1),  # 1 -> 2 -> 3
        ([3], 1, "second-order symmetry", 1),  # v=1 -> 2 -> u=3
        ([5], 2, "uncategorized", 0),
    ]
    labels, hops = categorize(
        [np.array(h) for h, *_ in cases], np.array([c[1] for c in cases]), USERS, ITEMS, n_items=9
    )
    assert labels == [c[2] for c in cases] and hops == [c[3] for c in cases]
    masks = category_masks(labels)
    assert masks["memorization"].tolist() == [True, False, False, False, False, False]
    assert "uncategorized" in masks


def test_second_order_variants_and_smallest_hop():
    # training: 6 -> 7, 8 -> 7 (v -> x <- u), 9 -> 10, 9 -> 11 (v <- x -> u)
    users = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    items = np.array([6, 7, 8, 7, 9, 10, 9, 11])
    labels, hops = categorize(
        [np.array([8]), np.array([11]), np.array([8, 12])],
        np.array([6, 10, 6]),
        users,
        items,
        n_items=12,
    )
    assert labels == ["second-order symmetry", "second-order symmetry", "second-order symmetry"]
    assert hops == [1, 1, 2]


def oracle(histories, targets, seqs, max_hop=4):
    """The definitions, literally, with Python sets."""
    within = {
        h: {
            (s[i], s[j])
            for s in seqs
            for i in range(len(s))
            for j in range(i + 1, min(len(s), i + h + 1))
            if s[i] != s[j]
        }
        for h in range(1, max_hop + 1)
    }
    edge = within[1]
    nodes = {x for s in seqs for x in s}
    out = []
    for hist, v in zip(histories, targets):
        if hist and (hist[-1], v) in edge:
            out.append(("memorization", 0))
            continue
        label = ("uncategorized", 0)
        for h in range(1, max_hop + 1):
            us = hist[-h:]
            tests = [
                ("substitutability", h >= 2 and any((u, v) in within[h] for u in us)),
                ("symmetry", any((v, u) in within[h] for u in us)),
                ("transitivity", any((u, x) in edge and (x, v) in edge for u in us for x in nodes)),
                (
                    "second-order symmetry",
                    any(
                        ((v, x) in edge and (x, u) in edge)
                        or ((v, x) in edge and (u, x) in edge)
                        or ((x, v) in edge and (x, u) in edge)
                        for u in us
                        for x in nodes
                    ),
                ),
            ]
            hit = next((name for name, ok in tests if ok), None)
            if hit:
                label = (hit, h)
                break
        out.append(label)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=8), min_size=1, max_size=6),
    st.lists(
        st.tuples(st.lists(st.integers(1, 8), max_size=6), st.integers(1, 8)),
        min_size=1,
        max_size=6,
    ),
)
def test_vectorized_categories_equal_the_definitions(seqs, instances):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [h for h, _ in instances]
    targets = np.array([t for _, t in instances])
    labels, hops = categorize(
        [np.array(h, dtype=np.int64) for h in hists], targets, users, items, 8
    )
    assert list(zip(labels, hops)) == oracle(hists, targets, seqs)


# --- IIRG's one-hop analysis: C(u), groups, memorization rate ---------------------------------
N = 5
# transitions: 1->2 (3 times), 1->3 (1), 2->3 (2), 4->5 (1)
T = sp.csr_matrix(
    (np.array([3.0, 1, 2, 1]), (np.array([1, 1, 2, 4]), np.array([2, 3, 3, 5]))),
    shape=(N + 1, N + 1),
)
POP = np.array([0, 4.0, 3, 5, 1, 2])


def test_successor_candidates_and_groups():
    cands = successor_candidates([np.array([1, 2]), np.array([4])], T, size=2)
    assert [c.tolist() for c in cands] == [[2, 3], [5]]  # 2 and 3 tie at 3: index order
    assert memorization_split(cands, np.array([2, 1])).tolist() == [True, False]
    lists = np.array([[3, 1, 4, 5, 2], [1, 2, 3, 4, 5]])
    assert memorization_rate(cands, lists, k=5) == pytest.approx((2 / 5 + 1 / 5) / 2)


# --- token-level prefix memorization ---------------------------------------------------------

# items 1..5 with 3-code SIDs
CODES = np.array(
    [
        [9, 9, 9],
        [0, 0, 0],  # 1
        [0, 0, 1],  # 2
        [0, 1, 0],  # 3
        [1, 0, 0],  # 4
        [1, 1, 1],
    ]
)  # 5


def test_transitions_from_sequences():
    src, dst = transitions_from_sequences([np.array([1, 2, 2, 3]), np.array([4]), np.array([])])
    assert src.tolist() == [1, 2] and dst.tolist() == [2, 3]  # 2 -> 2 dropped
    src, dst = transitions_from_sequences([np.array([1, 1])], self_loops=True)
    assert src.tolist() == [1] and dst.tolist() == [1]
    assert last_items([np.array([3, 4]), np.array([])]).tolist() == [4, 0]


def test_prefix_memorization_by_hand():
    src, dst = transitions_from_sequences([np.array([1, 4])])  # 000 -> 100
    last = np.array([1, 2, 3, 2, 0])
    targets = np.array([4, 4, 5, 1, 4])
    memo = prefix_memorization(last, targets, src, dst, CODES)
    assert memo[1].tolist() == [True, True, True, False, False]  # 0.. -> 1.. ; empty: no
    assert memo[2].tolist() == [True, True, False, False, False]  # 00 -> 10
    assert memo[3].tolist() == [True, False, False, False, False]  # item level
    assert prefix_memorization(last, targets, src, dst, CODES, max_n=2).keys() == {1, 2}
    with pytest.raises(ValueError):
        prefix_memorized(last, targets, src, dst, CODES, 4)


def oracle_prefix(last, targets, seqs, codes, n):
    pairs = {
        (tuple(codes[a][:n]), tuple(codes[b][:n]))
        for s in seqs
        for a, b in itertools.pairwise(s)
        if a != b
    }
    return [
        bool(u > 0 and (tuple(codes[u][:n]), tuple(codes[v][:n])) in pairs)
        for u, v in zip(last, targets)
    ]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda m: st.tuples(
            st.lists(
                st.lists(st.integers(0, 2), min_size=3, max_size=3), min_size=m + 1, max_size=m + 1
            ),
            st.lists(st.lists(st.integers(1, m), max_size=6), max_size=5),
            st.lists(st.tuples(st.integers(0, m), st.integers(1, m)), min_size=1, max_size=8),
        )
    )
)
def test_prefix_memorization_equals_the_definition(case):
    codes, seqs, inst = np.array(case[0]), case[1], case[2]
    last, targets = np.array([i[0] for i in inst]), np.array([i[1] for i in inst])
    src, dst = transitions_from_sequences([np.array(s, dtype=np.int64) for s in seqs])
    memo = prefix_memorization(last, targets, src, dst, codes)
    assert sorted(memo) == [1, 2, 3]
    for n in (1, 2, 3):
        assert memo[n].tolist() == oracle_prefix(last, targets, seqs, codes, n)
        if n > 1:
            assert not (memo[n] & ~memo[n - 1]).any()  # monotone in n


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=6), min_size=1, max_size=5),
    st.lists(
        st.tuples(st.lists(st.integers(1, 5), max_size=4), st.integers(1, 5)),
        min_size=1,
        max_size=6,
    ),
)
def test_full_prefix_is_item_level_memorization(seqs, instances):
    """Unique SIDs: n = L agrees with memgen's memorization label."""
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [np.array(h, dtype=np.int64) for h, _ in instances]
    targets = np.array([t for _, t in instances])
    labels, _ = categorize(hists, targets, users, items, 5)
    src, dst = transitions_from_sequences([np.array(s) for s in seqs])
    memo = prefix_memorized(last_items(hists), targets, src, dst, CODES, 3)
    assert memo.tolist() == [lab == "memorization" for lab in labels]
