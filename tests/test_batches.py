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


def test_options_are_part_of_the_skip_key_and_force_replaces(con, tmp_path):
    from hoprec.tasks.data.formats import generic_source
    from hoprec.tasks.data.ingest import get_format, ingest_file

    f = write(tmp_path / "e.csv", "u,i,t\na,1,881250949000\nb,2,881250950000\n")
    fmt = get_format("csv")
    mapping = {"user_id": "u", "item_id": "i", "ts": "t"}
    as_s = generic_source(fmt, "interactions", mapping, "s", None, None)
    as_ms = generic_source(fmt, "interactions", mapping, "ms", None, None)
    wrong = ingest_file(con, "d", "csv", as_s, f)  # milliseconds read as seconds
    assert (wrong.rows_loaded, wrong.rows_quarantined) == (0, 2) and "--ts-unit ms" in wrong.note
    assert ingest_file(con, "d", "csv", as_s, f).status == "skipped"  # same bytes, same options
    right = ingest_file(con, "d", "csv", as_ms, f)  # other options: not skipped
    assert right.status == "loaded" and right.rows_loaded == 2
    again = ingest_file(con, "d", "csv", as_ms, f, force=True)  # replaces both earlier batches
    assert again.status == "loaded" and again.rows_loaded == 2 and again.rows_duplicate == 0
    assert rows(con, "SELECT batch_id FROM ingest_batches") == [(again.batch_id,)]
    assert rows(con, "SELECT count(*) FROM quarantine") == [(0,)]
    assert rows(con, "SELECT count(*) FROM interactions") == [(2,)]


def test_batches_list_and_drop(con, tmp_path):
    from hoprec.tasks.data.ingest import IngestError, drop_batch, list_batches

    (a,) = ingest(con, "d", "ml-100k", write(tmp_path / "u.data", "1\t2\t3\t881250100\nbad\n"))
    later = tmp_path / "later"
    later.mkdir()
    (b,) = ingest(con, "d", "ml-100k", write(later / "u.data", "1\t3\t3\t881250101\n"))
    listed = list_batches(con, "d")
    assert [(r["batch_id"], r["status"], r["rows_loaded"]) for r in listed] == [
        (a.batch_id, "loaded", 1),
        (b.batch_id, "loaded", 1),
    ]
    dropped = drop_batch(con, "d", a.batch_id)
    assert (dropped["interactions"], dropped["quarantine"]) == (1, 1)
    assert rows(con, "SELECT item_id FROM interactions") == [("3",)]
    assert [r["batch_id"] for r in list_batches(con, "d")] == [b.batch_id]
    with pytest.raises(IngestError, match="has no batch 999"):
        drop_batch(con, "d", 999)


def test_batches_command_through_the_cli(tmp_path, prefect_api, capsys):
    from hoprec.flows.cli import main

    wh = str(tmp_path / "w.duckdb")
    f = write(tmp_path / "u.data", "1\t2\t3\t881250100\n")
    assert main(["ingest", "--dataset", "d", "--format", "ml-100k", str(f), "--warehouse", wh]) == 0
    capsys.readouterr()
    assert main(["batches", "list", "--dataset", "d", "--warehouse", wh]) == 0
    assert "| 1 | interactions | ml-100k | u.data |" in capsys.readouterr().out
    assert main(["batches", "drop", "--dataset", "d", "1", "--warehouse", wh]) == 0
    assert "1 events" in capsys.readouterr().out
    assert main(["batches", "drop", "--dataset", "d", "1", "--warehouse", wh]) == 2
    assert "has no batch 1" in capsys.readouterr().err


def _hold(code: str):
    """A child process that opens the warehouse its way and waits, once it says it is ready."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_warehouse_errors_a_user_can_act_on(wh, tmp_path, caplog):
    import logging

    from hoprec.tasks.data.warehouse import WarehouseBusy, WarehouseError, connect

    with connect(wh):
        pass
    # a hoprec writer: the waiting one says after a moment whom it waits for, then gives up
    writer = _hold(
        "import time; from hoprec.tasks.data.warehouse import connect\n"
        f"with connect({str(wh)!r}):\n    print('ready', flush=True); time.sleep(30)"
    )
    try:
        with caplog.at_level(logging.WARNING, logger="hoprec.warehouse"):
            with pytest.raises(WarehouseBusy, match=f"in use by pid {writer.pid}"):
                with connect(wh, lock_timeout=4):
                    pass
        assert f"pid {writer.pid}" in caplog.text and "waiting" in caplog.text
    finally:
        writer.kill()
        writer.wait()
    # a read-only DuckDB session left open elsewhere
    reader = _hold(
        f"import duckdb, time; c = duckdb.connect({str(wh)!r}, read_only=True)\n"
        "print('ready', flush=True); time.sleep(30)"
    )
    try:
        with pytest.raises(WarehouseBusy, match=f"open in process {reader.pid}"):
            with connect(wh):
                pass
    finally:
        reader.kill()
        reader.wait()
    # a damaged file, a directory
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"\x00garbage" * 500)
    with pytest.raises(WarehouseError, match="not a readable DuckDB database"):
        with connect(bad):
            pass
    with pytest.raises(WarehouseError, match="is a directory"):
        with connect(tmp_path):
            pass


def test_threads_of_one_process_queue_for_the_warehouse_silently(wh, caplog):
    """A flow's parallel tasks (backfill) wait for each other without the 'in use by' notice,
    which is for other processes."""
    import logging
    import threading
    import time

    from hoprec.tasks.data.warehouse import LOCK_NOTICE_S, connect

    order: list[str] = []
    entered = threading.Event()

    def hold() -> None:
        with connect(wh):
            order.append("first in")
            entered.set()
            time.sleep(LOCK_NOTICE_S + 1)
            order.append("first out")

    first = threading.Thread(target=hold)
    first.start()
    entered.wait(30)
    with caplog.at_level(logging.WARNING, logger="hoprec.warehouse"):
        with connect(wh):
            order.append("second in")
    first.join()
    assert order == ["first in", "first out", "second in"]
    assert "in use by" not in caplog.text
