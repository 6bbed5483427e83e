"""Scheduled retraining: champion/challenger on validation only, stages skipped on a rerun, and
batch recommendations (ml-100k, SASRec challengers so that it runs in about a minute)."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pytest

from hoprec.flows.cli import main
from hoprec.flows.retrain import retrain_flow
from hoprec.tasks.serving.promotion import decide


def test_decide_by_hand():
    chal, champ = np.array([1.0, 0.5, 0.0, 0.0]), np.array([0.5, 0.5, 0.0, 0.0])
    d = decide("new", chal, "old", champ, margin=0.0)
    assert d.promoted and d.challenger_ndcg == 0.375 and d.champion_ndcg == 0.25
    assert d.diff_low is not None and d.diff_low <= 0.125 <= d.diff_high
    assert not decide("new", chal, "old", champ, margin=0.125).promoted  # must beat it, not tie
    assert decide("new", chal, "old", champ, margin=0.1).promoted
    assert not decide("new", champ, "old", chal, margin=0.0).promoted
    assert not decide("new", chal, "old", chal, margin=0.0).promoted  # a tie keeps the champion
    first = decide("new", chal, None, None, margin=0.0)
    assert first.promoted and "no champion" in first.reason
    with pytest.raises(ValueError, match="margin"):
        decide("new", chal, "old", champ, margin=-0.1)


@pytest.fixture(scope="module")
def rt(tmp_path_factory, prefect_api):
    """A warehouse after three retrains: a weak first champion, a better and a worse challenger."""
    wh = str(tmp_path_factory.mktemp("retrain") / "wh.duckdb")
    common = {"dataset": "ml100k", "warehouse": wh, "challenger": "sasrec", "eval_users": 0}
    runs = [
        retrain_flow(format="ml-100k", sasrec_steps=5, k=10, **common),
        retrain_flow(format="ml-100k", sasrec_steps=300, k=10, **common),
        retrain_flow(format="ml-100k", sasrec_steps=5, seed=1, k=10, **common),
    ]
    return wh, runs


def test_promotes_a_better_challenger_and_keeps_the_champion_against_a_worse(rt):
    wh, (first, better, worse) = rt
    d1, d2, d3 = (r["decision"] for r in (first, better, worse))
    assert d1["promoted"] and d1["champion_id"] is None
    assert d2["promoted"] and d2["champion_id"] == d1["challenger_id"]
    assert d2["challenger_ndcg"] > d2["champion_ndcg"] and d2["diff_low"] > 0
    assert not d3["promoted"] and d3["champion_id"] == d2["challenger_id"]
    assert d3["challenger_ndcg"] < d3["champion_ndcg"]
    assert "does not beat" in d3["reason"] and "not promoted" in worse["report"]
    with duckdb.connect(wh, read_only=True) as con:
        promoted = con.execute("SELECT model_id FROM models WHERE status = 'promoted'").fetchall()
        kept = con.execute(
            "SELECT challenger_id, champion_id, challenger_ndcg, champion_ndcg, promoted "
            "FROM model_decisions ORDER BY decided_at"
        ).fetchall()
    assert promoted == [(d2["challenger_id"],)]
    assert [(c, p) for c, _, _, _, p in kept] == [
        (d1["challenger_id"], True),
        (d2["challenger_id"], True),
        (d3["challenger_id"], False),
    ]
    assert kept[2][2:4] == pytest.approx((d3["challenger_ndcg"], d3["champion_ndcg"]))


def test_unchanged_stages_are_skipped_on_the_next_run(rt):
    _, (first, better, _) = rt
    assert not any(s["reused"] for s in first["stages"].values())
    for stage in ("ingest", "prepare", "relations", "sids"):
        assert better["stages"][stage]["reused"], stage
        assert better["stages"][stage]["key"] == first["stages"][stage]["key"]
    assert not better["stages"]["train"]["reused"]  # other settings: another model
    assert "| prepare | skipped (finished before) |" in better["report"]


def test_changing_only_test_labels_changes_no_decision(rt, tmp_path):
    from hoprec.tasks.data.warehouse import connect
    from hoprec.tasks.serving.promotion import judge_task
    from hoprec.tasks.serving.recommend import find_model

    wh, (_, better, worse) = rt
    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(wh, copy)
    with duckdb.connect(copy) as con:  # every test target becomes another item
        n = con.execute("SELECT max(item_idx) FROM item_index").fetchone()[0]
        con.execute(f"UPDATE sequences SET item_idx = item_idx % {n} + 1 WHERE split = 'test'")
    decisions = []
    for path in (wh, copy):
        with connect(path) as con:
            chal = find_model(con, "ml100k", model_id=worse["decision"]["challenger_id"])
            champ = find_model(con, "ml100k", champion=True)
        snaps = better["stages"]["relations"]["ids"]
        out = judge_task.fn(path, "ml100k", chal, champ, snaps, 0, 0.0, 10, None)
        decisions.append(out["decision"])
    same = ("promoted", "challenger_ndcg", "champion_ndcg", "diff_low", "diff_high")
    assert [decisions[0][k] for k in same] == [decisions[1][k] for k in same]


def test_recommendations_of_the_champion_and_of_a_baseline(rt, capsys, tmp_path):
    wh, (_, better, _) = rt
    champion = better["decision"]["challenger_id"]
    assert main(["recommend", "--dataset", "ml100k", "--warehouse", wh, "--model",
                 "popularity", "--k", "15"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Top-15 for 943 users" in out and "| 943 | 14,145 |" in out
    with duckdb.connect(wh, read_only=True) as con:
        for model, k in ((champion, 10), ("ml100k-popularity", 15)):
            users, rows, ranks = con.execute(
                "SELECT count(DISTINCT user_id), count(*), max(rank) FROM recommendations "
                "WHERE model_id = ?",
                [model],
            ).fetchone()
            assert (users, rows, ranks) == (943, 943 * k, k)
            seen = con.execute(  # no history item is recommended
                "SELECT count(*) FROM recommendations r JOIN item_index i "
                "ON i.dataset = r.dataset AND i.item_id = r.item_id JOIN sequences s "
                "ON s.dataset = r.dataset AND s.user_id = r.user_id AND s.item_idx = i.item_idx "
                "WHERE r.model_id = ?",
                [model],
            ).fetchone()[0]
            assert seen == 0
    users = tmp_path / "users.txt"
    users.write_text("1\n# a comment\nnobody\n2\n1\n")
    assert main(["recommend", "--dataset", "ml100k", "--warehouse", wh, "--users", str(users),
                 "--k", "5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Top-5 for 3 users" in out and "1 listed user(s) are not in the prepared data" in out
    assert main(["recommend", "--dataset", "ml100k", "--warehouse", wh, "--model", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_an_llm_challenger_trains_on_validation_clean_data(rt, tiny_base):
    wh, (_, better, _) = rt
    out = retrain_flow(dataset="ml100k", warehouse=wh, challenger="llm", base=tiny_base,
                       steps=2, eval_users=20, recommend=False)  # fmt: skip
    d = out["decision"]
    assert d["champion_id"] == better["decision"]["challenger_id"] and d["users"] == 20
    assert not d["promoted"]  # two steps of a random tiny model lose to SASRec
    assert out["stages"]["instructions"]["build_id"] and not out["stages"]["train"]["reused"]
    with duckdb.connect(wh, read_only=True) as con:
        mode, kind = con.execute(
            "SELECT b.audit_json::JSON->>'mode', m.kind FROM models m JOIN instruction_builds b "
            "USING (build_id) WHERE m.model_id = ?",
            [d["challenger_id"]],
        ).fetchone()
    assert (mode, kind) == ("validation", "llm-lora")
    assert out["pngs"]["training"] and "Training curve" in out["report"]


def test_a_rerun_after_a_crash_skips_what_finished(rt, monkeypatch):
    import hoprec.flows.retrain as flow_module

    wh = rt[0]
    args = {"dataset": "ml100k", "warehouse": wh, "challenger": "sasrec", "sasrec_steps": 7}
    real = flow_module.judge_task

    def crash(*_a, **_k):
        raise RuntimeError("the machine went down")

    monkeypatch.setattr(flow_module, "judge_task", crash)
    with pytest.raises(RuntimeError, match="went down"):
        retrain_flow(**args)
    monkeypatch.setattr(flow_module, "judge_task", real)
    out = retrain_flow(**args)
    assert out["stages"]["train"]["reused"] and not out["stages"]["judge"]["reused"]
    assert "was skipped: this is the report of the run that did it" in out["report"]


def test_a_model_of_another_item_catalogue_is_refused(rt, tmp_path, capsys):
    wh, (_, better, _) = rt
    champion = better["decision"]["challenger_id"]
    copy = str(tmp_path / "moved.duckdb")
    shutil.copy(wh, copy)
    with duckdb.connect(copy) as con:  # a new item sorted first: every index moves by one
        con.execute("UPDATE item_index SET item_idx = item_idx + 1 WHERE dataset = 'ml100k'")
        con.execute("INSERT INTO item_index VALUES ('ml100k', '0', 1)")
    assert main(["recommend", "--dataset", "ml100k", "--warehouse", copy, "--model",
                 champion]) == 2  # fmt: skip
    assert "trained on another item catalogue" in capsys.readouterr().err
