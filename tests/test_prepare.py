"""prepare: SQL k-core, ordering and splits against a brute-force Python oracle."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoprec.tasks.data.prepare import PrepareParams, prepare
from hoprec.tasks.data.warehouse import connect

T0 = datetime(2020, 1, 1)


def oracle_kcore(events: list[tuple[str, str, int]], k: int) -> set[tuple[str, str, int]]:
    """Brute force: drop users/items with < k events until nothing changes."""
    cur = list(events)
    while True:
        u, i = Counter(e[0] for e in cur), Counter(e[1] for e in cur)
        nxt = [e for e in cur if u[e[0]] >= k and i[e[1]] >= k]
        if len(nxt) == len(cur):
            return set(nxt)
        cur = nxt


def load(con, events: list[tuple[str, str, int]]) -> None:
    """The events as one batch, in list order (their line numbers)."""
    con.executemany(
        "INSERT INTO interactions VALUES ('d', ?, ?, ?, NULL, 0, ?)",
        [(u, i, T0 + timedelta(seconds=t), n) for n, (u, i, t) in enumerate(events, 1)],
    )


event_lists = st.lists(
    st.tuples(
        st.sampled_from([f"u{j}" for j in range(8)]),
        st.sampled_from([str(j) for j in range(12)]),
        st.integers(0, 30),
    ),
    min_size=1,
    max_size=120,
    unique=True,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=event_lists, k=st.integers(1, 4), tie=st.sampled_from(["source", "item"]))
def test_kcore_and_loo_match_oracle(tmp_path_factory, events, k, tie):
    wh = tmp_path_factory.mktemp("p") / "w.duckdb"
    with connect(wh) as con:
        load(con, events)
        kept = oracle_kcore(events, k)
        if not kept:
            with pytest.raises(ValueError, match="survive"):
                prepare(con, "d", PrepareParams(k_core=k), out_dir=wh.parent)
            return
        prepare(con, "d", PrepareParams(k_core=k, tie_break=tie), out_dir=wh.parent)
        got = con.execute(
            "SELECT s.user_id, x.item_id, s.ts, s.pos, s.split FROM sequences s "
            "JOIN item_index x USING (dataset, item_idx)"
        ).fetchall()
    assert {(u, i, int((ts - T0).total_seconds())) for u, i, ts, _, _ in got} == kept
    line = {e: n for n, e in enumerate(events, 1)}
    by_user: dict[str, list] = defaultdict(list)
    for u, i, t in kept:  # (ts, file line) or (ts, item id) order
        by_user[u].append((t, line[(u, i, t)] if tie == "source" else int(i), int(i)))
    for u, seq in by_user.items():
        expect = [str(i) for _, _, i in sorted(seq)]
        mine = sorted((p, i, s) for uu, i, _, p, s in got if uu == u)
        assert [i for _, i, _ in mine] == expect
        splits = [s for _, _, s in mine]
        if len(mine) >= 3:
            assert splits[-1] == "test" and splits[-2] == "valid" and set(splits[:-2]) <= {"train"}
        else:
            assert set(splits) == {"train"}


def test_ml100k_loo(con, ml100k_dir, tmp_path):
    from tests.helpers import ingest

    ingest(con, "ml", "ml-100k", ml100k_dir)
    assert con.execute(
        "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) FROM interactions"
    ).fetchone() == (100000, 943, 1682)
    res = prepare(con, "ml", PrepareParams(), out_dir=tmp_path)
    assert res.stats["users"] == 943 and res.stats["items"] == 1349
    per_user = con.execute("""
        SELECT user_id, count(*) FILTER (WHERE split = 'test'),
               count(*) FILTER (WHERE split = 'valid'),
               max(pos) FILTER (WHERE split = 'test') = max(pos),
               max(pos) FILTER (WHERE split = 'valid') = max(pos) - 1
        FROM sequences WHERE dataset = 'ml' GROUP BY user_id""").fetchall()
    assert len(per_user) == 943
    assert all(r[1:] == (1, 1, True, True) for r in per_user)
    table = pq.read_table(res.files["sequences"])
    assert table.num_rows == 943
    # the source order decides many targets: 416 users rated their last two items in one second
    assert res.stats["test_ties"] > 300 and res.stats["valid_ties"] > 300
    before = dict(
        con.execute("SELECT user_id, item_idx FROM sequences WHERE split = 'test'").fetchall()
    )
    prepare(con, "ml", PrepareParams(tie_break="item"), out_dir=tmp_path)
    after = dict(
        con.execute("SELECT user_id, item_idx FROM sequences WHERE split = 'test'").fetchall()
    )
    assert sum(before[u] != after[u] for u in before) == 284  # as a stable sort in source order
    assert sum(len(x) for x in table.column("items").to_pylist()) == res.stats["interactions"]
    assert pq.read_table(res.files["items"]).num_rows == 1349


def test_history_cap_and_temporal_split(con, tmp_path):
    events = [(f"u{u}", str(i), u * 100 + i) for u in range(6) for i in range(10)]
    load(con, events)
    res = prepare(con, "d", PrepareParams(k_core=1, max_history=4), out_dir=tmp_path)
    assert res.stats["interactions"] == 24 and res.stats["len_max"] == 4
    kept = con.execute("SELECT min(item_idx) FROM sequences").fetchone()[0]
    assert kept == 7  # items 6..9 are each user's last four; item "6" has index 7
    res = prepare(
        con,
        "d",
        PrepareParams(
            k_core=1,
            split="temporal",
            valid_start=str(T0 + timedelta(seconds=300)),
            test_start=str(T0 + timedelta(seconds=500)),
        ),
        out_dir=tmp_path,
    )
    assert (res.stats["train_events"], res.stats["valid_events"], res.stats["test_events"]) == (
        30,
        20,
        10,
    )


def test_bad_params_fail_fast():
    with pytest.raises(ValueError, match="k_core"):
        PrepareParams(k_core=0)
    with pytest.raises(ValueError, match="split"):
        PrepareParams(split="random")  # type: ignore[arg-type]


def test_prepare_without_data_names_the_dataset(con, tmp_path):
    with pytest.raises(ValueError, match="'nothing' has no interactions"):
        prepare(con, "nothing", PrepareParams(), out_dir=tmp_path)


def test_tie_break_rules_on_a_crafted_tie(con, tmp_path):
    """One user, three events, the last two in the same second, written b then a."""
    rows = [
        ("u", "c", 1, 1),
        ("u", "b", 5, 2),
        ("u", "a", 5, 3),
        ("v", "a", 1, 1),
        ("v", "b", 2, 2),
    ]
    rows += [("v", "c", 3, 3)]
    con.executemany(
        "INSERT INTO interactions VALUES ('d', ?, ?, ?, NULL, 0, ?)",
        [(u, i, T0 + timedelta(seconds=t), n) for u, i, t, n in rows],
    )

    def target(tie: str, seed: int = 0) -> str:
        prepare(con, "d", PrepareParams(k_core=1, tie_break=tie, tie_seed=seed), out_dir=tmp_path)
        return con.execute(
            "SELECT x.item_id FROM sequences s JOIN item_index x USING (dataset, item_idx) "
            "WHERE s.user_id = 'u' AND s.split = 'test'"
        ).fetchone()[0]

    assert target("source") == "a"  # the file's order: b was written first, a is the target
    assert target("item") == "b"  # item ids a < b: b comes last
    assert {target("random", s) for s in range(8)} == {"a", "b"}  # a seed decides
    assert target("random", 3) == target("random", 3)
    stats = prepare(con, "d", PrepareParams(k_core=1), out_dir=tmp_path).stats
    assert (stats["test_ties"], stats["valid_ties"]) == (1, 1)  # user u only


def test_min_rating_filters_before_the_kcore(con, tmp_path):
    """RecBole's ml-1m protocol: ratings >= 3 first, then the k-core. Hand-computed: unfiltered,
    the 3-core keeps all 14 events (users 4/3/4/3, items a4 b4 c3 d3). With >= 3, u1-d (2), u3-d
    (1) and u4-b (no rating) go; u4 is left with 2 events and falls to the 3-core, which takes d
    with it: 9 events, u1..u3 each a, b, c (c the test target). Ratings of exactly 3 stay."""
    rated = {
        "u1": [("a", 5), ("b", 4), ("c", 3), ("d", 2)],
        "u2": [("a", 3), ("b", 5), ("c", 4)],
        "u3": [("a", 4), ("b", 4), ("c", 5), ("d", 1)],
        "u4": [("a", 5), ("d", 5), ("b", None)],
    }
    con.executemany(
        "INSERT INTO interactions VALUES ('d', ?, ?, ?, ?, 0, ?)",
        [
            (u, i, T0 + timedelta(seconds=t), r, 10 * n + t)
            for n, (u, evs) in enumerate(rated.items())
            for t, (i, r) in enumerate(evs)
        ],
    )
    every = prepare(con, "d", PrepareParams(k_core=3), out_dir=tmp_path)
    assert (every.stats["interactions"], every.stats["users"], every.stats["items"]) == (14, 4, 4)
    res = prepare(con, "d", PrepareParams(k_core=3, min_rating=3), out_dir=tmp_path)
    assert (res.stats["interactions"], res.stats["users"], res.stats["items"]) == (9, 3, 3)
    assert res.params["min_rating"] == 3
    got = con.execute(
        "SELECT s.user_id, x.item_id, s.split FROM sequences s "
        "JOIN item_index x USING (dataset, item_idx) ORDER BY s.user_id, s.pos"
    ).fetchall()
    assert got == [
        (u, i, sp) for u in ("u1", "u2", "u3") for i, sp in zip("abc", ("train", "valid", "test"))
    ]
    with pytest.raises(ValueError, match="rated >= 6"):
        prepare(con, "d", PrepareParams(k_core=1, min_rating=6), out_dir=tmp_path)
