"""SASRec: evaluation inputs, learning a pattern that needs attention, causality, determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from helpers import prepare_ml100k, write_sequences

from hoprec.tasks.data.sequences import user_histories
from hoprec.tasks.evaluation.metrics import grouped_metrics
from hoprec.tasks.recommenders.sasrec import (
    SASRecNet,
    SASRecParams,
    load,
    save,
    score,
    train_sasrec,
)

# Small enough to train in seconds on 2 busy cores; the defaults are METHODS.md's.
TINY = SASRecParams(dim=32, max_len=16, dropout=0.1, batch_size=32, eval_every=0)


def interleaved(n_users: int = 100, cycle: int = 20, seed: int = 0) -> list[list[int]]:
    """Two interleaved cycles: A over items 1..cycle, B over cycle+1..2*cycle, from random
    starts. The next item is the item TWO back plus one, so the last item alone says nothing
    about it (a model without working attention is at chance, 1/cycle). Sequences are shorter
    than 2 * cycle, so no item repeats within a user."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        a, b, n = (int(v) for v in rng.integers([0, 0, 10], [cycle, cycle, 17]))
        out.append(
            [
                1 + (a + k // 2) % cycle if k % 2 == 0 else cycle + 1 + (b + k // 2) % cycle
                for k in range(n)
            ]
        )
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: a second thread buys nothing and, on a shared busy CPU, its
    spin-waiting makes each step several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    """One read-only synthetic dataset for the module (writing it costs seconds)."""
    from hoprec.tasks.data.warehouse import connect

    with connect(tmp_path_factory.mktemp("syn") / "wh.duckdb") as c:
        write_sequences(c, "syn", interleaved())
        yield c


@pytest.fixture(scope="module")
def tiny_model(syn):
    return train_sasrec(syn, "syn", SASRecParams(**{**TINY.__dict__, "max_steps": 20}))


def test_user_histories_leave_one_out(con):
    write_sequences(con, "d", [[1, 2, 3, 4, 5], [3, 1, 2], [4, 5]])  # user 3: train only
    users, hist, tgt = user_histories(con, "d", "valid")
    assert users.tolist() == [1, 2] and tgt.tolist() == [4, 1]
    assert [h.tolist() for h in hist] == [[1, 2, 3], [3]]
    users, hist, tgt = user_histories(con, "d", "test")
    assert users.tolist() == [1, 2] and tgt.tolist() == [5, 2]
    assert [h.tolist() for h in hist] == [[1, 2, 3, 4], [3, 1]]  # includes the valid item
    with pytest.raises(ValueError):
        user_histories(con, "d", "train")


def test_user_histories_temporal(con):
    """Several targets per user: one row each, history = the earlier splits' events only."""
    rows = [
        ("t", "u1", 1, 1, 7, "2000-01-01", "train"),
        ("t", "u1", 1, 2, 8, "2000-01-02", "valid"),
        ("t", "u1", 1, 3, 9, "2000-01-03", "test"),
        ("t", "u1", 1, 4, 6, "2000-01-04", "test"),
        ("t", "u2", 2, 1, 5, "2000-01-03", "test"),
    ]  # u2: no earlier event at all
    con.executemany("INSERT INTO sequences VALUES (?, ?, ?, ?, ?, CAST(? AS TIMESTAMP), ?)", rows)
    users, hist, tgt = user_histories(con, "t", "test")
    assert users.tolist() == [1, 1, 2] and tgt.tolist() == [9, 6, 5]
    assert [h.tolist() for h in hist] == [[7, 8], [7, 8], []]
    users, hist, tgt = user_histories(con, "t", "valid")
    assert users.tolist() == [1] and [h.tolist() for h in hist] == [[7]] and tgt.tolist() == [8]


def test_learns_a_pattern_that_needs_attention(syn):
    p = SASRecParams(**{**TINY.__dict__, "max_steps": 300, "eval_every": 25})
    seen = []
    t0 = time.perf_counter()
    model = train_sasrec(syn, "syn", p, log_every=100, progress=lambda *a: seen.append(a))
    assert model.steps == 300 and len(model.losses) == 300
    assert np.mean(model.losses[-20:]) < 0.3 * np.mean(model.losses[:20])
    assert [s for s, _, _ in seen] == [100, 200, 300] and seen[-1][1] == 300
    # the best valid NDCG@10 is kept, and it is what the project's metrics say for those weights
    best_step, best = max(model.valid, key=lambda v: v[1])
    assert model.best_step == best_step
    _, v_hist, v_tgt = user_histories(syn, "syn", "valid")
    m = grouped_metrics(score(model, v_hist), v_tgt, v_hist)["all"]
    assert m[("ndcg", 10)] == pytest.approx(best, abs=1e-6)
    _, hist, tgt = user_histories(syn, "syn", "test")
    hr1 = float(np.mean(score(model, hist).argmax(axis=1) == tgt))
    print(
        f"tiny SASRec: {model.steps} steps in {time.perf_counter() - t0:.1f} s, loss "
        f"{np.mean(model.losses[:20]):.2f} -> {np.mean(model.losses[-20:]):.2f}, "
        f"test HR@1 {hr1:.2f}"
    )
    assert hr1 > 0.8, hr1


def test_no_future_leakage_and_padding_invariance():
    torch.manual_seed(0)
    net = SASRecNet(40, TINY).eval()
    seq = torch.randint(1, 41, (3, TINY.max_len))
    with torch.no_grad():
        h = net(seq)
        for t in (0, 5, TINY.max_len - 2):
            changed = seq.clone()
            changed[:, t + 1 :] = torch.randint(1, 41, changed[:, t + 1 :].shape)
            assert torch.allclose(net(changed)[:, : t + 1], h[:, : t + 1], atol=1e-6)
            assert not torch.allclose(net(changed)[:, t + 1 :], h[:, t + 1 :], atol=1e-3)
        # the same history, unpadded or left-padded, encodes the same last state
        short = seq[:, -5:]
        padded = torch.cat([torch.zeros(3, TINY.max_len - 5, dtype=torch.long), short], dim=1)
        assert torch.allclose(net(short)[:, -1], net(padded)[:, -1], atol=1e-5)


def test_score_shape_padding_and_bad_ids(tiny_model):
    s = score(
        tiny_model,
        [np.array([1, 21, 2]), np.array([], dtype=np.int64), np.arange(1, 41)],
        batch_size=2,
    )
    assert s.shape == (3, 41) and s.dtype == np.float32
    assert np.all(s[:, 0] == -np.inf) and np.isfinite(s[:, 1:]).all()
    with pytest.raises(ValueError):
        score(tiny_model, [np.array([0, 41])])


def test_deterministic_and_save_load(syn, tiny_model, tmp_path):
    hist = [np.array(h) for h in interleaved(10, seed=1)]
    again = train_sasrec(syn, "syn", tiny_model.params)
    assert again.losses == tiny_model.losses
    assert np.array_equal(score(again, hist), score(tiny_model, hist))
    other = train_sasrec(syn, "syn", SASRecParams(**{**tiny_model.params.__dict__, "seed": 1}))
    assert not np.array_equal(score(other, hist), score(tiny_model, hist))
    loaded = load(save(tiny_model, tmp_path / "m" / "sasrec.pt"), device="cpu")
    assert loaded.params == tiny_model.params and loaded.n_items == 40
    assert loaded.steps == 20 and loaded.losses == tiny_model.losses
    assert np.array_equal(score(loaded, hist), score(tiny_model, hist))


def test_early_stopping_keeps_the_best(syn):
    """lr 0 never improves: patience 1 stops at the second eval, the first one's weights kept."""
    p = SASRecParams(**{**TINY.__dict__, "lr": 0.0, "eval_every": 1, "patience": 1})
    model = train_sasrec(syn, "syn", p)
    assert model.steps == 8 and [s for s, _ in model.valid] == [4, 8] and model.best_step == 4


@pytest.mark.slow
def test_ml100k_beats_popularity(con, ml100k_dir, tmp_path):
    from hoprec.tasks.recommenders.baselines import popularity, popularity_scores

    prepare_ml100k(con, ml100k_dir, tmp_path)
    _, hist, tgt = user_histories(con, "ml100k", "test")
    t0 = time.perf_counter()
    model = train_sasrec(con, "ml100k", SASRecParams(max_steps=300))
    took = time.perf_counter() - t0
    pop = popularity(con, "ml100k", "test", model.n_items)
    base = grouped_metrics(popularity_scores(pop, len(tgt)), tgt, hist)["all"]
    m = grouped_metrics(score(model, hist), tgt, hist)["all"]
    print(
        f"ml-100k test, history removed: SASRec {model.steps} steps ({took:.0f} s, best valid "
        f"step {model.best_step}) HR@10 {m[('recall', 10)]:.4f} NDCG@10 {m[('ndcg', 10)]:.4f}; "
        f"popularity HR@10 {base[('recall', 10)]:.4f} NDCG@10 {base[('ndcg', 10)]:.4f}"
    )
    assert m[("recall", 10)] > 2 * base[("recall", 10)]
    assert m[("ndcg", 10)] > 2 * base[("ndcg", 10)]
