"""Broken files: every good row loads, every bad row is quarantined with line and reason,
and fatal problems name the file and the column."""

from __future__ import annotations

import json

import pytest

from hoprec.tasks.data.ingest import IngestError
from tests.helpers import ingest, rows, write


def _quarantined(con) -> list[tuple]:
    return rows(con, "SELECT line_no, reason FROM quarantine ORDER BY line_no")


def test_broken_tsv_rows(con, tmp_path):
    lines = [
        "1\t10\t5\t881250949",  # 1 good
        "2\t11\t4\tnot-a-time",  # 2 unparseable timestamp
        "\t12\t3\t881250950",  # 3 empty user id
        "3\t13\tfive\t881250951",  # 4 wrong type rating
        "4\t14\t3",  # 5 truncated line
        "",  # 6 blank: ignored
        "5\t15\t2\t881250952",  # 7 good
        "6\t16\t1\t88125",  # 8 truncated at end of file: still a valid epoch second
    ]
    write(tmp_path / "u.data", "\n".join(lines))
    (res,) = ingest(con, "d", "ml-100k", tmp_path / "u.data")
    assert (res.rows_loaded, res.rows_quarantined) == (3, 4)
    got = _quarantined(con)
    assert [g[0] for g in got] == [2, 3, 4, 5]
    assert got[0][1].startswith("unparseable timestamp not-a-time")
    assert got[1][1] == "empty user_id"
    assert got[2][1] == "rating is not a number: five"
    assert got[3][1].startswith("expected 4 fields, found 3")
    raw = rows(con, "SELECT raw, path FROM quarantine WHERE line_no = 4")[0]
    assert raw[0] == "3\t13\tfive\t881250951" and raw[1].endswith("u.data")
    assert rows(con, "SELECT rows_read, rows_loaded, rows_quarantined FROM ingest_batches") == [
        (7, 3, 4)
    ]


def test_broken_json_lines(con, tmp_path):
    good = {"reviewerID": "A", "asin": "B", "overall": 5, "unixReviewTime": 1400000000}
    lines = [
        json.dumps(good),
        '{"reviewerID": "C", "asin": "D", "overall": 5, "unixRevi',  # truncated
        "[1, 2]",  # not an object
        json.dumps({**good, "asin": ""}),  # empty item id
        json.dumps({**good, "unixReviewTime": "yesterday"}),  # bad timestamp
        json.dumps({**good, "reviewerID": "E"}),
    ]
    write(tmp_path / "r.json.gz", "\n".join(lines) + "\n")
    (res,) = ingest(con, "d", "amazon-2018", tmp_path / "r.json.gz")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 4)
    reasons = dict(_quarantined(con))
    assert reasons[2].startswith("broken JSON")
    assert reasons[3] == "record is not a JSON object"
    assert reasons[4] == "empty item_id"
    assert reasons[5].startswith("unparseable timestamp")


def test_broken_python_literal_meta(con, tmp_path):
    write(
        tmp_path / "meta_X.json",
        "{'asin': 'A1', 'title': 'ok'}\n{'asin': 'A2', 'title': \n{'asin': 'A3'}\n",
    )
    (res,) = ingest(con, "d", "amazon-2014", tmp_path / "meta_X.json")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 1)
    assert _quarantined(con)[0][0] == 2 and "Python literal" in _quarantined(con)[0][1]


def test_invalid_utf8_and_unbalanced_quotes(con, tmp_path):
    text = (
        b"userId,movieId,rating,timestamp\n1,2,3.0,881250100\n1,3,\xff\xfe,881250101\n"
        b'1,"4,3.0,881250102\n1,5,2.0,881250103\n'
    )
    write(tmp_path / "ratings.csv", text)
    (res,) = ingest(con, "d", "ml-latest", tmp_path / "ratings.csv")
    assert (res.rows_loaded, res.rows_quarantined) == (2, 2)
    got = _quarantined(con)
    assert got[0][0] == 3 and "invalid bytes" in got[0][1]
    assert got[1] == (4, "unbalanced quotes")
    # line numbers after a rejected line still match the file
    assert rows(con, "SELECT item_id FROM interactions ORDER BY ts") == [("2",), ("5",)]


def test_line_numbers_after_many_rejects(con, tmp_path):
    body = []
    for i in range(1, 301):
        body.append(b"\xff\xff" if i % 7 == 0 else f"{i}\t1\t1\tbad{i}".encode())
    write(tmp_path / "u.data", b"\n".join(body) + b"\n")
    ingest(con, "d", "ml-100k", tmp_path / "u.data")
    got = rows(con, "SELECT line_no, raw FROM quarantine WHERE raw IS NOT NULL ORDER BY line_no")
    assert all(raw.startswith(f"{line}\t") for line, raw in got)
    assert len(got) == 300 - 300 // 7


def test_missing_file_fails_fast(con, tmp_path):
    with pytest.raises(IngestError, match="nope.csv"):
        ingest(con, "d", "ml-latest", tmp_path / "nope.csv")


def test_missing_required_column_names_it(con, tmp_path):
    write(tmp_path / "ratings.csv", "userId,rating,timestamp\n1,3.0,100\n")
    with pytest.raises(IngestError, match=r"ratings.csv.*'movieId'"):
        ingest(con, "d", "ml-latest", tmp_path / "ratings.csv")
    assert rows(con, "SELECT count(*) FROM ingest_batches") == [(0,)]


def test_mapped_column_missing_names_it(con, tmp_path):
    write(tmp_path / "e.csv", "u,i,t\n1,2,3\n")
    with pytest.raises(IngestError, match=r"e.csv.*'who'"):
        ingest(
            con,
            "d",
            "csv",
            tmp_path / "e.csv",
            mapping={"user_id": "who", "item_id": "i", "ts": "t"},
        )


def test_json_field_missing_everywhere_is_fatal(con, tmp_path):
    write(tmp_path / "r.json", json.dumps({"asin": "B", "overall": 5, "unixReviewTime": 1}) + "\n")
    with pytest.raises(IngestError, match=r"\$\.reviewerID"):
        ingest(con, "d", "amazon-2018", tmp_path / "r.json")


def test_wrong_format_is_fatal(con, tmp_path):
    write(tmp_path / "ratings.dat", "1,2,3,4\n5,6,7,8\n")
    with pytest.raises(IngestError, match="is --format right"):
        ingest(con, "d", "ml-1m", tmp_path / "ratings.dat")


def test_unknown_format(con):
    with pytest.raises(IngestError, match="known formats"):
        ingest(con, "d", "netflix")
