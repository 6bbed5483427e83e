"""A literal port of IIRG's top-up of short co-purchase lists, as a test oracle.

Source: github.com/snap-research/IIRG, `common_step2_neighbor_builder.py` (the backfill loop
after the semantic neighbours are built). Same loop, same in-place updates; `independent` is
hoprec's order-independent option: the same loop borrowing from the lists as first counted.
"""

from __future__ import annotations

import copy
import re


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


# --------------------------------------------------------------------------------------------
# IIRG's SID parsing of unconstrained generations, as a test oracle.
#
# Source: github.com/snap-research/IIRG, `sid_based/step10_sid_metric_calculation.py`
# (`parse_codebook_tokens`, `get_iid_by_codebook_tid`, `get_top_k_items_by_frequency`, and the
# list building of `process_generation_outputs`). Same loops; the only change is the SID length:
# IIRG's SIDs have 3 tokens `<a_X><b_Y><c_Z>`, hoprec's have `levels` (`[abc]` and the 3s become
# the first `levels` letters and `levels`). `seen_iids` is the user's history.


def parse_codebook_tokens(content, levels=3):
    letters = "".join(chr(ord("a") + i) for i in range(levels))
    tokens = re.findall(r"<([" + letters + r"]_\d+)>", content)
    if len(tokens) >= levels:
        triplets = []
        for i in range(0, len(tokens) - (levels - 1), levels):
            triplet = tokens[i : i + levels]
            if all(triplet[j].startswith(letters[j] + "_") for j in range(levels)):
                triplets.append(triplet)
        return triplets
    return []


def get_iid_by_codebook_tid(triplet, tid2item_id):
    tid_key = ",".join(triplet)
    if tid_key in tid2item_id:
        return tid2item_id[tid_key]
    return []


def get_top_k_items_by_frequency(iid_list, item_freq, k=10):
    iid_freq_list = [(iid, item_freq.get(iid, 0)) for iid in iid_list]
    iid_freq_list.sort(key=lambda x: x[1], reverse=True)
    return [iid for iid, _ in iid_freq_list[:k]]


def process_generation_output(raw_contents, seen_iids, tid2item_id, item_freq, levels=3):
    all_triplets = []
    for raw_content in raw_contents:
        triplets = parse_codebook_tokens(raw_content, levels)
        for triplet in triplets:
            if triplet not in all_triplets:
                all_triplets.append(triplet)
    iids = []
    for triplet in all_triplets:
        candidate_iids = get_iid_by_codebook_tid(triplet, tid2item_id)
        if seen_iids:
            candidate_iids = [iid for iid in candidate_iids if iid not in seen_iids]
        top_iids = get_top_k_items_by_frequency(candidate_iids, item_freq, k=1)
        iids.extend(top_iids)
    ids = []
    for i in iids:
        if i not in ids:
            ids.append(i)
    iids = ids[:20]
    if len(iids) < 20:
        for triplet in all_triplets:
            candidate_iids = get_iid_by_codebook_tid(triplet, tid2item_id)
            if seen_iids:
                candidate_iids = [iid for iid in candidate_iids if iid not in seen_iids]
            for iid in candidate_iids:
                if iid not in iids:
                    iids.append(iid)
                if len(iids) >= 20:
                    break
            if len(iids) >= 20:
                break
    return iids[:20]
