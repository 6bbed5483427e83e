"""Instruction data: sample counts from the parameters, rendering, and the leakage audit."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import fake_encoder, write_sequences

from hoprec.tasks.llm.audit import LeakageError, audit_build, enforce
from hoprec.tasks.llm.instructions import InstructionParams, build_instructions
from hoprec.tasks.relations.snapshots import RelationParams, snapshot
from hoprec.tasks.sids.store import load_sids
from hoprec.tasks.sids.versions import SidParams, build_sids

rng = np.random.default_rng(11)
SEQS = [[int(i) for i in rng.integers(1, 31, size=rng.integers(2, 25))] for _ in range(40)]
N_ITEMS = 30


@pytest.fixture
def built(con):
    return make_built(con)


def make_built(con) -> dict:
    """A small prepared dataset with titles, relation snapshots (strict and not) and SIDs."""
    write_sequences(con, "syn", SEQS, n_items=N_ITEMS)
    con.executemany(
        "INSERT INTO items VALUES ('syn', ?, ?, 'a thing', ['cat'], 0)",
        [(str(i), f"Movie {i}") for i in range(1, N_ITEMS + 1)],
    )
    p = RelationParams(top_k=10)
    sem = snapshot(con, "syn", "semantic", params=p, encoder=fake_encoder)
    co = snapshot(con, "syn", "cooccurrence", params=p, semantic_id=sem.snapshot_id)
    strict = snapshot(
        con,
        "syn",
        "cooccurrence",
        params=RelationParams(top_k=10, strict=True),
        semantic_id=sem.snapshot_id,
    )
    sids = build_sids(con, "syn", SidParams(), encoder=fake_encoder)
    return {
        "sid_version": sids.sid_version,
        "cooccurrence_snapshot": co.snapshot_id,
        "semantic_snapshot": sem.snapshot_id,
        "strict_snapshot": strict.snapshot_id,
    }


def _build(con, built, tmp_path, **kw):
    params = InstructionParams(**kw)
    return params, build_instructions(
        con,
        "syn",
        params,
        built["sid_version"],
        built["cooccurrence_snapshot"],
        built["semantic_snapshot"],
        tmp_path,
    )


def train_lengths() -> list[int]:
    """Training events per user under write_sequences' leave-one-out labels."""
    return [len(s) - 2 if len(s) >= 3 else len(s) for s in SEQS]


def test_counts_follow_the_parameters(con, built, tmp_path):
    h = 3
    params, b = _build(con, built, tmp_path, history=h, next_item="both", alignment=True)
    m = train_lengths()
    lists = con.execute(
        "SELECT count(DISTINCT src) FROM cooccurrence WHERE snapshot_id = ?",
        [built["cooccurrence_snapshot"]],
    ).fetchone()[0]
    expected = {
        "next-item": sum(max(x - 1, 0) for x in m),
        "next-item-all": sum(math.ceil((x - 1) / h) for x in m if x >= 2),
        "collaborative": lists,
        "semantic": N_ITEMS,
        "sid-to-title": N_ITEMS,
        "title-to-sid": N_ITEMS,
    }
    assert b.counts == expected
    table = pq.read_table(b.path)
    assert table.num_rows == sum(expected.values())
    assert (
        dict(zip(*np.unique(table["task"].to_numpy(zero_copy_only=False), return_counts=True)))
        == expected
    )
    # the cap: at most N a task, the same draw for the same seed, another draw for another seed
    _, capped = _build(con, built, tmp_path, max_samples=7)
    assert capped.counts == {t: min(7, n) for t, n in capped.available.items()}
    keys = lambda b_: pq.read_table(b_.path)["key"].to_pylist()  # noqa: E731
    _, again = _build(con, built, tmp_path / "again", max_samples=7)
    _, other = _build(con, built, tmp_path / "other", max_samples=7, seed=1)
    assert keys(again) == keys(capped) and keys(other) != keys(capped)


def test_samples_render_items_with_sids_and_titles(con, built, tmp_path):
    _, b = _build(con, built, tmp_path, history=3)
    sids = load_sids(con, "syn", built["sid_version"])
    t = pq.read_table(b.path).to_pylist()
    user1 = [r for r in t if r["task"] == "next-item" and r["user_idx"] == 1]
    train = SEQS[0][: train_lengths()[0]]
    last = user1[-1]
    assert last["target_items"] == [train[-1]] and last["input_items"] == train[-4:-1]
    prompt, answer = last["messages"][0]["content"], last["messages"][1]["content"]
    assert answer == f"[{sids[train[-1]]}] Title: Movie {train[-1]}"
    assert f"[{sids[train[-2]]}] Title: Movie {train[-2]}" in prompt
    assert [m["role"] for m in last["messages"]] == ["user", "assistant"]
    collab = next(r for r in t if r["task"] == "collaborative")
    assert len(collab["target_items"]) == 5 and collab["loss_weight"] == 1.0


def test_audit_passes_a_clean_build(con, built, tmp_path):
    params, b = _build(con, built, tmp_path, next_item="both")
    result = audit_build(con, "syn", b.path, b.sources, params.neighbors, "test")
    assert result.passed, result.checks
    assert {c["check"] for c in result.checks} >= {
        "next-item events",
        "co-occurrence counts",
        "semantic IDs",
    }


def test_audit_fails_on_a_planted_test_target(con, built, tmp_path):
    params, b = _build(con, built, tmp_path)
    table = pq.read_table(b.path).to_pylist()
    user = next(i for i, s in enumerate(SEQS, start=1) if len(s) >= 3)
    seq = SEQS[user - 1]
    planted = next(r for r in table if r["user_idx"] == user)
    planted = {**planted, "target_items": [seq[-1]], "target_pos": [len(seq)], "key": "planted"}
    pq.write_table(pa.Table.from_pylist(table + [planted], schema=pq.read_schema(b.path)), b.path)
    result = audit_build(con, "syn", b.path, b.sources, params.neighbors, "test")
    check = next(c for c in result.checks if c["check"] == "next-item events")
    assert check["violations"] == 1 and check["example"] == "planted"
    with pytest.raises(LeakageError, match="FAILED"):
        enforce(result)


def test_validation_mode_rejects_relations_that_saw_validation_targets(con, built, tmp_path):
    params, b = _build(con, built, tmp_path)
    loose = audit_build(con, "syn", b.path, b.sources, params.neighbors, "validation")
    assert not loose.passed
    assert next(c for c in loose.checks if c["check"] == "co-occurrence counts")["violations"] > 0
    strict_sources = {**b.sources, "cooccurrence_snapshot": built["strict_snapshot"]}
    strict = build_instructions(
        con,
        "syn",
        params,
        built["sid_version"],
        built["strict_snapshot"],
        built["semantic_snapshot"],
        tmp_path / "s",
    )
    assert audit_build(
        con, "syn", strict.path, strict_sources, params.neighbors, "validation"
    ).passed


def test_planted_target_fails_the_flow(wh, prefect_api, monkeypatch):
    import hoprec.tasks.llm.instructions as ins
    from hoprec.flows.instructions import instructions_flow
    from hoprec.tasks.data.warehouse import connect

    with connect(wh) as con:
        make_built(con)

    real = ins.user_task_rows

    def leaky(con_, dataset, params):
        rows = real(con_, dataset, params)
        seq = SEQS[0]
        rows["next-item"].append(
            {
                "user_idx": 1,
                "input_items": [seq[0]],
                "input_pos": [1],
                "target_items": [seq[-1]],
                "target_pos": [len(seq)],
            }
        )
        return rows

    monkeypatch.setattr(ins, "user_task_rows", leaky)
    with pytest.raises(LeakageError):
        instructions_flow(dataset="syn", warehouse=str(wh), token_stats=False)
