"""Relation SQL against a brute-force Python oracle, snapshots, top-up, sharding, no leakage."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from functools import reduce
from pathlib import Path

import numpy as np
import pytest
from helpers import fake_encoder, write_sequences
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iirg_port import backfill

from hoprec.tasks.data.warehouse import connect
from hoprec.tasks.relations.embeddings import cosine_topk, embed_items
from hoprec.tasks.relations.pairs import count_pairs, count_shard, export_input, load_input
from hoprec.tasks.relations.snapshots import RelationParams, snapshot
from hoprec.tasks.relations.top_up import top_up_lists


def oracle_pairs(
    seqs: list[list[int]], window: int, inverse: bool, directed: bool
) -> dict[tuple[int, int], tuple[int, int]]:
    """(src, dst) -> (count, weight numerator), by looping over every position pair."""
    lcm = reduce(math.lcm, range(1, window + 1), 1) if inverse else 1
    n: Counter = Counter()
    w: Counter = Counter()
    for s in seqs:
        for i in range(len(s)):
            for hop in range(1, window + 1):
                if i + hop >= len(s):
                    break
                a, b = s[i], s[i + hop]
                if a == b:
                    continue
                for key in [(a, b)] if directed else [(a, b), (b, a)]:
                    n[key] += 1
                    w[key] += lcm // hop if inverse else 1
    return {k: (n[k], w[k]) for k in n}


def oracle_topk(pairs: dict, seqs: list[list[int]], k: int) -> dict[int, list[int]]:
    """Each item's top-k by weight, then popularity (descending), then item index."""
    pop = Counter(i for s in seqs for i in s)
    by_src: dict[int, list] = {}
    for (a, b), (_, w) in pairs.items():
        by_src.setdefault(a, []).append((-w, -pop[b], b))
    return {a: [b for *_, b in sorted(v)][: k or None] for a, v in by_src.items()}


def training(seqs: list[list[int]], strict: bool = False) -> list[list[int]]:
    """What write_sequences' leave-one-out labels leave for relations."""
    drop = 2 if strict else 1
    return [s[:-drop] if len(s) >= 3 else s for s in seqs]


def sql_pairs(con, directed: bool) -> dict[tuple[int, int], tuple[int, int]]:
    rows = con.execute("SELECT a, b, n, w FROM rel_pairs").fetchall()
    out = {(a, b): (n, w) for a, b, n, w in rows}
    if not directed:
        out |= {(b, a): (n, w) for a, b, n, w in rows}
    return out


def stored(con, table: str, snapshot_id: int) -> dict[int, list[int]]:
    rows = con.execute(
        f"SELECT src, dst FROM {table} WHERE snapshot_id = ? ORDER BY src, rank", [snapshot_id]
    ).fetchall()
    out: dict[int, list[int]] = {}
    for a, b in rows:
        out.setdefault(a, []).append(b)
    return out


sequences = st.lists(st.lists(st.integers(1, 12), min_size=1, max_size=25), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def mcon(tmp_path_factory):
    with connect(tmp_path_factory.mktemp("rel") / "wh.duckdb") as c:
        yield c


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seqs=sequences,
    window=st.sampled_from([1, 3, 5]),
    inverse=st.booleans(),
    directed=st.booleans(),
    strict=st.booleans(),
)
def test_pair_counts_equal_oracle(mcon, seqs, window, inverse, directed, strict):
    write_sequences(mcon, "syn", seqs)
    load_input(mcon, "syn", None, strict)
    spec = RelationParams(
        window=window, weighting="inverse-hop" if inverse else "count", directed=directed
    ).spec("cooccurrence")
    count_pairs(mcon, spec)
    assert sql_pairs(mcon, directed) == oracle_pairs(
        training(seqs, strict), window, inverse, directed
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seqs=sequences,
    window=st.sampled_from([1, 3, 5]),
    inverse=st.booleans(),
    directed=st.booleans(),
    k=st.integers(1, 6),
)
def test_topk_snapshot_equals_oracle(mcon, seqs, window, inverse, directed, k):
    write_sequences(mcon, "syn", seqs)
    params = RelationParams(
        window=window,
        weighting="inverse-hop" if inverse else "count",
        directed=directed,
        top_k=k,
        top_up=False,
    )
    snap = snapshot(mcon, "syn", "cooccurrence", params=params, force=True)
    train = training(seqs)
    expected = oracle_topk(oracle_pairs(train, window, inverse, directed), train, k)
    assert stored(mcon, "cooccurrence", snap.snapshot_id) == expected
    # weights are the exact numerators divided once
    lcm = reduce(math.lcm, range(1, window + 1), 1) if inverse else 1
    pairs = oracle_pairs(train, window, inverse, directed)
    for a, b, n, weight in mcon.execute(
        "SELECT src, dst, n, weight FROM cooccurrence WHERE snapshot_id = ?", [snap.snapshot_id]
    ).fetchall():
        assert (n, weight) == (pairs[(a, b)][0], pairs[(a, b)][1] / lcm)


def test_transitions_keep_every_successor(con):
    seqs = [[1, 2, 3, 2, 4, 5], [2, 3, 1, 1, 4, 6], [5, 2, 3]]
    write_sequences(con, "syn", seqs)
    snap = snapshot(con, "syn", "transitions")
    expected = oracle_topk(oracle_pairs(training(seqs), 1, False, True), training(seqs), 0)
    assert stored(con, "transitions", snap.snapshot_id) == expected
    n = dict(
        ((a, b), n)
        for a, b, n in con.execute(
            "SELECT src, dst, n FROM transitions WHERE snapshot_id = ?", [snap.snapshot_id]
        ).fetchall()
    )
    assert n[(2, 3)] == 2 and n[(1, 2)] == 1 and (1, 1) not in n and (4, 6) not in n


def test_as_of_uses_only_earlier_events(con):
    write_sequences(con, "syn", [[1, 2, 3, 4, 5, 6, 7]])  # ts 2000-01-01 .. 07
    snap = snapshot(con, "syn", "transitions", as_of="2000-01-04")
    assert stored(con, "transitions", snap.snapshot_id) == {1: [2], 2: [3]}
    assert snap.as_of == "2000-01-04 00:00:00" and snap.stats["events"] == 3


def test_snapshot_cache_hit_and_atomic_recompute(con):
    write_sequences(con, "syn", [[1, 2, 3, 1, 2], [2, 3, 4, 2]])
    p = RelationParams(top_up=False)
    first = snapshot(con, "syn", "cooccurrence", "2000-01-10", p)
    again = snapshot(con, "syn", "cooccurrence", "2000-01-10", p)
    assert (first.status, again.status) == ("computed", "cached")
    assert again.snapshot_id == first.snapshot_id and again.rows == first.rows
    redo = snapshot(con, "syn", "cooccurrence", "2000-01-10", p, force=True)
    assert redo.status == "computed" and redo.snapshot_id != first.snapshot_id
    assert (
        con.execute("SELECT count(*) FROM relation_snapshots WHERE dataset = 'syn'").fetchone()[0]
        == 1
    )
    assert (
        con.execute(
            "SELECT count(*) FROM cooccurrence WHERE snapshot_id = ?", [first.snapshot_id]
        ).fetchone()[0]
        == 0
    )
    # other parameters or other data are different snapshots, not hits
    assert (
        snapshot(
            con, "syn", "cooccurrence", "2000-01-10", RelationParams(window=2, top_up=False)
        ).status
        == "computed"
    )
    write_sequences(con, "syn", [[1, 2, 3, 1, 2], [2, 3, 4, 3]])
    assert snapshot(con, "syn", "cooccurrence", "2000-01-10", p).status == "computed"


def test_failed_recompute_keeps_the_old_snapshot(con, monkeypatch):
    write_sequences(con, "syn", [[1, 2, 3, 1, 2]])
    p = RelationParams(top_up=False)
    old = snapshot(con, "syn", "cooccurrence", None, p)
    import hoprec.tasks.relations.snapshots as rel

    real_run = rel.run

    def failing(c, name, *a, **kw):
        if name == "relations/replace_snapshot":
            real_run(c, "relations/no_top_up")  # some work inside the transaction...
            raise RuntimeError("killed mid-write")
        return real_run(c, name, *a, **kw)

    monkeypatch.setattr(rel, "run", failing)
    with pytest.raises(RuntimeError):
        snapshot(con, "syn", "cooccurrence", None, p, force=True)
    monkeypatch.undo()
    rows = con.execute(
        "SELECT snapshot_id FROM relation_snapshots WHERE dataset = 'syn'"
    ).fetchall()
    assert rows == [(old.snapshot_id,)]
    assert (
        con.execute(
            "SELECT count(*) FROM cooccurrence WHERE snapshot_id = ?", [old.snapshot_id]
        ).fetchone()[0]
        == old.rows
    )


def test_bad_parameters_fail_fast(con):
    with pytest.raises(ValueError, match="window"):
        RelationParams(window=0)
    with pytest.raises(ValueError, match="weighting"):
        RelationParams(weighting="log")  # type: ignore[arg-type]
    write_sequences(con, "syn", [[1, 2, 3]])
    with pytest.raises(ValueError, match="--as-of"):
        snapshot(con, "syn", "transitions", as_of="last tuesday")
    with pytest.raises(ValueError, match="hoprec prepare"):
        snapshot(con, "nope", "transitions")
    with pytest.raises(ValueError, match="semantic"):
        snapshot(con, "syn", "cooccurrence")  # top-up without a semantic snapshot


def test_top_up_follows_iirgs_code(con):
    # item 5 never co-occurs; items 1..4 do. 5's semantic neighbours lend their co-occurrences.
    seqs = [[1, 2, 3, 4, 1, 2], [2, 3, 4, 1], [5, 6]]
    write_sequences(con, "syn", seqs)
    con.executemany(
        "INSERT INTO items VALUES ('syn', ?, ?, NULL, NULL, 0)",
        [(str(i), f"item {i}") for i in range(1, 7)],
    )
    emb = None
    for mode in ("chained", "independent"):
        p = RelationParams(top_k=3, window=2, top_up_mode=mode)
        sem = snapshot(con, "syn", "semantic", params=p, encoder=fake_encoder)
        co = snapshot(con, "syn", "cooccurrence", params=p, semantic_id=sem.snapshot_id)
        if emb is None:
            emb = embed_items(con, "syn", p.model)
        nbrs, _ = cosine_topk(emb.vectors, 500)
        semantic = {int(i): emb.item_idx[nbrs[r]].tolist() for r, i in enumerate(emb.item_idx)}
        collab = oracle_topk(oracle_pairs(training(seqs), 2, False, False), training(seqs), 3)
        expected = backfill(
            {i: list(collab.get(i, [])) for i in range(1, 7)}, semantic, 6, 3, mode != "chained"
        )
        got = stored(con, "cooccurrence", co.snapshot_id)
        assert {i: got.get(i, []) for i in range(1, 7)} == expected, mode
        assert co.stats["items_topped_up"] >= 1 and co.params["top_up_mode"] == mode
    # a new semantic snapshot (other model name) makes the co-occurrence snapshot a new one
    sem2 = snapshot(
        con,
        "syn",
        "semantic",
        params=RelationParams(top_k=3, window=2, model="other"),
        encoder=fake_encoder,
    )
    co2 = snapshot(
        con,
        "syn",
        "cooccurrence",
        params=RelationParams(top_k=3, window=2, model="other"),
        semantic_id=sem2.snapshot_id,
    )
    assert co2.status == "computed"


lists = st.dictionaries(
    st.integers(1, 12), st.lists(st.integers(1, 12), max_size=6, unique=True), max_size=12
)


@settings(max_examples=150, deadline=None)
@given(lists, lists, st.integers(1, 6), st.sampled_from(["chained", "independent"]))
def test_top_up_lists_equal_iirgs_loop(collab, semantic, k, mode):
    # IIRG's lists never hold the item itself; the semantic lists never hold the item either
    collab = {i: [d for d in v if d != i][:k] for i, v in collab.items()}
    semantic = {i: [d for d in v if d != i] for i, v in semantic.items()}
    added = top_up_lists(collab, semantic, list(range(1, 13)), k, mode)
    expected = backfill(collab, semantic, 12, k, independent=mode == "independent")
    got = {i: list(collab.get(i, [])) + [nb for nb, _ in added.get(i, [])] for i in range(1, 13)}
    assert got == {i: expected.get(i, []) for i in range(1, 13)}
    for item, borrowed in added.items():
        assert all(via in semantic[item] for _, via in borrowed)


@pytest.mark.parametrize("kind", ["cooccurrence", "transitions"])
def test_sharded_counts_equal_single_run(con, tmp_path: Path, kind: str):
    """Shards counted apart, then merged and ranked one source partition at a time (as many
    partitions as shards), give the single run's lists: symmetric pairs, stored once, reach
    the partitions of both their ends; directed ones only their source's."""
    rng = np.random.default_rng(3)
    seqs = [[int(i) for i in rng.integers(1, 40, size=rng.integers(1, 30))] for _ in range(200)]
    write_sequences(con, "syn", seqs)
    p = RelationParams(top_up=False, weighting="inverse-hop")
    at = datetime(2000, 1, 20)
    cols = f"SELECT src, dst, n, weight, rank FROM {kind} WHERE snapshot_id = ? ORDER BY ALL"
    single = snapshot(con, "syn", kind, at, p)
    expected = con.execute(cols, [single.snapshot_id]).fetchall()
    path = export_input(con, "syn", at, False, tmp_path / "in.parquet")
    files = [
        count_shard(str(path), s, 3, p.spec(kind), str(tmp_path / f"s{s}.parquet"))
        for s in range(3)
    ]
    sizes = [con.execute("SELECT count(*) FROM read_parquet(?)", [f]).fetchone()[0] for f in files]
    assert all(sizes)  # every shard did some of the work
    sharded = snapshot(con, "syn", kind, at, p, force=True, shard_files=files)
    assert sharded.stats["shards"] == 3
    assert len(expected) > 100
    assert con.execute(cols, [sharded.snapshot_id]).fetchall() == expected
    # popularity and statistics from the export (the input never loaded whole): same result
    streamed = snapshot(
        con, "syn", kind, at, p, force=True, shard_files=files, shard_input=str(path)
    )
    assert con.execute(cols, [streamed.snapshot_id]).fetchall() == expected
    counts = ("events", "users", "items")
    assert {c: streamed.stats[c] for c in counts} == {c: single.stats[c] for c in counts}
