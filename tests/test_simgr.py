"""SimGR (tasks/llm/simgr.py) on the tiny random Llama: the loss against a hand computation,
all-position training against one forward pass per prefix, and a short run that trains, saves,
reloads and scores every item by cosine / T."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hoprec.tasks.llm import simgr, simgr_scoring
from hoprec.tasks.llm.finetune import TrainParams, prepare_model, train_llm
from hoprec.tasks.llm.instructions import SCHEMA

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abc" for i in range(4)]
N_ITEMS = 12


def sid(i: int) -> str:
    """Item i (1..12) -> a distinct 3-token SID."""
    return f"<a_{i % 4}><b_{i // 4 % 4}><c_{i % 3}>"


SIDS = {i: sid(i) for i in range(1, N_ITEMS + 1)}


def params(base: str, **kw) -> TrainParams:
    return TrainParams(
        **{
            "base": base,
            "objective": "simgr",
            "max_steps": 4,
            "batch_size": 4,
            "lr": 1e-2,
            "save_every": 0,
            "log_every": 1,
            "device": "cpu",
            "temperature": 0.1,
            **kw,
        }
    )


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> str:
    """A build with next-item samples (successor i -> i % 12 + 1) and collaborative and
    semantic samples (weights 0.5 and 0.25)."""
    rows = []
    for i in range(1, N_ITEMS + 1):
        nxt = i % N_ITEMS + 1
        for task, targets, w in (
            ("next-item", [nxt], 1.0),
            ("collaborative", [nxt, (i + 1) % N_ITEMS + 1], 0.5),
            ("semantic", [(i + 5) % N_ITEMS + 1], 0.25),
        ):
            rows.append(
                {
                    "task": task,
                    "key": f"{task}:{i}",
                    "user_idx": i if task == "next-item" else None,
                    "input_items": [i],
                    "input_pos": [0],
                    "target_items": targets,
                    "target_pos": [1],
                    "messages": [
                        {"role": "user", "content": f"{task} after [{sid(i)}]?"},
                        {"role": "assistant", "content": f"[{sid(targets[0])}]"},
                    ],
                    "loss_weight": w,
                }
            )
    path = tmp_path_factory.mktemp("simgr") / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return str(path)


def sequences() -> list[np.ndarray]:
    """Users walking the successor cycle from different starts, of different lengths."""
    return [
        np.array([(s + k) % N_ITEMS + 1 for k in range(n)]) for s, n in ((0, 9), (3, 5), (7, 7))
    ]


@pytest.fixture
def tiny(tiny_base):
    model, tok, _ = prepare_model(params(tiny_base), SID_TOKENS)
    torch.manual_seed(1)
    with torch.no_grad():  # LoRA B starts at zero: make the adapters do something
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    return model.eval(), tok  # no LoRA dropout: forward passes must be comparable


@pytest.mark.parametrize("center", [False, True])
def test_loss_equals_a_hand_computation(tiny, center):
    """Centred (--simgr-center): each item vector minus the mean of all N items' vectors."""
    model, tok = tiny
    ids, mask = simgr.item_tokens(tok, SIDS)
    units = simgr.sequence_units(sequences()[:2], ids, window=3, weight=1.0)
    units += simgr.pair_units([(2, 5, 0.5), (2, 7, 0.5)], ids)
    batch = simgr.collate(units, tok.pad_token_id)
    n_target = int(batch["labels"].numel())
    assert n_target == 8 + 4 + 2  # every transition once, and both pairs
    with torch.no_grad():
        got = float(simgr.simgr_loss(model, batch, n_target + 2, ids, mask, 0.1, center))
        emb = model.get_input_embeddings()  # the LoRA token adapter's rows included
        vecs = [emb(ids[item]).double().mean(0) for item in range(1, N_ITEMS + 1)]
        mean = sum(vecs) / N_ITEMS
        want = 0.0
        for unit in units:
            hid = model.get_base_model().model(input_ids=torch.tensor([unit.ids])).last_hidden_state
            for pos, target, w in unit.targets:
                u = hid[0, pos].double()
                cos = []
                for item in range(1, N_ITEMS + 1):
                    v = vecs[item - 1]  # 3 SID tokens each: a plain mean
                    v = v - mean if center else v
                    cos.append(float(u @ v) / (float(u.norm()) * float(v.norm())))
                logits = [c / 0.1 for c in cos]
                log_z = math.log(sum(math.exp(x) for x in logits))
                want += -w * (logits[target - 1] - log_z)
    assert got == pytest.approx(want / (n_target + 2), rel=1e-4)


def test_all_positions_equal_one_forward_per_prefix(tiny):
    """One causal forward over each padded window gives the loss and gradients of one forward
    per prefix (the prefix's last hidden state as the user vector)."""
    model, tok = tiny
    model.double()  # float64: what is left is the order of summation, not rounding noise
    ids, mask = simgr.item_tokens(tok, SIDS)
    units = simgr.sequence_units(sequences(), ids, window=4, weight=1.0)
    batch = simgr.collate(units, tok.pad_token_id)
    n_target = int(batch["labels"].numel())
    trained = [p for p in model.parameters() if p.requires_grad]

    model.zero_grad()
    all_loss = simgr.simgr_loss(model, batch, n_target, ids, mask, 0.07)
    all_loss.backward()
    all_grads = [p.grad.clone() for p in trained]

    model.zero_grad()
    per_loss = torch.zeros((), dtype=torch.float64)
    for unit in units:
        for pos, target, w in unit.targets:
            prefix = simgr.collate([simgr.Unit(unit.ids[: pos + 1], [(pos, target, w)])], 0)
            loss = simgr.simgr_loss(model, prefix, n_target, ids, mask, 0.07)
            loss.backward()
            per_loss = per_loss + loss.detach()
    assert float(all_loss.detach()) == pytest.approx(float(per_loss), rel=1e-10)
    for a, b in zip(all_grads, (p.grad for p in trained)):
        # float64; summation order leaves ~1e-9 of each tensor's scale (the SID rows' grads
        # reach ~200 at T = 0.07); a wrong position would differ at order 1
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * float(a.abs().max()))
    assert any(g.abs().sum() > 0 for g in all_grads)


def test_windows_predict_each_transition_once(tiny):
    _, tok = tiny
    ids, _ = simgr.item_tokens(tok, SIDS)
    seq = np.arange(1, 11)
    units = simgr.sequence_units([seq], ids, window=4, weight=2.0)
    assert [[t for _, t, _ in u.targets] for u in units] == [[2, 3, 4, 5], [6, 7, 8, 9], [10]]
    assert all(len(u.ids) <= 5 * 3 for u in units) and units[0].targets[0][0] == 2
    assert simgr.window_items(1024, 3) == 340


def test_train_save_reload_and_score_by_cosine(tiny_base, build, tmp_path, monkeypatch):
    from hoprec.tasks.llm import scoring
    from hoprec.tasks.llm.checkpoints import load_trained

    inputs = simgr.SimgrInputs(SIDS, sequences(), window=3)  # as train_llm_task sets it
    # next-item alone: a clean successor task, so the learning check below is sharp (with the
    # pairs' competing targets the tiny model needs far more steps)
    p = params(tiny_base, max_steps=100, lr=2e-2, log_every=20, tasks=("next-item",))
    res = train_llm(build, SID_TOKENS, p, tmp_path, {"simgr_window": 3}, simgr=inputs)
    losses = [r["loss"] for r in res.history]
    assert res.steps == 100 and losses[-1] < 0.2 * losses[0], losses
    model, tok, meta = load_trained(tmp_path, "cpu", merge=True)
    assert meta["objective"] == "simgr" and meta["params"]["temperature"] == 0.1
    assert meta["params"]["positions"] == "all"
    hists = [np.array([9, 1, 2, 3]), np.array([7])]  # the first: 3 items read, 4 excluded
    monkeypatch.setattr("hoprec.tasks.sids.store.load_sids", lambda con, d, v: SIDS)
    meta_path = tmp_path / "hoprec_model.json"  # what train_llm_task's meta adds
    info = json.loads(meta_path.read_text())
    info.update(sid_version="v", build_params={"history": 5})
    meta_path.write_text(json.dumps(info))
    scores = scoring.score_trained(None, "d", str(tmp_path), hists, N_ITEMS, device="cpu")
    assert scores.shape == (2, N_ITEMS + 1) and np.isneginf(scores[:, 0]).all()
    assert np.isneginf(scores[0, [1, 2, 3, 9]]).all() and np.isneginf(scores[1, 7])
    emb = model.get_input_embeddings().weight.detach().double()
    with torch.no_grad():
        for u, h in enumerate(hists):
            toks = [
                tok.convert_tokens_to_ids(t)
                for i in h[-3:]
                for t in re.findall(r"<[^<>]+>", SIDS[int(i)])
            ]
            user = model.model(input_ids=torch.tensor([toks])).last_hidden_state[0, -1].double()
            for item in range(1, N_ITEMS + 1):
                if item in set(h.tolist()):
                    continue
                v = emb[
                    [tok.convert_tokens_to_ids(t) for t in re.findall(r"<[^<>]+>", SIDS[item])]
                ].mean(0)
                want = float(user @ v / (user.norm() * v.norm())) / 0.1
                assert scores[u, item] == pytest.approx(want, rel=1e-4, abs=1e-4)
    # it learned the cycle: from one item, its successor (the strongest target) ranks top 3
    singles = scoring.score_trained(None, "d", str(tmp_path), [[i] for i in SIDS], N_ITEMS)
    top3 = np.argsort(-singles, axis=1)[:, :3]
    hits = [i % N_ITEMS + 1 in top3[i - 1] for i in SIDS]
    assert sum(hits) >= 9, hits  # chance: 3 of 11


def test_prompt_form_trains_on_one_target_a_sample(tiny_base, build, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.add_tokens(SID_TOKENS)
    ids, _ = simgr.item_tokens(tok, SIDS)
    p = params(tiny_base, positions="prompt")
    units = simgr.training_units(build, p, tok, simgr.SimgrInputs(SIDS), ids)
    assert len(units) == 3 * N_ITEMS
    assert sorted(len(u.targets) for u in units) == [1] * 24 + [2] * 12
    opening = tok.encode("[", add_special_tokens=False)
    assert all(u.ids[-len(opening) :] == opening for u in units)
    res = train_llm(build, SID_TOKENS, p, tmp_path, simgr=simgr.SimgrInputs(SIDS))
    assert res.steps == 4 and res.samples == 3 * N_ITEMS
    # scored on the generative model's prompt (history_prompts: ends with the opening `[`)
    from hoprec.tasks.llm.checkpoints import load_trained
    from hoprec.tasks.llm.prompts import history_prompts

    model, tok, meta = load_trained(tmp_path, "cpu", merge=True)
    meta = {**meta, "build_params": {"history": 2}}
    labels = {i: f"[{s}]" for i, s in SIDS.items()}
    score = simgr_scoring.meta_scorer(model, tok, meta, SIDS, labels, N_ITEMS)
    hists = [np.array([4, 5, 6]), np.array([2])]
    out = score(hists)
    ids, mask = simgr.item_tokens(tok, SIDS)
    with torch.no_grad():
        items = simgr.item_vectors(model, ids, mask)
        for u, q in enumerate(history_prompts(tok, hists, labels, 2)):
            user = model.model(input_ids=torch.tensor([q])).last_hidden_state[0, -1]
            want = simgr.cosine_logits(user[None], items, 0.1)[0].numpy()
            keep = [i for i in range(1, N_ITEMS + 1) if i not in hists[u]]
            np.testing.assert_allclose(out[u, keep], want[np.array(keep) - 1], rtol=1e-4, atol=1e-4)


def test_all_form_takes_sequences_and_weighted_pairs_and_trains_full(tiny_base, build, tmp_path):
    """The all form: one window per user plus one unit per (item, task) of the IIRG tasks, at
    the tasks' build weights; full fine-tuning trains, saves and reloads."""
    from transformers import AutoTokenizer

    from hoprec.tasks.llm.checkpoints import load_trained

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.add_tokens(SID_TOKENS)
    ids, _ = simgr.item_tokens(tok, SIDS)
    inputs = simgr.SimgrInputs(SIDS, sequences())
    units = simgr.training_units(build, params(tiny_base), tok, inputs, ids)
    weights = sorted({w for u in units for _, _, w in u.targets})
    assert len(units) == 3 + 2 * N_ITEMS and weights == [0.25, 0.5, 1.0]
    assert sum(len(u.targets) for u in units) == (8 + 4 + 6) + 2 * N_ITEMS + N_ITEMS
    p = params(tiny_base, mode="full", max_steps=2, lr=1e-3)
    res = train_llm(build, SID_TOKENS, p, tmp_path, simgr=inputs)
    model, tok, meta = load_trained(tmp_path, "cpu")
    assert res.steps == 2 and meta["mode"] == "full" and meta["objective"] == "simgr"
    score = simgr_scoring.simgr_scorer(
        model, tok, SIDS, N_ITEMS, 0.1, simgr_scoring.sid_renderer(tok, SIDS, 5), device="cpu"
    )
    out = score([np.array([1, 2]), np.array([], dtype=np.int64)])
    assert np.isfinite(out[:, 3:]).all() and np.isneginf(out[0, :3]).all()
    with pytest.raises(ValueError, match="SIDs"):
        train_llm(build, SID_TOKENS, p, tmp_path / "none")


def test_params_name_the_problem():
    with pytest.raises(ValueError, match="objective"):
        TrainParams(objective="contrastive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        TrainParams(objective="simgr", temperature=0)
    assert "objective" not in TrainParams().identity()  # generative run ids do not move
    assert TrainParams(objective="simgr").identity()["temperature"] == 0.07


def test_cli_and_report_name_the_objective():
    from hoprec.flows.cli import build_parser
    from hoprec.flows.train import _objective, train_params, train_report

    args = ["train", "--dataset", "x", "--objective", "simgr", "--temperature", "0.05"]
    ns = vars(build_parser().parse_args([*args, "--simgr-positions", "prompt"]))
    assert (ns["objective"], ns["temperature"], ns["simgr_positions"]) == ("simgr", 0.05, "prompt")
    assert "objective" not in vars(build_parser().parse_args(["train", "--dataset", "x"]))
    p = train_params(objective="simgr", temperature=0.05, positions="prompt")
    row = {
        "model_id": "m",
        "kind": "llm-lora",
        "base": "b",
        "build_id": "bid",
        "sid_version": "v",
        "tasks": "next-item",
        "steps": 1,
        "history": [],
        "path": "p",
        "objective": _objective(p),
    }
    assert "objective SimGR (cosine softmax, T = 0.05, prompt positions)" in train_report(row)


def test_temperature_grid_keeps_the_best_on_validation(monkeypatch):
    import hoprec.flows.train as ft

    seen = []

    def fake_task(warehouse, dataset, build_id, params, force):
        seen.append((params.temperature, params.select_every))
        score = {0.03: 0.01, 0.07: 0.05, 0.2: 0.02}[params.temperature]
        return {"model_id": f"m{params.temperature}", "validation": [{"ndcg@10": score}]}

    monkeypatch.setattr(ft, "train_llm_task", fake_task)
    p = ft.train_params(steps=7, objective="simgr")
    result = ft._temperature_grid("wh", "d", None, p, False, [0.03, 0.07, 0.2])
    assert seen == [(0.03, 7), (0.07, 7), (0.2, 7)]  # each run checked on validation
    assert result["model_id"] == "m0.07" and "T = 0.07" in result["objective"]
    assert [g["temperature"] for g in result["grid"]] == [0.03, 0.07, 0.2]
    assert "| 0.07 | 0.05 | m0.07 |" in "\n".join(ft._grid_lines(result))
    with pytest.raises(ValueError, match="simgr"):
        ft._temperature_grid("wh", "d", None, ft.train_params(), False, [0.1])


def test_centred_runs_are_scored_centred(tiny):
    """A run trained with --simgr-center is ranked with the same centred item vectors: the
    scorer reads the choice from the run's meta."""
    from hoprec.tasks.llm.simgr_scoring import meta_scorer

    model, tok = tiny
    meta = {
        "params": {"temperature": 0.1, "simgr_center": True, "max_len": 64, "positions": "all"},
        "simgr_window": 2,
    }
    hists = [np.array([1, 2]), np.array([5])]
    scores = meta_scorer(model, tok, meta, SIDS, None, N_ITEMS)(hists)
    plain = meta_scorer(
        model,
        tok,
        {**meta, "params": {**meta["params"], "simgr_center": False}},
        SIDS,
        None,
        N_ITEMS,
    )(hists)
    ids, mask = simgr.item_tokens(tok, SIDS)
    with torch.no_grad():
        items = simgr.item_vectors(model, ids, mask).double()[1:]
        items = items - items.mean(0)
        for u, h in enumerate(hists):
            toks = [t for i in h for t in simgr.sid_lists(ids)[int(i)]]
            user = model.get_base_model().model(input_ids=torch.tensor([toks])).last_hidden_state
            user = user[0, -1].double()
            want = (items @ user / (items.norm(dim=1) * user.norm()) / 0.1).numpy()
            seen = set(h.tolist())
            for item in range(1, N_ITEMS + 1):
                if item not in seen:
                    assert scores[u, item] == pytest.approx(want[item - 1], rel=1e-4, abs=1e-4)
    assert not np.allclose(scores[np.isfinite(scores)], plain[np.isfinite(plain)])
