"""Idempotent, incremental, transactional batches."""

from __future__ import annotations

import pytest

import hoprec.tasks.data.ingest as ingest_mod
from tests.helpers import ingest, rows, write


def test_same_file_twice_adds_nothing(con, tmp_path):
    f = write(tmp_path / "u.data", "1\t2\t3\t881250100\n1\t3\t3\t881250101\n")
    (first,) = ingest(con, "d", "ml-100k", f)
    (second,) = ingest(con, "d", "ml-100k", f)
    assert first.status == "loaded" and second.status == "skipped"
    assert second.batch_id == first.batch_id
    assert rows(con, "SELECT count(*) FROM interactions") == [(2,)]
    assert rows(con, "SELECT count(*) FROM ingest_batches") == [(1,)]


def test_same_content_other_dataset_loads(con, tmp_path):
    f = write(tmp_path / "u.data", "1\t2\t3\t881250100\n")
    ingest(con, "a", "ml-100k", f)
    ingest(con, "b", "ml-100k", f)
    assert rows(con, "SELECT dataset, count(*) FROM interactions GROUP BY 1 ORDER BY 1") == [
        ("a", 1),
        ("b", 1),
    ]


def test_incremental_append_drops_exact_duplicates(con, tmp_path):
    ingest(
        con, "d", "ml-100k", write(tmp_path / "u.data", "1\t2\t3\t881250100\n1\t3\t3\t881250101\n")
    )
    later = tmp_path / "later"
    later.mkdir()
    (res,) = ingest(
        con,
        "d",
        "ml-100k",
        write(
            later / "u.data",
            "1\t3\t3\t881250101\n1\t3\t3\t881250101\n1\t4\t5\t881250102\n1\t3\t4\t881250101\n",
        ),
    )
    # one old event, one in-batch copy; the re-rated event is a different event
    assert (res.rows_loaded, res.rows_duplicate) == (2, 2)
    assert rows(con, "SELECT count(*) FROM interactions") == [(4,)]


def test_interrupted_batch_leaves_nothing_and_rerun_finishes(con, tmp_path, monkeypatch):
    f = write(tmp_path / "u.data", "1\t2\t3\t881250100\n1\t3\t3\t881250101\n")
    real_run = ingest_mod.run

    def crash_on_insert(c, name, *a, **kw):
        if name == "ingest/insert_interactions":
            real_run(c, name, *a, **kw)  # the rows are written ...
            raise KeyboardInterrupt("killed")  # ... and the process dies before commit
        return real_run(c, name, *a, **kw)

    monkeypatch.setattr(ingest_mod, "run", crash_on_insert)
    with pytest.raises(KeyboardInterrupt):
        ingest(con, "d", "ml-100k", f)
    for table in ("interactions", "ingest_batches", "quarantine"):
        assert rows(con, f"SELECT count(*) FROM {table}") == [(0,)], table
    monkeypatch.setattr(ingest_mod, "run", real_run)
    (res,) = ingest(con, "d", "ml-100k", f)
    assert res.status == "loaded" and res.rows_loaded == 2


def test_items_later_batch_replaces(con, tmp_path):
    ingest(con, "d", "ml-1m", write(tmp_path / "movies.dat", "1::Old::Drama\n2::Two::Comedy\n"))
    d2 = tmp_path / "v2"
    d2.mkdir()
    ingest(con, "d", "ml-1m", write(d2 / "movies.dat", "1::New::Drama\n1::Newer::Drama\n"))
    assert rows(con, "SELECT item_id, title FROM items ORDER BY 1") == [
        ("1", "Newer"),
        ("2", "Two"),
    ]


def test_writer_lock_times_out_with_clear_error(wh):
    from filelock import FileLock

    from hoprec.tasks.data.warehouse import WarehouseBusy, connect

    wh.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(wh) + ".lock"):
        with pytest.raises(WarehouseBusy, match=str(wh)):
            with connect(wh, lock_timeout=0.2):
                pass


def test_schema_is_idempotent_and_every_table_has_dataset(wh):
    from hoprec.tasks.data.warehouse import connect, ensure_schema

    with connect(wh) as c:
        ensure_schema(c)
        tables = [
            r[0]
            for r in c.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        assert {"interactions", "items", "quarantine", "ingest_batches", "sequences"} <= set(tables)
        # pair tables belong to a snapshot (which has the dataset); the embedding cache is
        # shared across datasets on purpose (same text, same model: embedded once)
        by_other_key = {
            "transitions": "snapshot_id",
            "cooccurrence": "snapshot_id",
            "semantic_neighbors": "snapshot_id",
            "item_embeddings": "text_sha256",
        }
        for t in tables:
            cols = [r[0] for r in c.execute(f"DESCRIBE {t}").fetchall()]
            assert by_other_key.get(t, "dataset") in cols, t
