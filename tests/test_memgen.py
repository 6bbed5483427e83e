"""MemGen instance categories on hand-made training sequences."""
from __future__ import annotations

import numpy as np

from tasks.memgen import categorize, category_masks

# training: user 1 = [1, 2, 3], user 2 = [4, 5]
USERS = np.array([1, 1, 1, 2, 2])
ITEMS = np.array([1, 2, 3, 4, 5])


def test_categories_by_hand():
    cases = [([7, 1], 2, "memorization", 0),          # 1 -> 2 is a training transition
             ([1, 9], 3, "substitutability", 2),      # 1 then 3 within 2 positions
             ([2], 1, "symmetry", 1),                 # 1 then 2: the target came first
             ([1], 3, "transitivity", 1),             # 1 -> 2 -> 3
             ([3], 1, "second-order symmetry", 1),    # v=1 -> 2 -> u=3
             ([5], 2, "uncategorized", 0)]
    labels, hops = categorize([np.array(h) for h, *_ in cases], np.array([c[1] for c in cases]),
                              USERS, ITEMS, n_items=9)
    assert labels == [c[2] for c in cases] and hops == [c[3] for c in cases]
    masks = category_masks(labels)
    assert masks["memorization"].tolist() == [True, False, False, False, False, False]
    assert "uncategorized" in masks


def test_second_order_variants_and_smallest_hop():
    # training: 6 -> 7, 8 -> 7 (v -> x <- u), 9 -> 10, 9 -> 11 (v <- x -> u)
    users = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    items = np.array([6, 7, 8, 7, 9, 10, 9, 11])
    labels, hops = categorize([np.array([8]), np.array([11]), np.array([8, 12])],
                              np.array([6, 10, 6]), users, items, n_items=12)
    assert labels == ["second-order symmetry", "second-order symmetry", "second-order symmetry"]
    assert hops == [1, 1, 2]


def oracle(histories, targets, seqs, max_hop=4):
    """The definitions, literally, with Python sets."""
    within = {h: {(s[i], s[j]) for s in seqs for i in range(len(s))
                  for j in range(i + 1, min(len(s), i + h + 1)) if s[i] != s[j]}
              for h in range(1, max_hop + 1)}
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
            tests = [("substitutability", h >= 2 and any((u, v) in within[h] for u in us)),
                     ("symmetry", any((v, u) in within[h] for u in us)),
                     ("transitivity", any((u, x) in edge and (x, v) in edge for u in us for x in nodes)),
                     ("second-order symmetry", any(
                         ((v, x) in edge and (x, u) in edge) or ((v, x) in edge and (u, x) in edge)
                         or ((x, v) in edge and (x, u) in edge) for u in us for x in nodes))]
            hit = next((name for name, ok in tests if ok), None)
            if hit:
                label = (hit, h)
                break
        out.append(label)
    return out


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=8), min_size=1, max_size=6),
       st.lists(st.tuples(st.lists(st.integers(1, 8), max_size=6), st.integers(1, 8)),
                min_size=1, max_size=6))
def test_vectorized_categories_equal_the_definitions(seqs, instances):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(seqs)])
    items = np.concatenate([np.array(s) for s in seqs])
    hists = [h for h, _ in instances]
    targets = np.array([t for _, t in instances])
    labels, hops = categorize([np.array(h, dtype=np.int64) for h in hists], targets, users, items, 8)
    assert list(zip(labels, hops)) == oracle(hists, targets, seqs)
