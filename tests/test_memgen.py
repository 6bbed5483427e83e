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
