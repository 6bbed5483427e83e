"""IIRG's stage 1: only the new SID token rows train, on title -> SID samples, before stage 2;
LoRA (peft's token deltas) and full fine-tuning (IIRG's gradient hook on the embedding rows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_successor_samples

from hoprec.tasks.llm.align import align_stage, only_new_rows
from hoprec.tasks.llm.finetune import TrainParams, prepare_model, train_llm, weighted_loss
from hoprec.tasks.llm.prompts import PROMPTS, messages

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abcd" for i in range(4)]
TITLES = {i: f"Movie number {i}" for i in range(16)}


def _sid(i: int) -> str:
    return f"<a_{i % 4}><b_{i // 4 % 4}><c_{i // 16 % 4}><d_0>"


SAMPLES = [
    messages(PROMPTS["title-to-sid"].format(title=t), f"[{_sid(i)}]") for i, t in TITLES.items()
]


def _params(base: str, **kw) -> TrainParams:
    return TrainParams(
        **{"base": base, "batch_size": 8, "align_steps": 30, "device": "cpu", "max_steps": 2, **kw}
    )


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_stage_one_changes_only_the_new_rows_and_learns(mode, tiny_untied_base):
    p = _params(tiny_untied_base, mode=mode)
    model, tok, new_ids = prepare_model(p, SID_TOKENS)
    flags = {n: q.requires_grad for n, q in model.named_parameters()}
    before = _snapshot(model)
    hist = align_stage(model, tok, new_ids, SAMPLES, p, torch.device("cpu"), weighted_loss)
    assert len(hist) == 30
    first, last = (np.mean([h["loss"] for h in part]) for part in (hist[:5], hist[-5:]))
    assert last < first - 0.1, (first, last)  # IIRG's lr 1e-3: slow on a random tiny model
    assert {n: q.requires_grad for n, q in model.named_parameters()} == flags  # restored
    changed = {n for n, q in model.named_parameters() if not torch.equal(q, before[n])}
    old = [i for i in range(len(tok)) if i not in set(new_ids)]
    if mode == "lora":  # peft's deltas of the new rows, nothing else (the adapters stay as drawn)
        assert changed and all("trainable_tokens_delta" in n for n in changed)
    else:  # the embedding matrices' new rows (input and untied head), IIRG's hook on the rest
        emb = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        names = {n for n, q in model.named_parameters() if q is emb or q is head}
        assert changed == names and len(names) == 2
        for n in names:
            now, was = dict(model.named_parameters())[n], before[n]
            assert torch.equal(now[old], was[old]) and not torch.equal(now[new_ids], was[new_ids])


def test_only_new_rows_restores_flags_on_error(tiny_base):
    model, _, new_ids = prepare_model(_params(tiny_base), SID_TOKENS)
    flags = {n: q.requires_grad for n, q in model.named_parameters()}
    with pytest.raises(RuntimeError), only_new_rows(model, new_ids):
        raise RuntimeError("boom")
    assert {n: q.requires_grad for n, q in model.named_parameters()} == flags


def test_training_with_stage_one_records_it_and_changes_the_model_id(tiny_base, tmp_path):
    path = write_successor_samples(tmp_path / "train.parquet", {i: _sid(i) for i in range(16)})
    p = _params(tiny_base, align_steps=4)
    res = train_llm(path, SID_TOKENS, p, tmp_path / "run", alignment=SAMPLES)
    assert [h["step"] for h in res.alignment] == [1, 2, 3, 4] and res.steps == 2
    assert "align_steps" in p.identity()
    assert "align_steps" not in _params(tiny_base, align_steps=0).identity()
    with pytest.raises(ValueError, match="title -> SID"):
        train_llm(path, SID_TOKENS, p, tmp_path / "other")
    with pytest.raises(ValueError, match="align_steps"):
        _params(tiny_base, align_steps=-1)
