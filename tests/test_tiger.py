"""TIGER-like baseline: a tiny Llama trained from scratch on semantic IDs (tasks.tiger).

The main test is a task that needs learning: items follow a fixed successor cycle, so the next
item is fully determined by the last one. A model trained with the loss on the right tokens gets
it top-1 almost always; an untrained one (or one whose loss targets were shifted) does not.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from hoprec.tasks.recommenders.tiger import (
    BOS,
    TigerParams,
    batch_tensors,
    check_codes,
    load,
    save,
    score,
    sid_tokens,
    train_tiger,
    windows,
)
from hoprec.tasks.sids.store import code_matrix

N = 40


def synthetic(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(codes [N+1, 4], train sequences, successor) for N items on one random successor cycle."""
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    while len(seen) < N:  # distinct SIDs sharing prefixes
        seen.add((*(int(x) for x in rng.integers(0, 4, 3)), int(rng.integers(0, 2))))
    codes = np.zeros((N + 1, 4), np.int64)
    codes[1:] = rng.permutation(np.array(sorted(seen)))
    cycle = rng.permutation(np.arange(1, N + 1))
    succ = np.zeros(N + 1, np.int64)
    succ[cycle] = np.roll(cycle, -1)
    seqs = []
    for _ in range(80):
        s = [int(rng.integers(1, N + 1))]
        for _ in range(int(rng.integers(6, 16)) - 1):
            s.append(int(succ[s[-1]]))
        seqs.append(np.array(s))
    return codes, seqs, succ


FAST = TigerParams(
    hidden=32,
    layers=2,
    heads=2,
    intermediate=64,
    history=6,
    batch_size=16,
    lr=5e-3,
    warmup=20,
    max_steps=400,
    eval_every=0,
    seed=0,
    device="cpu",
)


def eval_set(succ: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """One history of 5 consecutive items ending at every item; the target is its successor."""
    hists = []
    for last in range(1, N + 1):
        h = [last]
        for _ in range(4):
            h.insert(0, int(np.flatnonzero(succ == h[0])[0]))
        hists.append(np.array(h))
    return hists, succ[[h[-1] for h in hists]]


@pytest.fixture(scope="module")
def trained():
    codes, seqs, succ = synthetic()
    return train_tiger(seqs, codes, FAST), succ


def hit_at_1(model, succ) -> float:
    hists, targets = eval_set(succ)
    s = score(model, hists, num_beams=5)
    return float((s.argmax(1) == targets).mean())


def test_learns_the_successor_cycle(trained):
    model, succ = trained
    assert model.steps == FAST.max_steps and len(model.losses) == FAST.max_steps
    assert np.mean(model.losses[-10:]) < 0.3 * np.mean(model.losses[:10])
    assert hit_at_1(model, succ) > 0.9
    untrained = train_tiger(synthetic()[1], synthetic()[0], replace(FAST, max_steps=1, lr=1e-6))
    assert hit_at_1(untrained, succ) < 0.3


def test_targets_are_the_next_tokens_from_item_two_on():
    codes = check_codes(synthetic()[0])
    tok = sid_tokens(codes)
    ids, tgt = batch_tensors([np.array([3, 7, 9]), np.array([5, 2])], tok)
    assert ids.shape == (2, 13) and ids[0, 0] == BOS and ids[1, 0] == BOS
    assert ids[0, 1:].tolist() == tok[[3, 7, 9]].reshape(-1).tolist()
    assert (tgt[:, :4] == -100).all()  # BOS and item 1's tokens: no loss
    assert tgt[0, 4:12].tolist() == ids[0, 5:13].tolist()  # items 2..3, one step ahead
    assert tgt[0, 12] == -100 and (tgt[1, 8:] == -100).all()  # nothing to predict / padding
    assert tgt[1, 4:8].tolist() == tok[2].tolist()


def test_windows_cover_every_transition_once():
    rng = np.random.default_rng(1)
    seqs = [np.arange(1, 51), np.arange(1, 4), np.array([7])]
    for _ in range(5):
        wins = windows(seqs, 6, rng)
        assert all(2 <= len(w) <= 7 for w in wins)
        pairs = sorted((int(a), int(b)) for w in wins for a, b in itertools.pairwise(w))
        expected = sorted((int(a), int(b)) for s in seqs for a, b in itertools.pairwise(s))
        assert pairs == expected


def test_scores_are_valid_items_outside_the_history(trained):
    model, _ = trained
    rng = np.random.default_rng(2)
    hists = [rng.choice(np.arange(1, N + 1), size=k, replace=False) for k in (0, 1, 5, 20, 36)]
    s = score(model, hists, num_beams=10)
    assert s.shape == (len(hists), N + 1) and s.dtype == np.float32
    assert np.isneginf(s[:, 0]).all()
    for h, row in zip(hists, s):
        finite = set(np.flatnonzero(np.isfinite(row)).tolist())
        assert finite and finite <= set(range(1, N + 1)) - set(h.tolist())
        assert len(finite) <= 10  # a beam can die on history-only prefixes
        assert (row[np.isfinite(row)] <= 0).all()  # log-probabilities


def test_same_seed_same_losses_and_save_load_round_trip(trained, tmp_path):
    codes, seqs, succ = synthetic()
    p = replace(FAST, max_steps=15)
    seen: list[tuple[int, int, float]] = []
    a = train_tiger(seqs, codes, p, progress=lambda *x: seen.append(x))
    b = train_tiger(seqs, codes, p)
    assert a.losses == b.losses and [x[2] for x in seen] == a.losses
    assert [x[:2] for x in seen] == [(i, 15) for i in range(1, 16)]
    assert train_tiger(seqs, codes, replace(p, seed=1)).losses != a.losses
    model, _ = trained
    hists, _ = eval_set(succ)
    back = load(save(model, tmp_path / "tiger.pt"), device="cpu")
    assert back.params == model.params and back.losses == model.losses
    assert np.array_equal(back.codes, model.codes)
    np.testing.assert_array_equal(score(back, hists), score(model, hists))


def test_validation_keeps_the_best_weights():
    codes, seqs, succ = synthetic()
    hists, targets = eval_set(succ)
    p = replace(FAST, max_steps=40, eval_every=20, eval_users=10)
    m = train_tiger(seqs, codes, p, valid=(hists, targets))
    assert [s for s, _ in m.valid] == [20, 40]
    assert m.best_step == max(m.valid, key=lambda v: v[1])[0]


@pytest.mark.parametrize(
    "field,value",
    [
        ("hidden", 0),
        ("heads", 3),
        ("layers", 0),
        ("history", 0),
        ("batch_size", 0),
        ("max_steps", 0),
        ("eval_every", -1),
        ("warmup", -1),
        ("dropout", 1.0),
        ("lr", 0.0),
        ("threads", -1),
        ("eval_users", 0),
    ],
)
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TigerParams(**{field: value})


def test_bad_inputs():
    codes, seqs, _ = synthetic()
    dup = codes.copy()
    dup[2] = dup[1]
    with pytest.raises(ValueError, match="distinct"):
        train_tiger(seqs, dup, FAST)
    with pytest.raises(ValueError, match="item ids"):
        train_tiger([np.array([1, N + 1])], codes, FAST)
    # SID strings are parsed by the one parser the SID store has
    assert code_matrix({1: "<a_12><b_3><c_40><d_0>"}, 1)[1].tolist() == [12, 3, 40, 0]
    with pytest.raises(ValueError, match="SID"):
        code_matrix({1: "<a_12><b_3>", 2: "<a_1><b_2><c_3><d_0>"}, 2)


def test_torch_threads_are_restored(trained):
    before = torch.get_num_threads()
    score(trained[0], [np.array([1, 2])])
    assert torch.get_num_threads() == before
