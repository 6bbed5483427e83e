"""Semantic IDs: unique and stable SIDs, cache hits, incremental items, diagnostics by hand."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pyarrow as pa
import pytest
from helpers import prepare_ml100k, write_sequences

import hoprec.tasks.sids.versions as sids_mod
from hoprec.tasks.data.warehouse import connect
from hoprec.tasks.relations.embeddings import embed_items
from hoprec.tasks.sids.rq import diagnostics, disambiguate, effective_codebook, encode, rq_kmeans
from hoprec.tasks.sids.store import all_sid_tokens, load_codebooks, load_sids, sid_tokens
from hoprec.tasks.sids.versions import (
    SidParams,
    as_record,
    assign_new_items,
    build_sids,
    sid_provenance,
    sids_report,
)

MODEL = "fake-sid"
SID = re.compile(r"^<a_(\d+)><b_(\d+)><c_(\d+)><d_(\d+)>$")


def _unit(seed: bytes, dim: int) -> np.ndarray:
    v = np.random.default_rng(int.from_bytes(hashlib.sha256(seed).digest()[:8], "little"))
    return v.standard_normal(dim)


def fake_encoder(texts: list[str]) -> np.ndarray:
    """16-d vectors with structure: the categories part decides the direction, the rest adds a
    little noise; equal texts give equal vectors (so collisions are certain)."""
    out = []
    for t in texts:
        cats = t.split("; Categories: ")[1].split(";")[0] if "; Categories: " in t else ""
        out.append(_unit(cats.encode(), 16) + 0.4 * _unit(t.encode(), 16))
    return np.array(out, np.float32)


def codes_of(sid: str) -> list[int]:
    m = SID.match(sid)
    assert m, sid
    return [int(g) for g in m.groups()]


@pytest.fixture(scope="module")
def ml_wh(tmp_path_factory, ml100k_dir) -> str:
    """Prepared ml-100k with a built SID version (fake encoder)."""
    path = tmp_path_factory.mktemp("mlsid") / "wh.duckdb"
    with connect(path) as con:
        prepare_ml100k(con, ml100k_dir, tmp_path_factory.mktemp("prep"))
        build_sids(con, "ml100k", SidParams(model=MODEL), encoder=fake_encoder)
    return str(path)


# --- pure parts ------------------------------------------------------------------------------
def test_sid_tokens():
    assert sid_tokens([12, 7, 201, 0]) == "<a_12><b_7><c_201><d_0>"
    assert sid_tokens(np.array([3, 1], np.int32)) == "<a_3><b_1>"


@pytest.mark.parametrize(
    "n,levels,codebook,want",
    [
        (1, 3, 256, 1),
        (2, 3, 256, 2),
        (5, 3, 256, 5),
        (8, 3, 256, 8),
        (9, 3, 256, 9),
        (27, 3, 256, 12),
        (28, 3, 256, 16),
        (1349, 3, 256, 48),
        (12_000, 3, 256, 92),
        (250_047, 3, 256, 252),
        (250_048, 3, 256, 256),
        (10**7, 3, 256, 256),
        (1349, 3, 32, 32),
        (1349, 2, 256, 148),
        (100, 1, 256, 100),
    ],
)
def test_codebook_shrinks_for_small_catalogues(n, levels, codebook, want):
    assert effective_codebook(n, levels, codebook) == want
    assert effective_codebook(n, levels, codebook, shrink=False) == min(codebook, n)


def test_diagnostics_by_hand():
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 2], [1, 2], [1, 2]])
    d = diagnostics(codes, sizes=[2, 4])
    assert d["collision_rate"] == pytest.approx(5 / 6)
    assert (d["largest_bucket"], d["colliding_items"], d["items_with_d_gt0"]) == (3, 5, 3)
    assert d["distinct_codes"] == 3 and d["bucket_sizes"] == {"1": 1, "2": 1, "3": 1}
    a, b = d["per_level"]
    assert (a["used"], a["use"], a["entropy_bits"], a["entropy_norm"]) == (2, 1.0, 1.0, 1.0)
    h = -(2 / 6 * math.log2(2 / 6) + 1 / 6 * math.log2(1 / 6) + 3 / 6 * math.log2(3 / 6))
    assert (b["used"], b["use"], b["largest_code"], b["prefixes"]) == (3, 0.75, 3, 3)
    assert b["entropy_bits"] == pytest.approx(h) and b["entropy_norm"] == pytest.approx(h / 2)
    one = diagnostics(np.zeros((4, 1), int), sizes=[1])
    assert one["collision_rate"] == 1.0 and one["per_level"][0]["entropy_norm"] == 1.0


def test_disambiguation_counts_in_row_order_and_continues_after_taken_codes():
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 1]])
    assert disambiguate(codes).tolist() == [0, 0, 1, 2, 0]
    assert disambiguate(codes, {(1, 2): 4, (9, 9): 1}).tolist() == [4, 0, 5, 6, 0]


def test_kmeans_runs_on_one_thread(monkeypatch):
    """More than one OpenMP thread sums centroids in lock order: results could differ run to run."""
    from threadpoolctl import threadpool_info

    import hoprec.tasks.sids.rq as rq

    seen = []
    real = rq.KMeans.fit

    def fit(self, *a, **kw):
        seen.extend(lib["num_threads"] for lib in threadpool_info())
        return real(self, *a, **kw)

    monkeypatch.setattr(rq.KMeans, "fit", fit)
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    books, codes, mse = rq_kmeans(x, 2, 16, seed=0, n_init=2)
    assert seen and set(seen) == {1}
    assert [len(b) for b in books] == [16, 16] and codes.shape == (300, 2)
    assert mse[0] > mse[1] > 0
    np.testing.assert_array_equal(encode(x, books), codes)


# --- ml-100k ---------------------------------------------------------------------------------
def test_ml100k_every_item_gets_a_unique_valid_sid(ml_wh):
    with connect(ml_wh) as con:
        res = build_sids(con, "ml100k", SidParams(model=MODEL))
        assert res.status == "cached" and res.codebook == 48
        sids = load_sids(con, "ml100k", res.sid_version)
        idx = [
            i
            for (i,) in con.execute(
                "SELECT item_idx FROM item_index WHERE dataset = 'ml100k' ORDER BY 1"
            ).fetchall()
        ]
        assert sorted(sids) == idx and len(set(sids.values())) == len(idx) == res.n_items
        codes = np.array([codes_of(sids[i]) for i in idx])
        assert codes.min() >= 0 and (codes[:, :3] < 48).all()
        # the d code counts 0, 1, ... within each L-code, in item_idx order
        np.testing.assert_array_equal(codes[:, 3], disambiguate(codes[:, :3]))
        assert res.stats["items_with_d_gt0"] == (codes[:, 3] > 0).sum() > 0  # equal titles
        # stored codes are what the stored centroids give (the rule new items get)
        vectors = embed_items(con, "ml100k", MODEL).vectors
        np.testing.assert_array_equal(
            encode(vectors, load_codebooks(con, res.sid_version)), codes[:, :3]
        )
        tokens = all_sid_tokens(con, res.sid_version)
        assert len(tokens) == len(set(tokens)) == 3 * 48 + codes[:, 3].max() + 1
        assert {t for s in sids.values() for t in re.findall(r"<[a-d]_\d+>", s)} <= set(tokens)


def test_same_request_is_cached_and_force_rebuilds_identically(ml_wh, monkeypatch):
    with connect(ml_wh) as con:
        first = build_sids(con, "ml100k", SidParams(model=MODEL))
        before = load_sids(con, "ml100k", first.sid_version)
        books = load_codebooks(con, first.sid_version)

        def boom(*a, **kw):
            raise AssertionError("a cache hit computes nothing")

        with monkeypatch.context() as m:
            m.setattr(sids_mod, "embed_items", boom)
            m.setattr(sids_mod, "rq_kmeans", boom)
            hit = build_sids(con, "ml100k", SidParams(model=MODEL))
        assert hit.status == "cached" and hit.sid_version == first.sid_version
        assert hit.stats == first.stats
        again = build_sids(con, "ml100k", SidParams(model=MODEL), force=True)
        assert again.status == "computed" and again.sid_version == first.sid_version
        assert load_sids(con, "ml100k", first.sid_version) == before
        for a, b in zip(books, load_codebooks(con, first.sid_version)):
            np.testing.assert_array_equal(a, b)
        assert con.execute(
            "SELECT count(*) FROM sid_versions WHERE sid_version = ?", [first.sid_version]
        ).fetchone() == (1,)
        other = build_sids(con, "ml100k", SidParams(model=MODEL, seed=1))
        assert other.status == "computed" and other.sid_version != first.sid_version
        assert len(set(load_sids(con, "ml100k", other.sid_version).values())) == first.n_items


def test_report_has_tables_and_plot(ml_wh):
    with connect(ml_wh) as con:
        res = build_sids(con, "ml100k", SidParams(model=MODEL))
        assert sid_provenance(con, "ml100k", res.sid_version)[0]
        # no result is left open: DuckDB 2.0 would then refuse a caller's register/unregister
        con.register("probe", pa.table({"a": [1]}))
        con.unregister("probe")
        assert not sid_provenance(con, "ml100k", "ml100k-rq3x48-00000000")[0]
    md = sids_report(res)
    assert "collision rate" in md and "entropy (bits)" in md and "## Bucket sizes" in md
    assert res.png in md and "data:image" not in md  # the flow attaches the image itself
    assert sids_report(as_record(res)) == md
    assert res.png.endswith(f"sids/{res.sid_version}/diagnostics.png")
    with open(res.png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


# --- incremental, small catalogues -----------------------------------------------------------
def _toy(con, n: int) -> None:
    """n prepared items 1..n with distinct texts."""
    write_sequences(con, "toy", [list(range(1, n + 1))])
    _add_items(con, range(1, n + 1))


def _add_items(con, idx, same_as: dict[int, int] | None = None) -> None:
    """Item texts from a number: `same_as` maps an item to the one whose text it copies."""
    num = {i: (same_as or {}).get(i, i) for i in idx}
    rows = [("toy", str(i), f"title {num[i]}", None, [f"g{num[i] % 3}"], 0) for i in idx]
    con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", rows)


def test_new_items_get_sids_without_changing_old_ones(con):
    _toy(con, 40)
    res = build_sids(con, "toy", SidParams(model=MODEL), encoder=fake_encoder)
    assert res.codebook == 16  # 4 * ceil(40 ** (1/3))
    old = load_sids(con, "toy", res.sid_version)
    books = load_codebooks(con, res.sid_version)
    con.executemany(
        "INSERT INTO item_index VALUES ('toy', ?, ?)", [(str(i), i) for i in range(41, 51)]
    )
    _add_items(con, range(41, 51), same_as={41: 1, 42: 1})
    assert assign_new_items(con, "toy", res.sid_version, encoder=fake_encoder) == 10
    assert assign_new_items(con, "toy", res.sid_version, encoder=fake_encoder) == 0
    new = load_sids(con, "toy", res.sid_version)
    assert {i: new[i] for i in old} == old and len(new) == 50
    assert len(set(new.values())) == 50
    for a, b in zip(books, load_codebooks(con, res.sid_version)):
        np.testing.assert_array_equal(a, b)
    # items 41 and 42 copy item 1's text: its L codes, then the next free d codes in order
    c1, c41, c42 = (codes_of(new[i]) for i in (1, 41, 42))
    assert c1[:3] == c41[:3] == c42[:3]
    taken = [codes_of(s)[3] for i, s in old.items() if codes_of(s)[:3] == c1[:3]]
    assert (c41[3], c42[3]) == (max(taken) + 1, max(taken) + 2)
    assert f"<d_{c42[3]}>" in all_sid_tokens(con, res.sid_version)
    hit = build_sids(con, "toy", SidParams(model=MODEL))  # a new catalogue: a new version
    assert hit.status == "computed" and hit.sid_version != res.sid_version
    stats = json.loads(
        con.execute(
            "SELECT stats_json FROM sid_versions WHERE sid_version = ?", [res.sid_version]
        ).fetchone()[0]
    )
    assert stats["items"] == 50 and stats["incremental_items"] == 10


@pytest.mark.parametrize("n", [1, 5])
def test_tiny_catalogue(con, n):
    _toy(con, n)
    res = build_sids(con, "toy", SidParams(model=MODEL), encoder=fake_encoder)
    assert res.codebook == n and res.sid_version.startswith(f"toy-rq3x{n}-")
    sids = load_sids(con, "toy", res.sid_version)
    assert len(set(sids.values())) == n
    sizes = [len(b) for b in load_codebooks(con, res.sid_version)]
    assert sizes[0] == n and sizes[1:] == [1, 1]  # after level 1 every residual is zero


def test_bad_requests(con):
    with pytest.raises(ValueError, match="levels"):
        SidParams(levels=0)
    with pytest.raises(ValueError, match="method"):
        SidParams(method="rq-vae")
    with pytest.raises(ValueError, match="no prepared items"):
        build_sids(con, "nothing", SidParams(model=MODEL), encoder=fake_encoder)
    with pytest.raises(ValueError, match="does not exist"):
        load_sids(con, "toy", "toy-rq3x8-00000000")


def test_flow_publishes_diagnostics(ml_wh, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from hoprec.flows.sids import sids_flow

    record = sids_flow("ml100k", warehouse=ml_wh, model=MODEL)
    assert record["status"] == "cached" and record["codebook"] == 48
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sids-plot"]))
        )
    plot = max(arts, key=lambda a: a.created).data
    assert record["sid_version"] in plot and "data:image/png;base64," in plot
    assert record["report"].startswith("# Semantic IDs of `ml100k`")
