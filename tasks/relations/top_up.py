"""IIRG's top-up of short collaborative lists (`common_step2_neighbor_builder.py`): an item with
fewer than K co-occurrence neighbours borrows the neighbours of its semantic neighbours, searched
up to a depth (IIRG: 500), in (semantic rank, borrowed rank) order, skipping itself and items it
has. Two ways, both exact:

- `chained` (default; IIRG's code): items are visited in index order and lists are updated in
  place, so an item can borrow a list that was itself topped up before it.
- `independent`: every item borrows from the lists as counted, so the result does not depend on
  item order or numbering (an option for catalogues whose ids carry no meaning).

The search runs only for the items that need it: their semantic neighbours come from the cached
item embeddings, exactly (cosine over the whole catalogue), at the requested depth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from ..data.warehouse import run

MODES = ("chained", "independent")


def top_up_lists(
    collab: Mapping[int, Sequence[int]],
    semantic: Mapping[int, Sequence[int]],
    items: Sequence[int],
    k: int,
    mode: str = "chained",
) -> dict[int, list[tuple[int, int]]]:
    """{item: [(borrowed neighbour, the semantic neighbour it came via), ...]} for every item of
    `items` (visited in the given order) with fewer than k neighbours in `collab`."""
    if mode not in MODES:
        raise ValueError(f"top-up mode must be one of {MODES}, got {mode!r}")
    lists = {i: list(v) for i, v in collab.items()}
    frozen = {i: tuple(v) for i, v in collab.items()}
    added: dict[int, list[tuple[int, int]]] = {}
    for item in items:
        cop = lists.setdefault(item, [])
        if len(cop) >= k:
            continue
        existing = set(cop) | {item}
        for via in semantic.get(item, ()):
            if len(cop) >= k:
                break
            for nb in lists.get(via, ()) if mode == "chained" else frozen.get(via, ()):
                if nb not in existing:
                    cop.append(nb)
                    existing.add(nb)
                    added.setdefault(item, []).append((nb, via))
                if len(cop) >= k:
                    break
    return added


def top_up_table(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    model: str,
    k: int,
    depth: int,
    mode: str,
) -> pa.Table:
    """Rows (src, dst, via, rank) that top up `rel_ranked`, the counted and ranked pairs."""
    from .embeddings import cosine_topk, embed_items

    ranked = run(con, "relations/ranked_lists").fetchall()
    collab = {int(src): [int(d) for d in dsts] for src, dsts in ranked}
    items = [int(i) for (i,) in run(con, "relations/catalogue", {"dataset": dataset}).fetchall()]
    need = [i for i in items if len(collab.get(i, ())) < k]
    semantic: dict[int, list[int]] = {}
    if need:
        emb = embed_items(con, dataset, model)
        position = {int(i): p for p, i in enumerate(emb.item_idx.tolist())}
        query = np.array([position[i] for i in need], dtype=np.int64)
        nbrs, _ = cosine_topk(emb.vectors, depth, rows=query)
        semantic = {i: emb.item_idx[nbrs[r]].tolist() for r, i in enumerate(need)}
    added = top_up_lists(collab, semantic, items, k, mode)
    rows = [
        (item, nb, v, r)
        for item, borrowed in added.items()
        for r, (nb, v) in enumerate(borrowed, start=len(collab.get(item, ())) + 1)
    ]
    columns = list(zip(*rows)) if rows else [(), (), (), ()]
    names = ("src", "dst", "via", "rank")
    return pa.table({n: pa.array(c, pa.int32()) for n, c in zip(names, columns)})
