"""The broken-file corpus (`tests/corpus/`): every class of bad input the hardening issue
named, each ingested alone, with its expected loaded, quarantined and failed counts and the
reasons a user will read. Run like the ingest flow's task does (`ingest_or_record`), so a
file that cannot be read becomes a failed batch rather than an exception."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hoprec.tasks.data.formats import generic_source
from hoprec.tasks.data.ingest import get_format, ingest_or_record, plan_files
from tests.helpers import rows

CORPUS = Path(__file__).parent / "corpus"
CASES: dict[str, dict] = tomllib.loads((CORPUS / "cases.toml").read_text())


def test_every_corpus_folder_has_a_case_and_every_case_a_file():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(CASES)
    assert all(any((CORPUS / name).iterdir()) for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name, con):
    case = CASES[name]
    fmt = get_format(case["format"])
    override = (
        generic_source(
            fmt,
            case.get("kind", "interactions"),
            case.get("map", {}),
            case.get("ts_unit", "s"),
            None,
            case.get("encoding"),
        )
        if fmt.generic
        else None
    )
    results = [
        ingest_or_record(con, "d", case["format"], src, path, ts_unit=case.get("ts_unit"))
        for path, src in plan_files(fmt, [CORPUS / name], override)
    ]
    got = {
        "loaded": sum(r.rows_loaded for r in results),
        "quarantined": sum(r.rows_quarantined for r in results),
        "failed": sum(r.status == "failed" for r in results),
    }
    if "duplicates" in case["expect"]:
        got["duplicates"] = sum(r.rows_duplicate for r in results)
    assert got == case["expect"], case["about"]
    # what was counted is what is stored
    stored = rows(con, "SELECT count(*) FROM interactions")[0][0]
    stored += rows(con, "SELECT count(*) FROM items")[0][0]
    assert stored == got["loaded"]
    assert rows(con, "SELECT count(*) FROM quarantine")[0][0] == got["quarantined"]
    reasons = [r for (r,) in rows(con, "SELECT reason FROM quarantine ORDER BY line_no")]
    for wanted in case.get("reasons", []):
        assert any(wanted in r for r in reasons), (wanted, reasons)
    notes = " ".join(r.note for r in results)
    assert case.get("note", "") in notes, notes
    if "users" in case:
        assert sorted(u for (u,) in rows(con, "SELECT user_id FROM interactions")) == case["users"]
    failed = rows(con, "SELECT count(*) FROM ingest_batches WHERE error IS NOT NULL")[0][0]
    assert failed == got["failed"]
