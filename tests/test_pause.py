"""PauseRec: k learned <pause> tokens between the prompt and the answer. They change the prompt
as specified (training and evaluation alike), carry no loss, and their row trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import write_successor_samples

from hoprec.tasks.llm.checkpoints import load_trained
from hoprec.tasks.llm.finetune import TrainParams, encode_batch, prepare_model, train_llm
from hoprec.tasks.llm.prompts import (
    PAUSE,
    PROMPTS,
    PromptForm,
    encode_sample,
    history_prompts,
    item_label,
    messages,
    prompt_ids,
)
from hoprec.tasks.llm.scoring import llm_scorer

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abcd" for i in range(4)]
SIDS = {i: f"<a_{i % 4}><b_{i // 4 % 4}><c_0><d_0>" for i in range(1, 16)}
LABELS = {i: item_label(s, None) for i, s in SIDS.items()}


def _params(base: str, **kw) -> TrainParams:
    return TrainParams(
        **{"base": base, "batch_size": 4, "max_steps": 8, "lr": 5e-2, "device": "cpu", **kw}
    )


@pytest.fixture(scope="module")
def paused(tiny_base):
    return prepare_model(_params(tiny_base, pause_tokens=2), SID_TOKENS)


def test_pauses_end_the_prompt_and_carry_no_loss(paused):
    _, tok, new_ids = paused
    pid = tok.convert_tokens_to_ids(PAUSE)
    assert new_ids[-1] == pid and len(new_ids) == len(SID_TOKENS) + 1  # its row trains
    msgs = messages("After [<a_1><b_0><c_0><d_0>]?", "[<a_2><b_0><c_0><d_0>]")
    p0, a0 = encode_sample(tok, msgs)
    p2, a2 = encode_sample(tok, msgs, PromptForm(pauses=2))
    assert p2 == p0 + [pid, pid] and a2 == a0
    assert prompt_ids(tok, "x", PromptForm(3))[-3:] == [pid] * 3
    batch = encode_batch(tok, [msgs], [1.0], 1024, 0, PromptForm(pauses=2))
    n = len(p2) + len(a2)
    assert batch["input_ids"][0, len(p0) : len(p2)].tolist() == [pid, pid]
    assert (batch["labels"][0, : len(p2)] == -100).all()  # no loss on prompt or pauses
    assert batch["labels"][0, len(p2) : n].tolist() == a2
    assert (batch["weights"][0, : len(p2)] == 0).all()


def test_evaluation_prompt_is_the_training_prompt_with_pauses(paused):
    _, tok, _ = paused
    pid = tok.convert_tokens_to_ids(PAUSE)
    [prompt] = history_prompts(tok, [np.array([5, 2, 7])], LABELS, 2, PromptForm(pauses=2))
    content = PROMPTS["next-item"].format(input="\n".join(LABELS[i] for i in (2, 7)))
    p, a = encode_sample(tok, messages(content, LABELS[3]), PromptForm(pauses=2))
    assert prompt == (p + a)[: len(prompt)]
    assert prompt[len(p) - 2 : len(p)] == [pid, pid]
    assert tok.convert_ids_to_tokens((p + a)[len(prompt)]) == "<a_3>"


def test_a_tokenizer_without_pauses_is_refused(tiny_base):
    _, tok, _ = prepare_model(_params(tiny_base), SID_TOKENS)
    assert PAUSE not in tok.get_vocab()
    with pytest.raises(ValueError, match="pause"):
        prompt_ids(tok, "x", PromptForm(1))
    assert "pause_tokens" not in _params(tiny_base).identity()
    assert _params(tiny_base, pause_tokens=2).identity()["pause_tokens"] == 2
    with pytest.raises(ValueError, match="pause_tokens"):
        _params(tiny_base, pause_tokens=-1)


def test_training_with_pauses_learns_the_pause_row_and_scores(tiny_base, tmp_path):
    path = write_successor_samples(tmp_path / "train.parquet", SIDS)
    res = train_llm(path, SID_TOKENS, _params(tiny_base, pause_tokens=2), tmp_path / "run")
    assert res.steps == 8
    model, tok, meta = load_trained(tmp_path / "run", "cpu", merge=True)
    assert meta["params"]["pause_tokens"] == 2
    pid = tok.convert_tokens_to_ids(PAUSE)
    fresh, _, _ = prepare_model(_params(tiny_base, pause_tokens=2), SID_TOKENS)
    emb, emb0 = model.get_input_embeddings().weight, fresh.get_input_embeddings().weight
    assert not torch.allclose(emb[pid], emb0[pid])  # the pause row learned
    hist = [np.array([1, 2]), np.array([3])]
    for decode in ("beam", "exact"):
        s = llm_scorer(
            model, tok, SIDS, LABELS, 15, history=5, decode=decode, num_beams=4,
            form=PromptForm(pauses=2),
        )(hist)  # fmt: skip
        assert s.shape == (2, 16) and np.isneginf(s[0, [0, 1, 2]]).all()
        assert np.isfinite(s).sum() > 0


def test_without_the_system_prompt_the_prompt_is_shorter_and_kept_in_the_run(tiny_base):
    from hoprec.tasks.llm.prompts import SYSTEM

    _, tok, _ = prepare_model(_params(tiny_base), SID_TOKENS)
    full, bare = prompt_ids(tok, "x"), prompt_ids(tok, "x", PromptForm(system=False))
    assert SYSTEM in tok.decode(full) and SYSTEM not in tok.decode(bare)
    assert "SmolLM" not in tok.decode(bare)  # not the template's own default either
    assert len(full) - len(bare) >= 15
    p = _params(tiny_base, system_prompt=False, pause_tokens=1)
    assert p.form == PromptForm(pauses=1, system=False)
    assert PromptForm.of(p.identity()) == p.form  # what scoring reads back from the meta
    assert PromptForm.of(_params(tiny_base).identity()) == PromptForm()
    assert "system_prompt" not in _params(tiny_base).identity()
