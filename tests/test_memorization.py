"""Memorization diagnostics: MemGen instance categories, IIRG's C(u) and SID-prefix
memorization, by hand and against literal oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from memgen_port import FineGrainedEvaluator, PrefixGramMemorizationEvaluator

from hoprec.tasks.evaluation.memorization import (
    categorize,
    category_masks,
    label_masks,
    memgen_labels,
    memorization_rate,
    memorization_split,
    prefix_hops,
    prefix_memorization,
    primary,
    successor_candidates,
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
    hists = [np.array(h) for h, *_ in cases]
    targets = np.array([c[1] for c in cases])
    labels, hops = categorize(hists, targets, USERS, ITEMS, n_items=9)
    assert labels == [c[2] for c in cases] and hops == [c[3] for c in cases]
    masks = category_masks(labels)
    assert masks["memorization"].tolist() == [True, False, False, False, False, False]
    assert "uncategorized" in masks
    multi = memgen_labels(hists, targets, USERS, ITEMS, n_items=9)
    # [1, 9] -> 3 carries two labels: 1 then 3 within 2, and 1 -> 2 -> 3 composed within 2
    assert multi[1] == {"substitutability": 2, "transitivity": 2}
    assert label_masks(multi)["transitivity_2"].tolist() == [0, 1, 0, 0, 0, 0]


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


def test_transitivity_composes_within_hop_relations():
    # training 1, 5, 2 and 2, 6, 3: 1 -> 2 and 2 -> 3 only within 2 positions, so 1 ~> 3 is
    # transitivity at hop 2 (MemGen's code), which one-hop transitions alone never find
    users, items = np.array([1, 1, 1, 2, 2, 2]), np.array([1, 5, 2, 2, 6, 3])
    [labels] = memgen_labels([np.array([1, 9])], np.array([3]), users, items, n_items=9)
    assert labels == {"transitivity": 2}
    assert memgen_labels([np.array([], np.int64)], np.array([3]), users, items, 9) == [{}]
    assert primary({}) == ("uncategorized", 0)


def _memgen_format(labels: dict[str, int]) -> set[str]:
    """hoprec's labels in MemGen's spelling: pattern_hop, plus its master labels."""
    if not labels:
        return set()
    if "memorization" in labels or "uncategorized" in labels:
        return set(labels)
    names = {"second-order symmetry": "2nd-symmetry"}
    return {f"{names.get(p, p)}_{h}" for p, h in labels.items()} | {"generalization"}


sequences = st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=8), min_size=1, max_size=6)
instances = st.lists(
    st.tuples(st.lists(st.integers(1, 8), max_size=6), st.integers(1, 8)), min_size=1, max_size=8
)


@settings(max_examples=80, deadline=None)
@given(sequences, instances)
def test_memgen_labels_equal_memgens_own_code(seqs, cases):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [np.array(h, dtype=np.int64) for h, _ in cases]
    targets = np.array([t for _, t in cases])
    ours = memgen_labels(hists, targets, users, items, 8)
    port = FineGrainedEvaluator(seqs)
    assert [_memgen_format(o) for o in ours] == [port.get_case_labels([*h, t]) for h, t in cases]


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
# SID codes of items 1..8 (row 0 is padding): unique, with shared prefixes
CODES = np.array(
    [
        [9, 9, 9],
        [0, 0, 0],  # 1
        [0, 0, 1],  # 2
        [0, 1, 0],  # 3
        [1, 0, 0],  # 4
        [1, 1, 1],  # 5
        [1, 0, 1],  # 6
        [0, 1, 1],  # 7
        [1, 1, 0],  # 8
    ]
)


def test_prefix_hops_by_hand():
    # training 1, 8, 4 = 000, 110, 100: 00 -> 10 and 000 -> 100 only at distance 2
    users, items = np.array([1, 1, 1]), np.array([1, 8, 4])
    hists = [np.array([2]), np.array([1, 7]), np.array([3]), np.array([], np.int64)]
    targets = np.array([4, 4, 4, 4])
    assert prefix_hops(hists, targets, users, items, CODES, 1).tolist() == [1, 1, 1, 0]
    # 001 -> 100 shares 00 -> 10 only at distance 2, so hop 2 though 2 is the last item
    assert prefix_hops(hists, targets, users, items, CODES, 2).tolist() == [2, 2, 0, 0]
    assert prefix_hops(hists, targets, users, items, CODES, 3).tolist() == [0, 2, 0, 0]
    masks = prefix_memorization(hists, targets, users, items, CODES)
    assert masks["2-gram h2"].tolist() == [True, True, False, False]
    assert masks["2-gram unseen"].tolist() == [False, False, True, True]
    assert masks["3-gram h2"].tolist() == [False, True, False, False]
    with pytest.raises(ValueError):
        prefix_hops(hists, targets, users, items, CODES, 4)


@settings(max_examples=80, deadline=None)
@given(sequences, instances, st.integers(1, 3))
def test_prefix_hops_equal_memgens_own_code(seqs, cases, n):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [np.array(h, dtype=np.int64) for h, _ in cases]
    targets = np.array([t for _, t in cases])
    ours = prefix_hops(hists, targets, users, items, CODES, n)
    port = PrefixGramMemorizationEvaluator(
        seqs, {i: tuple(CODES[i]) for i in range(1, len(CODES))}, prefix_length=n
    )
    expected = []
    for h, t in cases:
        labels = port.get_case_labels([*h, t])
        hop = [int(x.split("_")[1]) for x in labels if x.startswith("memorization_")]
        expected.append(hop[0] if hop else 0)  # unseen, or no label (empty history)
    assert ours.tolist() == expected


@settings(max_examples=40, deadline=None)
@given(sequences, instances)
def test_full_prefix_at_hop_one_is_item_level_memorization(seqs, cases):
    """SIDs are unique, so the whole-SID prefix at hop 1 is MemGen's item memorization."""
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [np.array(h, dtype=np.int64) for h, _ in cases]
    targets = np.array([t for _, t in cases])
    labels, _ = categorize(hists, targets, users, items, 8)
    hops = prefix_hops(hists, targets, users, items, CODES, 3)
    assert (hops == 1).tolist() == [lab == "memorization" for lab in labels]
