"""LLM fine-tuning: target-only weighted loss, data order, checkpoints and resume, the saved
adapter, on a tiny random Llama that shares SmolLM2's tokenizer (fast on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from hoprec.tasks.llm.checkpoints import load_trained
from hoprec.tasks.llm.finetune import (
    TrainParams,
    encode_batch,
    prepare_model,
    train_llm,
    weighted_loss,
)
from hoprec.tasks.llm.instructions import SCHEMA
from hoprec.tasks.llm.samples import sample_order

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abcd" for i in range(4)]
ROOT = Path(__file__).resolve().parents[1]


def sid(i: int) -> str:
    return f"[<a_{i % 4}><b_{i // 4 % 4}><c_{i // 16 % 4}><d_0>]"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> str:
    """24 next-item and 8 collaborative samples: a deterministic successor task."""
    rows = []
    for i in range(32):
        task = "next-item" if i < 24 else "collaborative"
        a, b = i % 16, (i * 5 + 3) % 16
        rows.append(
            {
                "task": task,
                "key": f"{task}:{i}",
                "user_idx": i,
                "input_items": [a],
                "input_pos": [0],
                "target_items": [b],
                "target_pos": [1],
                "messages": [
                    {"role": "user", "content": f"After {sid(a)}?"},
                    {"role": "assistant", "content": sid(b)},
                ],
                "loss_weight": 1.0 if task == "next-item" else 0.5,
            }
        )
    path = tmp_path_factory.mktemp("instr") / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return str(path)


def params(base: str, **kw) -> TrainParams:
    return TrainParams(
        **{
            "base": base,
            "max_steps": 6,
            "batch_size": 4,
            "lr": 1e-2,
            "save_every": 2,
            "log_every": 1,
            "device": "cpu",
            **kw,
        }
    )


def test_params_fail_fast():
    with pytest.raises(ValueError, match="mode"):
        TrainParams(mode="qlora")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps"):
        TrainParams(max_steps=0)
    with pytest.raises(ValueError, match="warmup"):
        TrainParams(warmup=1.5)
    assert TrainParams().learning_rate == 1e-3 and TrainParams(mode="full").learning_rate == 1e-4


def test_sample_order_is_a_pure_function_of_position():
    a = sample_order(10, 3, 0, 25)
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:20]) == list(range(10))
    assert not np.array_equal(a[:10], a[10:20])  # a new shuffle each epoch
    np.testing.assert_array_equal(sample_order(10, 3, 7, 11), a[7:18])  # resume mid-epoch
    assert not np.array_equal(sample_order(10, 4, 0, 10), a[:10])


def test_labels_only_on_answer_tokens(tiny_base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.add_tokens(SID_TOKENS)
    msgs = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "[<a_1>]"}],
        [
            {"role": "user", "content": "a longer question here"},
            {"role": "assistant", "content": "ok"},
        ],
    ]
    b = encode_batch(tok, msgs, [1.0, 0.25], 1024, tok.pad_token_id or 0)
    for r, answer in enumerate(["[<a_1>]", "ok"]):
        lab = b["labels"][r][b["labels"][r] != -100].tolist()
        assert tok.decode(lab) == answer + tok.eos_token  # the answer + end of turn
        assert (b["weights"][r][b["labels"][r] != -100] == [1.0, 0.25][r]).all()
        assert (b["weights"][r][b["labels"][r] == -100] == 0).all()
    short = encode_batch(tok, msgs[:1], [1.0], 12, 0)  # the prompt loses its head
    assert short["input_ids"].shape[1] == 12
    assert tok.decode(short["labels"][0][short["labels"][0] != -100]) == "[<a_1>]" + tok.eos_token


def test_weighted_loss_matches_hand_computation(tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    msgs = [
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "one two"}],
        [
            {"role": "user", "content": "a much longer prompt"},
            {"role": "assistant", "content": "three"},
        ],
    ]
    b = encode_batch(tok, msgs, [2.0, 0.5], 1024, 0)
    n_target = int((b["labels"] != -100).sum())
    with torch.no_grad():
        got = weighted_loss(model, b, n_target + 3)  # 3 more targets elsewhere in the step
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    want = 0.0
    for r, w in enumerate([2.0, 0.5]):
        for t in range(1, b["input_ids"].shape[1]):
            if b["labels"][r, t] != -100:
                want += w * float(F.cross_entropy(logits[r, t - 1][None], b["labels"][r, t][None]))
    assert float(got) == pytest.approx(want / (n_target + 3), rel=1e-5)


def test_lora_trains_only_adapters_and_new_token_rows(tiny_base):
    model, tok, new_ids = prepare_model(params(tiny_base), SID_TOKENS)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "token_adapter" in n for n in names)
    assert len(tok) == len(SID_TOKENS) + min(new_ids) and len(new_ids) == len(SID_TOKENS)


def test_training_learns_and_the_adapter_loads_the_standard_way(tiny_base, samples, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    res = train_llm(
        samples, SID_TOKENS, params(tiny_base, max_steps=40, log_every=5, lr=5e-2), tmp_path
    )
    losses = [r["loss"] for r in res.history]
    assert res.steps == 40 and losses[-1] < 0.6 * losses[0], losses
    assert all(r["tokens_per_s"] > 0 for r in res.history)
    # the standard user path: base resized to the saved tokenizer + PeftModel.from_pretrained
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    base.resize_token_embeddings(len(tok))
    user_model = PeftModel.from_pretrained(base, str(tmp_path / "model")).eval()
    ours, _, meta = load_trained(tmp_path, "cpu", merge=True)
    ids = torch.tensor([tok.encode("After [<a_1><b_0><c_0><d_0>]?", add_special_tokens=False)])
    with torch.no_grad():
        a, b = user_model(input_ids=ids).logits, ours(input_ids=ids).logits
        fresh = AutoModelForCausalLM.from_pretrained(tiny_base)
        fresh.resize_token_embeddings(len(tok))
        c = fresh(input_ids=ids).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)  # the adapter changed something
    assert meta["history"][-1]["step"] == 40


def test_untied_output_layer_trains_and_reloads(tiny_untied_base, samples, tmp_path, monkeypatch):
    """On a base whose output layer is its own, the new SID rows train there too, and the
    logits before saving equal those after the standard PeftModel reload."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import hoprec.tasks.llm.finetune as ft

    model, _, new_ids = prepare_model(params(tiny_untied_base), SID_TOKENS)
    assert ft.token_layers(model.get_base_model()) == ["embed_tokens", "lm_head"]
    trained = {n for n, p in model.named_parameters() if p.requires_grad and "token_adapter" in n}
    assert any("lm_head" in n for n in trained) and any("embed_tokens" in n for n in trained)
    text = "After [<a_1><b_0><c_0><d_0>]? [<a_2><b_1>"
    ids = torch.tensor([AutoTokenizer.from_pretrained(tiny_untied_base).encode(text)])
    seen: dict[str, torch.Tensor] = {}
    real_save = ft.save_trained

    def save_and_remember(model, tokenizer, *a, **kw):
        model.eval()
        with torch.no_grad():
            seen["before"] = model(input_ids=tokenizer(text, return_tensors="pt").input_ids).logits
        return real_save(model, tokenizer, *a, **kw)

    monkeypatch.setattr(ft, "save_trained", save_and_remember)
    res = train_llm(
        samples, SID_TOKENS, params(tiny_untied_base, max_steps=30, log_every=5, lr=5e-2), tmp_path
    )
    losses = [r["loss"] for r in res.history]
    assert losses[-1] < 0.6 * losses[0], losses  # a short run learns
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "model"))
    base = AutoModelForCausalLM.from_pretrained(tiny_untied_base)
    base.resize_token_embeddings(len(tok))
    user_model = PeftModel.from_pretrained(base, str(tmp_path / "model")).eval()
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        after = user_model(input_ids=ids).logits
    torch.testing.assert_close(after, seen["before"], atol=1e-5, rtol=1e-5)
    sid_cols = torch.tensor(new_ids)
    assert after[..., sid_cols].abs().sum() > 0


def test_killed_run_resumes_and_continues_the_loss(tiny_base, samples, tmp_path):
    full = train_llm(samples, SID_TOKENS, params(tiny_base), tmp_path / "full")

    class Killed(Exception):
        pass

    def die_at_5(step, total, row):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train_llm(samples, SID_TOKENS, params(tiny_base), tmp_path / "cut", progress=die_at_5)
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == [
        "step-0000002.pt",
        "step-0000004.pt",
    ]
    resumed = train_llm(samples, SID_TOKENS, params(tiny_base), tmp_path / "cut")
    assert resumed.resumed_from == 4 and resumed.steps == full.steps == 6
    assert [r["step"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(
        [r["loss"] for r in resumed.history], [r["loss"] for r in full.history], rtol=1e-5
    )


def test_sigkilled_process_resumes(tiny_base, samples, tmp_path):
    """A real kill -9 mid-run (not a Python exception): the rerun finishes from a checkpoint."""
    out = tmp_path / "run"
    code = (
        "import sys; from hoprec.tasks.llm.finetune import TrainParams, train_llm; "
        f"train_llm({samples!r}, {SID_TOKENS!r}, TrainParams(base={tiny_base!r}, "
        "max_steps=60, batch_size=4, lr=1e-2, save_every=2, log_every=1, device='cpu'), "
        f"{str(out)!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("step-0000004.pt")):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted((out / "checkpoints").glob("step-*.pt"))
    assert done, "no checkpoint before the kill"
    last = int(done[-1].stem.split("-")[1])
    assert last < 60
    res = train_llm(samples, SID_TOKENS, params(tiny_base, max_steps=60, log_every=20), out)
    assert res.resumed_from is not None and res.resumed_from >= last - 2
    assert res.steps == 60 and res.history[-1]["step"] == 60


def test_unknown_task_is_named(tiny_base, samples, tmp_path):
    with pytest.raises(ValueError, match="semantic"):
        train_llm(samples, SID_TOKENS, params(tiny_base, tasks=("semantic",)), tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        train_llm(tmp_path / "nowhere.parquet", SID_TOKENS, params(tiny_base), tmp_path)


def test_full_fine_tuning_saves_a_whole_model(tiny_base, samples, tmp_path):
    res = train_llm(
        samples, SID_TOKENS, params(tiny_base, mode="full", max_steps=2, save_every=0), tmp_path
    )
    assert res.steps == 2 and not (tmp_path / "model" / "adapter_config.json").exists()
    model, tok, meta = load_trained(tmp_path, "cpu")
    assert meta["mode"] == "full" and model.get_input_embeddings().weight.shape[0] == len(tok)
    assert all(t in tok.get_vocab() for t in SID_TOKENS)


def test_checkpoint_selection_keeps_the_best_weights_and_stops_early(tiny_base, samples, tmp_path):
    """Validation checks at steps 2, 4, 6: the best (step 4) is kept, and with patience 2 the
    run stops at step 8 instead of 12; the saved model is the step-4 model."""
    from hoprec.tasks.llm.checkpoints import trainable_parameters

    scores = iter([0.1, 0.5, 0.2, 0.3, 0.9])
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def validate(model, tokenizer):
        step = 2 * (len(seen) + 1)
        seen[step] = {n: p.detach().clone() for n, p in trainable_parameters(model).items()}
        return next(scores)

    p = params(tiny_base, max_steps=12, select_every=2, patience=2, lr=5e-2)
    res = train_llm(samples, SID_TOKENS, p, tmp_path, validate=validate)
    assert [v["step"] for v in res.validation] == [2, 4, 6, 8]
    assert res.best_step == 4 and res.steps == 8
    model, _, meta = load_trained(tmp_path, "cpu")
    kept = dict(model.named_parameters())  # loaded for inference: nothing requires grad
    assert meta["best_step"] == 4 and len(meta["validation"]) == 4
    for name, weights in seen[4].items():
        torch.testing.assert_close(kept[name], weights)
    assert any(not torch.equal(kept[n], w) for n, w in seen[8].items())
    # each check carries the learning curve's axes: training seconds and tokens fed, growing
    secs = [v["seconds"] for v in meta["validation"]]
    toks = [v["tokens"] for v in meta["validation"]]
    assert all(b > a > 0 for a, b in zip(secs, secs[1:])) and secs[0] > 0
    assert toks[0] > 0 and all(b > a for a, b in zip(toks, toks[1:]))


def test_learning_curves_plot_and_table(tmp_path, monkeypatch):
    from hoprec.tasks.evaluation.curves import curve_rows, curve_section, plot_curves

    monkeypatch.setenv("HOPREC_HOME", str(tmp_path))
    checks = [
        [{"step": s, "ndcg@10": v, "seconds": 10.0 * s, "tokens": 100 * s} for s, v in pts]
        for pts in ([(2, 0.01), (4, 0.03), (6, 0.02)], [(2, 0.03), (4, 0.05), (6, 0.06)])
    ]
    curves, refs = {"llm-iirg": checks}, {"sasrec": 0.1, "tiger": 0.05}
    png = plot_curves(curves, refs, "t", "syn")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    [row] = curve_rows(curves, refs)
    assert row["first NDCG@10"] == 0.02 and row["best NDCG@10"] == 0.045
    assert row["last NDCG@10"] == 0.04 and row["last at s"] == 60
    assert row["gap to best reference"] == round(0.04 - 0.1, 4)
    assert "every 2 steps" in "\n".join(curve_section(curves, refs, png, 2))


def test_warm_start_begins_from_the_given_run(tiny_base, samples, tmp_path):
    from hoprec.tasks.llm.checkpoints import trainable_parameters, warm_start

    first = tmp_path / "first"
    train_llm(samples, SID_TOKENS, params(tiny_base, max_steps=3, lr=5e-2), first)
    trained, _, _ = load_trained(first, "cpu")
    p = params(tiny_base, max_steps=1)
    fresh, _, new_ids = prepare_model(p, SID_TOKENS)
    warm_start(fresh, p, SID_TOKENS, new_ids, first)
    mine, theirs = trainable_parameters(fresh), dict(trained.named_parameters())
    lora = [n for n in mine if "lora_" in n or "trainable_tokens" in n]
    assert lora and all(n in theirs for n in lora)
    assert any("lora_B" in n and theirs[n].abs().sum() > 0 for n in lora)  # not the zero init
    for n in lora:
        torch.testing.assert_close(mine[n], theirs[n])
    with pytest.raises(ValueError, match="SID tokens differ"):
        other, _, ids = prepare_model(p, SID_TOKENS[:-1])
        warm_start(other, p, SID_TOKENS[:-1], ids, first)
    with pytest.raises(ValueError, match="differs in lora_r"):
        q = params(tiny_base, max_steps=1, lora_r=4)
        warm_start(prepare_model(q, SID_TOKENS)[0], q, SID_TOKENS, new_ids, first)
