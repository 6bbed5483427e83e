"""A literal port of IIRG's top-up of short co-purchase lists, as a test oracle.

Source: github.com/snap-research/IIRG, `common_step2_neighbor_builder.py` (the backfill loop
after the semantic neighbours are built). Same loop, same in-place updates; `independent` is
hoprec's order-independent option: the same loop borrowing from the lists as first counted.
"""

from __future__ import annotations

import copy


def backfill(copurchase_neighbors, semantic_neighbors, num_items, topk, independent=False):
    copurchase_neighbors = copy.deepcopy(copurchase_neighbors)
    source = copy.deepcopy(copurchase_neighbors) if independent else copurchase_neighbors
    for item_id in range(1, num_items + 1):
        cop = copurchase_neighbors.get(item_id, [])
        if len(cop) >= topk:
            continue
        sem = semantic_neighbors.get(item_id, [])
        existing = set(cop) | {item_id}
        for sem_nb in sem:
            if len(cop) >= topk:
                break
            sem_nb_cop = source.get(sem_nb, [])
            for nb in sem_nb_cop:
                if nb not in existing:
                    cop.append(nb)
                    existing.add(nb)
                if len(cop) >= topk:
                    break
        copurchase_neighbors[item_id] = cop
    return copurchase_neighbors
