"""Semantic neighbours: exact top-k against a brute-force oracle, item text, the embedding cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hoprec.tasks.relations.embeddings as emb
from hoprec.tasks.relations.embeddings import (
    cosine_topk,
    embed_items,
    item_text,
    resolve_model,
    semantic_neighbors,
)


def oracle(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full score matrix, each row sorted by (-score, index), self left out."""
    s = v.astype(np.float64) @ v.astype(np.float64).T
    n = len(v)
    kk = max(0, min(k, n - 1))
    cols = np.broadcast_to(np.arange(n), s.shape)
    order = np.lexsort((cols, -s), axis=1)  # by -score, then index
    idx = np.array(
        [[j for j in row if j != i][:kk] for i, row in enumerate(order)], np.int64
    ).reshape(n, kk)
    return idx, np.take_along_axis(s, idx, axis=1)


@st.composite
def int_vectors(draw) -> np.ndarray:
    """Small-integer vectors: every dot product is exact in float32, so ties are exact ties;
    few distinct values make duplicate rows and tied scores common."""
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 4))
    vals = draw(st.lists(st.integers(-2, 2), min_size=n * d, max_size=n * d))
    return np.array(vals, np.float32).reshape(n, d)


@settings(max_examples=300, deadline=None)
@given(
    v=int_vectors(),
    k=st.integers(0, 45),
    block=st.integers(1, 50),
    sample=st.sampled_from([1, 3, 8192]),
)
def test_cosine_topk_matches_oracle_with_exact_ties(v, k, block, sample):
    old, emb._SAMPLE = emb._SAMPLE, sample  # small samples exercise the bound on small n
    try:
        got, scores = cosine_topk(v, k, block)
    finally:
        emb._SAMPLE = old
    want, want_scores = oracle(v, k)
    assert got.dtype == np.int64 and scores.dtype == np.float32
    assert got.shape == want.shape == (len(v), max(0, min(k, len(v) - 1)))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


@pytest.mark.parametrize("n,k,block", [(300, 10, 64), (301, 7, 1), (2000, 20, 2048), (50, 60, 7)])
def test_cosine_topk_random_unit_vectors(n, k, block):
    """Real-valued scores: equal to the float64 oracle up to rounding (near-ties may swap)."""
    rng = np.random.default_rng(n + k)
    v = rng.standard_normal((n, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    got, scores = cosine_topk(v, k, block)
    _, want_scores = oracle(v, k)
    exact = v.astype(np.float64) @ v.astype(np.float64).T
    assert not (got == np.arange(n)[:, None]).any()
    assert all(len(set(row)) == len(row) for row in got)
    np.testing.assert_allclose(np.take_along_axis(exact, got, axis=1), want_scores, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_identical_vectors_are_neighbours_in_index_order():
    v = np.ones((6, 3), np.float32) / np.sqrt(3)
    got, scores = cosine_topk(v, 3, block=4)
    assert got.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(scores, 1.0, rtol=1e-6)


def test_cosine_topk_rejects_bad_input():
    with pytest.raises(ValueError):
        cosine_topk(np.array([[np.nan, 1.0], [1.0, 0.0]], np.float32), 1)
    with pytest.raises(ValueError):
        cosine_topk(np.ones(3, np.float32), 1)
    assert cosine_topk(np.ones((1, 3), np.float32), 5)[0].shape == (1, 0)


def test_item_text_format():
    assert (
        item_text("Toy Story (1995)", ["Animation", "Comedy"], "A toy cowboy.")
        == "Title: Toy Story (1995); Categories: Animation, Comedy; Description: A toy cowboy."
    )
    assert item_text(None, None, None) == "Title: ; Categories: ; Description: "
    assert item_text("T", [], "x" * 250) == "Title: T; Categories: ; Description: " + "x" * 200
    assert item_text("T", ["A", None], "é" * 201).endswith("Description: " + "é" * 200)
    assert item_text("T", ["A", None], None) == "Title: T; Categories: A; Description: "


class Counting:
    """Deterministic fake encoder (8-d, from the text's hash) that records what it was asked."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        return np.stack([np.random.default_rng(s).standard_normal(8) * 3 for s in seeds])


def _catalogue(con, items: list[tuple], ids: list[str], dataset: str = "toy") -> None:
    con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, 1)", [(dataset, *r) for r in items])
    con.executemany(
        "INSERT INTO item_index VALUES (?, ?, ?)",
        [(dataset, i, n) for n, i in enumerate(ids, start=1)],
    )


ITEMS = [
    ("a", "Alpha", "one", ["X"]),
    ("b", "Beta", None, ["X", "Y"]),
    ("c", "Gamma", "three", None),
    ("d", "Delta", "four", []),
    ("z", "not prepared", None, None),
]


def test_cache_encodes_only_what_is_new(con):
    _catalogue(con, ITEMS, ["a", "b", "c", "d", "e"])  # e: prepared but without metadata
    enc = Counting()
    first = embed_items(con, "toy", "fake", encoder=enc)
    assert (first.n_items, first.n_encoded, first.n_cached, len(enc.texts)) == (5, 5, 0, 5)
    assert first.item_idx.tolist() == [1, 2, 3, 4, 5] and first.item_idx.dtype == np.int32
    assert first.vectors.shape == (5, 8) and first.vectors.dtype == np.float32 and first.dim == 8
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, rtol=1e-6)
    assert "Title: e; Categories: ; Description: " in enc.texts
    assert "Title: Beta; Categories: X, Y; Description: " in enc.texts

    again = embed_items(con, "toy", "fake", encoder=enc)
    assert (again.n_encoded, again.n_cached, len(enc.texts)) == (0, 5, 5)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    # nothing to encode: the default encoder is never built, so an unknown model name is fine
    assert embed_items(con, "toy", "fake").n_encoded == 0

    con.execute("UPDATE items SET title = 'Beta II' WHERE dataset = 'toy' AND item_id = 'b'")
    edited = embed_items(con, "toy", "fake", encoder=enc)
    assert (edited.n_encoded, edited.n_cached) == (1, 4)
    assert enc.texts[5:] == ["Title: Beta II; Categories: X, Y; Description: "]
    np.testing.assert_array_equal(np.delete(edited.vectors, 1, 0), np.delete(first.vectors, 1, 0))

    other = embed_items(con, "toy", "other-model", encoder=enc)
    assert (other.n_encoded, len(enc.texts)) == (5, 11)
    assert con.execute(
        "SELECT count(*), count(DISTINCT model) FROM item_embeddings"
    ).fetchone() == (11, 2)


def test_duplicate_texts_are_encoded_once_and_stay_neighbours(con):
    _catalogue(
        con,
        [("a", "Same", None, None), ("b", "Same", None, None), ("c", "Else", None, None)],
        ["a", "b", "c"],
    )
    enc = Counting()
    table, res = semantic_neighbors(con, "toy", "fake", k=5, encoder=enc)
    assert (res.n_items, res.n_encoded, len(enc.texts)) == (3, 2, 2)
    assert table.schema == pa.schema(
        [("src", pa.int32()), ("dst", pa.int32()), ("score", pa.float32()), ("rank", pa.int32())]
    )
    rows = table.to_pylist()
    assert len(rows) == 6 and [r["rank"] for r in rows] == [1, 2] * 3
    assert all(r["src"] != r["dst"] for r in rows)
    top = {r["src"]: (r["dst"], r["score"]) for r in rows if r["rank"] == 1}
    assert top[1][0] == 2 and top[2][0] == 1 and top[1][1] == pytest.approx(1.0, abs=1e-6)


def test_no_prepared_items_names_the_dataset(con):
    with pytest.raises(ValueError, match="'nope'.*prepare"):
        embed_items(con, "nope", "fake", encoder=Counting())


def test_encoder_with_wrong_shape_is_an_error(con):
    _catalogue(con, ITEMS[:2], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        embed_items(con, "toy", "fake", encoder=lambda texts: np.ones((1, 4)))
    assert con.execute("SELECT count(*) FROM item_embeddings").fetchone()[0] == 0


def test_resolve_model(tmp_path: Path, monkeypatch):
    import hoprec.tasks.data.assets as assets

    folder = tmp_path / "minilm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    monkeypatch.setattr(assets, "pull", lambda name: folder)
    assert resolve_model("all-minilm-l6-v2") == str(folder)
    monkeypatch.setattr(assets, "pull", lambda name: tmp_path)  # not a model folder
    with pytest.raises(ValueError, match="sentence-transformers"):
        resolve_model("ml-100k")
    assert resolve_model(str(folder)) == str(folder)
    assert (
        resolve_model("sentence-transformers/all-mpnet-base-v2")
        == "sentence-transformers/all-mpnet-base-v2"
    )


def test_real_minilm_on_ml100k(con, ml100k_dir, tmp_path):
    """The embedded all-MiniLM-L6-v2, offline, over the 1,349 prepared ml-100k items."""
    from hoprec.tasks.data.assets import pull
    from hoprec.tasks.data.prepare import PrepareParams, prepare
    from tests.helpers import ingest

    assert resolve_model(emb.DEFAULT_MODEL) == str(pull(emb.DEFAULT_MODEL))
    ingest(con, "ml100k", "ml-100k", ml100k_dir)
    prepare(con, "ml100k", PrepareParams(), tmp_path)
    table, res = semantic_neighbors(con, "ml100k", k=5)
    assert res.vectors.shape == (1349, 384) and res.n_items == 1349
    assert res.n_cached == 0 and res.n_encoded > 1300  # a few titles repeat with their genres
    np.testing.assert_allclose(np.linalg.norm(res.vectors, axis=1), 1.0, rtol=1e-5)
    assert table.num_rows == 1349 * 5
    assert embed_items(con, "ml100k").n_encoded == 0


def test_cosine_topk_of_some_rows_equals_those_rows_of_all():
    rng = np.random.default_rng(5)
    v = rng.normal(size=(300, 16)).astype(np.float32)
    v[7] = v[3]  # a duplicate: still each other's neighbour, self excluded by index
    rows = np.array([3, 7, 299, 0])
    all_n, all_s = cosine_topk(v, 40, block=64)
    some_n, some_s = cosine_topk(v, 40, block=2, rows=rows)
    assert np.array_equal(some_n, all_n[rows]) and np.allclose(some_s, all_s[rows])
    assert 7 in some_n[0] and 3 not in some_n[0]
