"""No bad value loads silently: each class of value that used to load wrong is now converted
or quarantined with a reason, and every good row still loads."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from tests.helpers import ingest, rows, write


def _reasons(con) -> list[tuple]:
    return rows(con, "SELECT line_no, reason FROM quarantine ORDER BY line_no")


def _mapping() -> dict[str, str]:
    return {"user_id": "u", "item_id": "i", "ts": "t", "rating": "r"}


def test_iso_offsets_are_honoured_as_utc(con, tmp_path):
    write(
        tmp_path / "e.csv",
        "u,i,t\na,1,2020-01-01T10:00:00+02:00\nb,1,2020-01-01 10:00\n"
        "c,1,2020-01-01T10:00:00Z\nd,1,2020-01-01T10:00:00-0530\ne,1,2020-01-01 10:00 +02:00\n",
    )
    (res,) = ingest(
        con,
        "d",
        "csv",
        tmp_path / "e.csv",
        mapping={"user_id": "u", "item_id": "i", "ts": "t"},
        ts_unit="iso",
    )
    got = dict(rows(con, "SELECT user_id, ts FROM interactions"))
    assert got["a"] == datetime(2020, 1, 1, 8, 0)  # 10:00 at +02:00 is 08:00 UTC
    assert got["b"] == datetime(2020, 1, 1, 10, 0)  # naive: taken as UTC
    assert got["c"] == datetime(2020, 1, 1, 10, 0)
    assert got["d"] == datetime(2020, 1, 1, 15, 30)
    # an offset it cannot read is not dropped silently: the row is quarantined
    assert res.rows_quarantined == 1 and _reasons(con)[0][1].startswith("unparseable timestamp")


def test_ratings_must_be_finite(con, tmp_path):
    write(
        tmp_path / "r.csv",
        "u,i,t,r\na,1,881250949,4\na,2,881250949,NaN\na,3,881250949,inf\na,4,881250949,-Infinity\n",
    )
    (res,) = ingest(con, "d", "csv", tmp_path / "r.csv", mapping=_mapping())
    assert (res.rows_loaded, res.rows_quarantined) == (1, 3)
    assert [r for _, r in _reasons(con)] == [
        "rating is not finite: NaN",
        "rating is not finite: inf",
        "rating is not finite: -Infinity",
    ]


def test_json_ids_must_be_strings_or_integers(con, tmp_path):
    recs = [
        {"u": 7, "i": "x", "t": 881250949},
        {"u": {"id": 7}, "i": "x", "t": 881250949},
        {"u": [7], "i": "x", "t": 881250949},
        {"u": "a", "i": True, "t": 881250949},
        {"u": "a", "i": 1.5, "t": 881250949},
    ]
    write(tmp_path / "e.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n")
    (res,) = ingest(
        con, "d", "jsonl", tmp_path / "e.jsonl", mapping={"user_id": "u", "item_id": "i", "ts": "t"}
    )
    assert (res.rows_loaded, res.rows_quarantined) == (1, 4)
    assert [r for _, r in _reasons(con)] == [
        "user_id is a JSON object, not a string or integer",
        "user_id is a JSON array, not a string or integer",
        "item_id is a JSON boolean, not a string or integer",
        "item_id is a JSON double, not a string or integer",
    ]
    assert rows(con, "SELECT user_id FROM interactions") == [("7",)]


def test_tabs_are_trimmed_from_ids(con, tmp_path):
    write(tmp_path / "e.csv", "u,i,t\n\ta ,\t1\t,881250949\n")
    ingest(con, "d", "csv", tmp_path / "e.csv", mapping={"user_id": "u", "item_id": "i", "ts": "t"})
    assert rows(con, "SELECT user_id, item_id FROM interactions") == [("a", "1")]


def test_implausible_timestamps_are_quarantined(con, tmp_path):
    lines = [
        "1\t1\t3\t881250949",
        "1\t2\t3\t0",
        "1\t3\t3\t-5",
        "1\t4\t3\t32503680000",
        "1\t5\t3\t881250950",
    ]  # good, epoch zero, negative, year 3000, good
    write(tmp_path / "u.data", "\n".join(lines) + "\n")
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.data")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 3)
    assert all("outside 1970-01-02 .. 2100-01-01" in r for _, r in _reasons(con))
    assert [n for n, _ in _reasons(con)] == [2, 3, 4]


def test_milliseconds_read_as_seconds_are_named(con, tmp_path):
    write(tmp_path / "u.data", "1\t1\t3\t881250949000\n1\t2\t3\t881250950000\n")
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.data")
    assert (res.rows_loaded, res.rows_quarantined) == (0, 2)
    assert "--ts-unit ms" in res.note
    (again,) = ingest(con, "e", "ml-100k", tmp_path / "u.data", ts_unit="ms")
    assert again.rows_loaded == 2 and again.note == ""


def test_a_nul_byte_quarantines_the_whole_line(con, tmp_path):
    write(tmp_path / "u.data", b"1\t1\t3\t881250949\n2\t2\x00\t3\t881250950\n3\t3\t3\t881250951\n")
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.data")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 1)
    assert _reasons(con) == [(2, "line contains a NUL byte")]
    assert rows(con, "SELECT raw FROM quarantine") == [("2\t2\\0\t3\t881250950",)]
    assert rows(con, "SELECT user_id FROM interactions ORDER BY 1") == [("1",), ("3",)]


def test_nul_bytes_in_gzip_files_too(con, tmp_path):
    write(tmp_path / "u.data.gz", b"1\t1\t3\t881250949\n\x00\n3\t3\t3\t881250951\n")
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.data.gz")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 1)


def test_names_stay_inside_the_state_directory(con, tmp_path):
    import pytest

    from hoprec.tasks.data.prepare import PrepareParams, prepare
    from hoprec.tasks.settings import checked_name, stage_dir

    con.execute(
        "INSERT INTO interactions VALUES ('../../x', 'u', 'i', TIMESTAMP '2000-01-01', NULL, 0, 1)"
    )
    with pytest.raises(ValueError, match="dataset name '../../x' is not allowed"):
        prepare(con, "../../x", PrepareParams(k_core=1))
    for bad in ("../x", "/etc", ".hidden", "a/b", "", "a b"):
        with pytest.raises(ValueError):
            stage_dir("prepared", bad)
    assert checked_name("ml-100k_v2.1") == "ml-100k_v2.1"


def test_latin1_control_bytes_load_and_undecodable_lines_are_set_aside(con, tmp_path):
    # ml-100k's u.item is latin-1; a byte in 0x80-0x9F used to abort the whole run
    genres = "|".join(["0"] * 19)
    write(
        tmp_path / "u.item",
        b"1|Caf\x80 Society (1995)|01-Jan-1995||http://x|"
        + genres.encode()
        + b"\n2|Heat (1995)|01-Jan-1995||http://y|"
        + genres.encode()
        + b"\n",
    )
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.item")
    assert res.rows_loaded == 2
    assert rows(con, "SELECT title FROM items WHERE item_id = '1'") == [("Caf\x80 Society (1995)",)]
    # in a stricter encoding the line that does not decode is quarantined, the rest loads
    write(tmp_path / "e.csv", b"u,i,t\na,1,881250949\nb,caf\xe9,881250950\nc,3,881250951\n")
    (res,) = ingest(
        con,
        "e",
        "csv",
        tmp_path / "e.csv",
        mapping={"user_id": "u", "item_id": "i", "ts": "t"},
        encoding="ascii",
    )
    assert (res.rows_loaded, res.rows_quarantined) == (2, 1)
    assert rows(con, "SELECT line_no, reason FROM quarantine WHERE batch_id = ?", res.batch_id) == [
        (3, "invalid bytes for encoding ascii (set --encoding)")
    ]


def test_a_broken_file_never_stops_the_others(tmp_path, prefect_api, capsys):
    import gzip

    import duckdb

    from hoprec.flows.cli import main

    wh = str(tmp_path / "w.duckdb")
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"u,i,t\na,1,881250949\n")[:-9])  # cut
    write(tmp_path / "b.csv", "u,i,t\nb,2,881250950\n")
    write(tmp_path / "c.csv", "u,i,t\nc,3,881250951\n")
    args = [
        "ingest",
        "--dataset",
        "d",
        "--format",
        "csv",
        "--map",
        "user_id=u",
        "--map",
        "item_id=i",
        "--map",
        "ts=t",
        "--warehouse",
        wh,
    ]
    files = [str(tmp_path / n) for n in ("a.csv.gz", "b.csv", "c.csv")]
    assert main([*args, *files]) == 1
    out, err = capsys.readouterr()
    assert "1 file(s) failed: a.csv.gz" in err and "| a.csv.gz | interactions | failed |" in out
    with duckdb.connect(wh, read_only=True) as c:
        assert c.execute("SELECT count(*) FROM interactions").fetchone() == (2,)
        error = c.execute("SELECT error FROM ingest_batches WHERE path LIKE '%a.csv.gz'").fetchone()
    assert error and "end-of-stream" in error[0]
    # fixed, the file loads on the rerun (a failed file was never marked as ingested)
    write(tmp_path / "a.csv.gz", "u,i,t\na,1,881250949\n")  # the helper gzips a .gz name
    assert main([*args, *files]) == 0
    assert "1 new and 2 skipped file(s)" in capsys.readouterr().out
    write(tmp_path / "d.csv", "u,i,t\nd,4,881250952\n")
    assert main([*args, "--encoding", "klingon", str(tmp_path / "d.csv")]) == 2
    assert "--encoding 'klingon' is not a text encoding" in capsys.readouterr().err


def test_quiet_prints_only_the_report_even_beside_an_inspect_py(tmp_path):
    import os
    import subprocess
    import sys

    f = write(tmp_path / "u.data", "1\t2\t3\t881250100\n")
    # a file named like a stdlib module in the working directory used to break every command
    write(tmp_path / "inspect.py", 'raise SystemExit("shadowed")\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHONSAFE"))}
    env["HOPREC_HOME"] = str(tmp_path / "state")
    hoprec = str(Path(sys.executable).with_name("hoprec"))
    cmd = [hoprec, "-q", "ingest", "--dataset", "d", "--format", "ml-100k", str(f)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("# Ingest of `d`") and "INFO" not in res.stdout + res.stderr


def test_empty_csv_loads_nothing_and_duplicate_headers_are_named(con, tmp_path):
    import pytest

    from hoprec.tasks.data.ingest import IngestError

    mapping = {"user_id": "u", "item_id": "i", "ts": "t"}
    write(tmp_path / "empty.csv", "")
    (res,) = ingest(con, "d", "csv", tmp_path / "empty.csv", mapping=mapping)
    assert (res.status, res.rows_read, res.rows_loaded) == ("loaded", 0, 0)
    write(tmp_path / "empty.jsonl", "")
    (res,) = ingest(con, "d", "jsonl", tmp_path / "empty.jsonl", mapping=mapping)
    assert (res.status, res.rows_loaded) == ("loaded", 0)  # the same answer for both
    write(tmp_path / "dup.csv", "u,i,t,t\na,1,881250949,5\n")
    with pytest.raises(IngestError, match=r"names \['t'\] more than once"):
        ingest(con, "d", "csv", tmp_path / "dup.csv", mapping=mapping)


def test_user_errors_are_one_line_without_traceback_unless_debug(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PYTHONSAFE"))}
    env["HOPREC_HOME"] = str(tmp_path / "state")
    hoprec = str(Path(sys.executable).with_name("hoprec"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [hoprec, *args, "prepare", "--dataset", "nothing"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    plain = run()
    assert plain.returncode == 2
    assert "hoprec prepare: error: dataset 'nothing' has no interactions" in plain.stderr
    assert "Traceback" not in plain.stdout + plain.stderr
    debug = run("--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stdout + debug.stderr


def test_quoted_newlines_are_one_record_and_line_numbers_hold(con, tmp_path):
    text = (
        "movieId,title,genres\n"
        '1,"Toy Story\n(1995)",Animation\n'  # lines 2-3: one record
        '2,"A ""quoted""\nline\nthree",Drama\n'  # lines 4-6: one record, doubled quotes inside
        '3,"stray quote,Comedy\n'  # line 7: unbalanced, stays alone
        "4,Heat,Crime\n"  # line 8: a good row right after it still loads
        '6,"Se7en\n(1995)",Thriller\n'  # lines 9-10: the stray quote does not pair with it
        "5,Casino,Crime,extra\n"  # line 11: wrong width, numbered as in the file
    )
    write(tmp_path / "movies.csv", text)
    (res,) = ingest(con, "d", "ml-latest", tmp_path / "movies.csv")
    assert (res.rows_loaded, res.rows_quarantined) == (4, 2)
    titles = dict(rows(con, "SELECT item_id, title FROM items"))
    assert titles == {
        "1": "Toy Story\n(1995)",
        "2": 'A "quoted"\nline\nthree',
        "4": "Heat",
        "6": "Se7en\n(1995)",
    }
    got = _reasons(con)
    assert got[0] == (7, "unbalanced quotes")
    assert got[1][0] == 11 and got[1][1].startswith("expected 3 fields, found 4")


def test_ids_are_trimmed_like_python_strip_on_random_padding(con, tmp_path):
    import random

    rnd = random.Random(5)
    pads = ["", " ", "\t", " \t", "\t\t "]  # (a lone \r is a line break to the reader)
    ids = [rnd.choice(pads) + rnd.choice(["a", "b c", "é!", "x\ty", "!", "z"]) + rnd.choice(pads)]
    ids += [rnd.choice(pads) + w + rnd.choice(pads) for w in ["a", "b c", "é", "!x", "~"] * 20]
    lines = [f"{u},{i},881250949" for u, i in zip(ids, reversed(ids))]
    write(tmp_path / "p.csv", "u,i,t\n" + "\n".join(lines) + "\n")
    ingest(con, "d", "csv", tmp_path / "p.csv", mapping={"user_id": "u", "item_id": "i", "ts": "t"})
    got = sorted(rows(con, "SELECT user_id, item_id FROM interactions"))
    want = sorted({(u.strip(" \t\r\n"), i.strip(" \t\r\n")) for u, i in zip(ids, reversed(ids))})
    assert got == want
