"""Relations on ml-100k: no leakage, backfill through Prefect, sharded and Dask runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from helpers import prepare_ml100k
from test_relations import oracle_pairs

from hoprec.tasks.data.warehouse import connect
from hoprec.tasks.relations.pairs import count_pairs, load_input
from hoprec.tasks.relations.snapshots import RelationParams

NO_TOP_UP = {"top_up": False, "kinds": ["transitions", "cooccurrence"]}


@pytest.fixture(scope="module")
def ml_wh(tmp_path_factory, ml100k_dir) -> str:
    """A warehouse holding prepared ml-100k (5-core, leave-one-out)."""
    path = tmp_path_factory.mktemp("mlrel") / "wh.duckdb"
    with connect(path) as con:
        prepare_ml100k(con, ml100k_dir, tmp_path_factory.mktemp("prep"))
    return str(path)


def _sequences(con, splits: tuple[str, ...]) -> list[list[int]]:
    rows = con.execute(
        "SELECT list(item_idx ORDER BY pos) FROM sequences WHERE dataset = 'ml100k' "
        "AND list_contains(?, split) GROUP BY user_idx",
        [list(splits)],
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("strict", [False, True])
def test_no_test_target_contributes_on_ml100k(ml_wh, strict):
    kept = ("train",) if strict else ("train", "valid")
    with connect(ml_wh) as con:
        for window, directed in [(5, False), (1, True)]:
            spec = RelationParams(window=window, directed=directed, strict=strict).spec(
                "cooccurrence"
            )
            load_input(con, "ml100k", None, strict)
            count_pairs(con, spec)
            got = {
                (a, b): (n, w)
                for a, b, n, w in con.execute("SELECT a, b, n, w FROM rel_pairs").fetchall()
            }
            if not directed:
                got |= {(b, a): v for (a, b), v in got.items()}
            expected = oracle_pairs(_sequences(con, kept), window, False, directed)
            assert got == expected
            # the check has teeth: with the held-out targets the pairs would differ
            assert got != oracle_pairs(_sequences(con, kept + ("test",)), window, False, directed)


def test_backfill_eight_weeks_then_nothing(ml_wh, prefect_api):
    from hoprec.flows.backfill import backfill_flow

    args = dict(
        dataset="ml100k",
        start="1998-02-01",
        end="1998-03-22",
        every="1w",
        warehouse=ml_wh,
        **NO_TOP_UP,
    )
    first = backfill_flow(**args)["snapshots"]
    assert len(first) == 16 and {r["status"] for r in first} == {"computed"}
    assert len({r["as_of"] for r in first}) == 8
    events = [r["stats"]["events"] for r in first if r["kind"] == "transitions"]
    assert events == sorted(events) and events[0] < events[-1]  # later dates see more events
    before = _rows(ml_wh, [r["snapshot_id"] for r in first])
    second = backfill_flow(**args)["snapshots"]
    assert {r["status"] for r in second} == {"cached"}
    assert [r["snapshot_id"] for r in second] == [r["snapshot_id"] for r in first]
    # counted from Parquet exports, in parallel: the same snapshots, and no files left behind
    from hoprec.tasks.settings import stage_dir

    exported = backfill_flow(**args, from_exports=True, force=True)["snapshots"]
    assert [(r["kind"], r["as_of"], r["rows"]) for r in exported] == [
        (r["kind"], r["as_of"], r["rows"]) for r in first
    ]
    assert _rows(ml_wh, [r["snapshot_id"] for r in exported]) == before
    again = backfill_flow(**args, from_exports=True)["snapshots"]
    assert {r["status"] for r in again} == {"cached"}
    assert not list(stage_dir("relations", "ml100k").glob("**/*.parquet"))
    with duckdb.connect(ml_wh, read_only=True) as con:
        assert (
            con.execute(
                "SELECT count(*) FROM relation_snapshots WHERE as_of IS NOT NULL"
            ).fetchone()[0]
            >= 16
        )


def test_backfill_resumes_after_a_crash(ml_wh, prefect_api, monkeypatch):
    import hoprec.tasks.relations.snapshot_tasks as rel
    from hoprec.flows.backfill import backfill_flow

    args = dict(
        dataset="ml100k",
        start="1997-10-05",
        end="1997-10-26",
        every="1w",
        warehouse=ml_wh,
        kinds=["transitions"],
        top_up=False,
    )
    real = rel.snapshot

    def crash_on_third(con, dataset, kind, as_of, *a, **kw):
        if str(as_of).startswith("1997-10-19"):
            raise RuntimeError("worker died")
        return real(con, dataset, kind, as_of, *a, **kw)

    monkeypatch.setattr(rel, "snapshot", crash_on_third)
    with pytest.raises(RuntimeError, match="worker died"):
        backfill_flow(**args)
    monkeypatch.undo()
    records = backfill_flow(**args)["snapshots"]
    status = {r["as_of"][:10]: r["status"] for r in records}
    assert status["1997-10-19"] == "computed"
    assert sum(s == "computed" for s in status.values()) < 4  # the others were kept
    with duckdb.connect(ml_wh, read_only=True) as con:
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT as_of FROM relation_snapshots WHERE "
            "kind = 'transitions' GROUP BY as_of, params_hash HAVING count(*) > 1)"
        ).fetchone()
    assert dupes == (0,)


def _rows(wh: str, ids: list[int]) -> list[tuple]:
    """Every row of these transitions and co-occurrence snapshots (ids are global), sorted,
    without their ids."""
    with duckdb.connect(wh, read_only=True) as con:
        return con.execute(
            "SELECT src, dst, n, weight, rank FROM cooccurrence WHERE snapshot_id IN "
            "(SELECT unnest(?)) UNION ALL SELECT src, dst, n, weight, rank FROM transitions "
            "WHERE snapshot_id IN (SELECT unnest(?)) ORDER BY ALL",
            [ids, ids],
        ).fetchall()


def test_sharded_and_dask_runs_equal_single_run(ml_wh, prefect_api, tmp_path: Path):
    from prefect_dask import DaskTaskRunner

    from hoprec.flows.relations import relations_flow

    args = dict(dataset="ml100k", as_of="1998-04-01", warehouse=ml_wh, **NO_TOP_UP)
    single = relations_flow(**args, force=True)["snapshots"]
    expected = _rows(ml_wh, [r["snapshot_id"] for r in single])
    sharded = relations_flow(**args, shards=4, force=True)["snapshots"]
    assert [r["stats"]["shards"] for r in sharded] == [4, 4]
    assert _rows(ml_wh, [r["snapshot_id"] for r in sharded]) == expected
    from hoprec.tasks.settings import stage_dir

    assert not list(stage_dir("relations", "ml100k").glob("**/*.parquet"))  # shards cleaned up
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 2,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
    on_dask = relations_flow.with_options(task_runner=runner)(**args, shards=3, force=True)[
        "snapshots"
    ]
    assert [r["stats"]["shards"] for r in on_dask] == [3, 3]
    assert _rows(ml_wh, [r["snapshot_id"] for r in on_dask]) == expected
