"""Approximate semantic neighbours: recall against exact, "auto" below the switch point, and the
relations flow's `index` option reaching `semantic_neighbors`."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import prepare_ml100k

import hoprec.tasks.relations.embeddings as emb
from hoprec.tasks import defaults
from hoprec.tasks.relations.ann import ANN_MIN_ITEMS, resolve_index
from hoprec.tasks.relations.embeddings import cosine_topk, semantic_topk


def clustered(n: int, d: int, seed: int, clusters: int = 64) -> np.ndarray:
    """Seeded random unit vectors around random centres (embeddings are clustered, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    v = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / want.shape[1] for a, b in zip(got, want)]))


@pytest.mark.parametrize("n,d", [(3000, 384), (5000, 32)])
def test_ann_recall_at_10_against_exact(n, d):
    v = clustered(n, d, seed=n)
    want, want_scores = cosine_topk(v, 10)
    got, scores = semantic_topk(v, 10, "ann")
    assert got.shape == want.shape and got.dtype == np.int64 and scores.dtype == np.float32
    assert recall(got, want) >= 0.99
    assert not (got == np.arange(n)[:, None]).any()  # never its own neighbour
    assert all(len(set(row)) == len(row) for row in got)
    # scores are the true cosines of the neighbours found, best first
    np.testing.assert_allclose(scores, np.einsum("nkd,nd->nk", v[got], v), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    again = semantic_topk(v, 10, "ann")  # deterministic for fixed vectors and settings
    np.testing.assert_array_equal(again[0], got)
    np.testing.assert_array_equal(again[1], scores)


def test_ann_keeps_duplicates_and_orders_ties_by_index():
    """As the exact path: self is left out by index, so an identical vector stays a neighbour,
    and equal scores come in index order."""
    v = clustered(2000, 16, seed=1)
    v[[10, 500, 1500]] = v[700]
    got, scores = semantic_topk(v, 5, "ann")
    assert got[700, :3].tolist() == [10, 500, 1500] and got[10, :3].tolist() == [500, 700, 1500]
    np.testing.assert_allclose(scores[700, :3], 1.0, atol=1e-6)


def test_auto_is_exact_below_the_switch_point():
    assert resolve_index("auto", defaults.ANN_SWITCH_ITEMS - 1) == "exact"
    assert resolve_index("auto", defaults.ANN_SWITCH_ITEMS) == "ann"
    assert resolve_index("ann", ANN_MIN_ITEMS - 1) == "exact"  # too small to index
    assert resolve_index("exact", 10**7) == "exact"
    with pytest.raises(ValueError, match="index must be one of"):
        resolve_index("hnsw", 10)
    v = clustered(3000, 32, seed=2)
    for a, b in zip(semantic_topk(v, 10, "auto"), cosine_topk(v, 10)):
        np.testing.assert_array_equal(a, b)


def test_index_option_reaches_the_flow(tmp_path, ml100k_dir, prefect_api, monkeypatch):
    from hoprec.flows.cli import build_parser
    from hoprec.flows.relations import relations_flow
    from hoprec.tasks.data.warehouse import connect

    args = build_parser().parse_args(["relations", "--dataset", "ml100k", "--index", "ann"])
    assert args.index == "ann"
    assert "index" not in vars(build_parser().parse_args(["relations", "--dataset", "ml100k"]))

    wh = tmp_path / "wh.duckdb"
    with connect(wh) as con:
        prepare_ml100k(con, ml100k_dir, tmp_path / "prep")
        rng = np.random.default_rng(0)  # cache fake vectors: the flow then encodes nothing
        emb.embed_items(con, "ml100k", "fake", encoder=lambda t: rng.random((len(t), 24)))
    seen: list[str] = []
    real = emb.semantic_topk

    def spy(vectors: np.ndarray, k: int, index: str = "auto", block: int = 2048):
        seen.append(index)
        return real(vectors, k, index, block)

    monkeypatch.setattr(emb, "semantic_topk", spy)
    common = dict(dataset="ml100k", warehouse=str(wh), kinds=["semantic"], model="fake")
    exact = relations_flow(**common)
    ann = relations_flow(**common, index="ann", top_k=5)  # new params: no cache hit
    assert seen == [defaults.SEMANTIC_INDEX, "ann"]
    # the index is part of the snapshot's params: asking for another one recomputes, and
    # --force recomputes the same request (it used to fail on a half-read result)
    assert relations_flow(**common, index="exact")["snapshots"][0]["status"] == "computed"
    again = relations_flow(**common, index="ann", top_k=5, force=True)
    assert again["snapshots"][0]["status"] == "computed" and seen[-2:] == ["exact", "ann"]
    assert "search ann" in ann["report"]
    assert exact["snapshots"][0]["rows"] == 1349 * 10 and ann["snapshots"][0]["rows"] == 1349 * 5
    with connect(wh) as con:
        n_items = con.execute(
            "SELECT count(DISTINCT src), count(*) FILTER (WHERE src = dst) FROM semantic_neighbors"
            " WHERE snapshot_id = ?",
            [again["snapshots"][0]["snapshot_id"]],
        ).fetchone()
    assert n_items == (1349, 0)
