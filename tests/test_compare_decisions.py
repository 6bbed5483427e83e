"""`hoprec compare` decides on validation only: changing nothing but the test labels changes
no decision (fusion grids, promotion, its seed, validation figures), while the test figures
do change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import write_sequences

from hoprec.tasks.data.warehouse import connect

rng = np.random.default_rng(7)
SEQS = [[int(i) for i in rng.integers(1, 31, size=rng.integers(6, 16))] for _ in range(40)]


def _decisions(result: dict) -> tuple:
    return (
        [run["fusion"] for run in result["runs"]],
        result["promoted"],
        [run["valid"]["rows"] for run in result["runs"]],
        result["build"]["build_id"],
    )


def _synthetic(tmp_path) -> tuple[str, dict]:
    """A small warehouse with relations, SIDs and an instruction build: (path, build)."""
    from hoprec.flows.instructions import instructions_flow
    from hoprec.flows.relations import relations_flow
    from hoprec.flows.sids import sids_flow

    wh = str(tmp_path / "d.duckdb")
    with connect(wh) as con:
        write_sequences(con, "syn", SEQS, n_items=30)
        con.executemany(
            "INSERT INTO items VALUES ('syn', ?, ?, 'a thing', ['cat'], 0)",
            [(str(i), f"Movie {i}") for i in range(1, 31)],
        )
    ids = relations_flow(dataset="syn", warehouse=wh)["ids"]
    sids = sids_flow(dataset="syn", warehouse=wh)
    given = instructions_flow(
        dataset="syn",
        warehouse=wh,
        history=5,
        sid_version=sids["sid_version"],
        cooccurrence_snapshot=ids["cooccurrence"],
        semantic_snapshot=ids["semantic"],
        token_stats=False,
    )
    return wh, given


def test_test_labels_change_no_decision(tmp_path, prefect_api, tiny_base):
    from hoprec.flows.compare import compare_flow

    wh, given = _synthetic(tmp_path)
    args = dict(
        dataset="syn",
        warehouse=wh,
        build_id=given["build_id"],
        base=tiny_base,
        steps=2,
        seeds=[0, 1],
        eval_users=0,
        sasrec_steps=5,
        tiger_steps=5,
        full_relations=True,
        num_beams=5,  # constrained and free (IIRG's 20 is the default): a quicker test
        free_generation=True,
    )
    first = compare_flow(**args)
    with connect(wh) as con:  # every test target becomes another item
        con.execute(
            "UPDATE sequences SET item_idx = item_idx % 30 + 1 "
            "WHERE dataset = 'syn' AND split = 'test'"
        )
    second = compare_flow(**args)
    assert _decisions(first) == _decisions(second)
    assert [r["eval"]["rows"] for r in first["runs"]] != [r["eval"]["rows"] for r in second["runs"]]
    # the LLMs were judged on a build that never saw a validation event
    assert first["build"]["audit"]["mode"] == "validation"
    assert first["build"]["build_id"] != given["build_id"]
    assert set(first["runs"][0]["fusion"]) == {"fusion(sasrec+llm-iirg)", "fusion(sasrec+tiger)"}
    # llm-iirg-full (co-occurrence with validation events) is reported on test, never judged
    test_models = {r["model"] for r in first["runs"][0]["eval"]["rows"]}
    valid_models = {r["model"] for r in first["runs"][0]["valid"]["rows"]}
    assert "llm-iirg-full" in test_models and "llm-iirg-full" not in valid_models
    assert "llm-iirg-full" in first["report"] and "validation-clean twin" in first["report"]
    # IIRG's own evaluation of every LLM, next to constrained decoding, with its invalid rate
    gen = first["runs"][0]["generation"]
    assert set(gen["valid"]) == {"llm-next-item", "llm-iirg"}
    assert set(gen["test"]) == {"llm-next-item", "llm-iirg", "llm-iirg-full"}
    assert {"llm-iirg@free", "llm-iirg-full@free"} <= test_models
    assert 0 <= gen["test"]["llm-iirg"]["invalid_rate"] <= 1
    assert gen["test"]["llm-iirg"]["sequences"] == 5 * gen["test"]["llm-iirg"]["users"]
    assert "invalid SID rate" in first["report"]
    assert first["promoted"]["promoted"] is None or "@free" not in first["promoted"]["reason"]


def test_compare_trains_simgr_and_draws_learning_curves(tmp_path, prefect_api, tiny_base):
    """SimGR LLMs in compare: ranked by cosine (no free generation: they write no SIDs), their
    validation checks drawn as learning curves next to SASRec's line."""
    from hoprec.flows.compare import compare_flow

    wh, given = _synthetic(tmp_path)
    out = compare_flow(
        dataset="syn",
        warehouse=wh,
        build_id=given["build_id"],
        base=tiny_base,
        steps=2,
        eval_users=0,
        sasrec_steps=5,
        tiger_steps=0,
        llms=["iirg"],
        fusion=False,
        objective="simgr",
        select_every=1,
        select_users=20,
    )
    run = out["runs"][0]
    assert run["generation"] == {} and "@free" not in out["report"]
    assert "ranked by cosine" in out["report"]
    checks = run["curves"]["llm-iirg"]
    assert [c["step"] for c in checks] == [1, 2] and all("seconds" in c for c in checks)
    assert "Learning curves" in out["report"] and "sasrec" in out["report"]
    meta = json.loads((Path(run["models"]["llm-iirg"]) / "hoprec_model.json").read_text())
    assert meta["objective"] == "simgr"


@pytest.mark.slow
def test_ml100k_test_labels_change_no_decision(tmp_path, prefect_api, tiny_base):
    """The same on ml-100k: the demo's data pipeline, then compare twice around a shuffle of
    every test target (pytest --run-slow -k ml100k_test_labels)."""
    from hoprec.flows.compare import compare_flow
    from hoprec.flows.demo import demo_flow

    wh = str(tmp_path / "ml.duckdb")
    build = demo_flow(warehouse=wh, llm_steps=0)["instructions"]["build_id"]
    args = dict(
        dataset="ml100k",
        warehouse=wh,
        build_id=build,
        base=tiny_base,
        steps=2,
        seeds=[0, 1],
        eval_users=200,
        sasrec_steps=30,
        tiger_steps=30,
    )
    first = compare_flow(**args)
    with connect(wh) as con:  # each test target moves to another user's test target
        con.execute(
            "UPDATE sequences s SET item_idx = o.item_idx FROM ("
            "  SELECT user_idx, lead(item_idx, 1, first_item) OVER (ORDER BY user_idx) AS item_idx"
            "  FROM (SELECT user_idx, item_idx, first(item_idx) OVER (ORDER BY user_idx) AS"
            "        first_item FROM sequences WHERE dataset = 'ml100k' AND split = 'test')"
            ") o WHERE s.dataset = 'ml100k' AND s.split = 'test' AND s.user_idx = o.user_idx"
        )
    second = compare_flow(**args)
    assert _decisions(first) == _decisions(second)
    assert [r["eval"]["rows"] for r in first["runs"]] != [r["eval"]["rows"] for r in second["runs"]]
    print(
        "decisions:",
        first["promoted"],
        {k: (v["k"], v["tau"]) for k, v in first["runs"][0]["fusion"].items()},
    )


def test_llms_and_sid_init_options_parse_and_a_typo_fails_before_training(capsys):
    from hoprec.flows.cli import build_parser

    parse = build_parser().parse_args
    args = parse(["compare", "--dataset", "d", "--llms", "iirg", "--sid-init", "spread"])
    assert args.llms == ["iirg"] and args.sid_init == "spread"
    assert parse(["train", "--dataset", "d", "--sid-init", "spread"]).sid_init == "spread"
    assert parse(["compare", "--dataset", "d", "--simgr-center"]).simgr_center is True
    with pytest.raises(SystemExit):
        parse(["compare", "--dataset", "d", "--llms", "iirg,sasrec"])
    err = capsys.readouterr().err
    assert "unknown LLM variant(s) ['sasrec']; choose from next-item, iirg" in err
    with pytest.raises(SystemExit):
        parse(["train", "--dataset", "d", "--sid-init", "zeros"])
