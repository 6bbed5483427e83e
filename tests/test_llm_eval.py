"""The LLM as a scorer (prompts identical to training's, trie of SID tokens, history excluded)
and the compare report's aggregation over seeds."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY_SIDS

from hoprec.tasks.data.sequences import eval_rows
from hoprec.tasks.evaluation.report import gain_rows, mean_std, metric_rows
from hoprec.tasks.llm.prompts import PROMPTS, encode_sample, item_label
from hoprec.tasks.llm.scoring import history_prompts, item_trie, llm_scorer
from hoprec.tasks.sids.store import code_matrix

SIDS = TINY_SIDS  # the `tiny` fixture (conftest) has their tokens
LABELS = {i: item_label(s, None) for i, s in SIDS.items()}


def test_eval_prompt_is_the_training_prompt_up_to_the_sid(tiny):
    _, tok = tiny
    hist = [np.array([5, 2, 7, 1])]
    [prompt] = history_prompts(tok, hist, LABELS, history=3)
    content = PROMPTS["next-item"].format(input="\n".join(LABELS[i] for i in (2, 7, 1)))
    p, a = encode_sample(
        tok, [{"role": "user", "content": content}, {"role": "assistant", "content": LABELS[3]}]
    )
    full = p + a
    assert prompt == full[: len(prompt)]  # same tokens, then the SID follows
    assert tok.convert_ids_to_tokens(full[len(prompt)]) == "<a_0>"


def test_trie_covers_every_item_and_rejects_unknown_tokens(tiny):
    _, tok = tiny
    trie = item_trie(tok, SIDS)
    assert trie.n_items == 7 and sorted(trie.item_ids.tolist()) == list(range(1, 8))
    with pytest.raises(ValueError, match="SID tokens"):
        item_trie(tok, {1: "<a_99><b_0><c_0><d_0>"})


def test_scorer_ranks_only_real_non_history_items(tiny):
    model, tok = tiny
    hist = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    for decode in ("beam", "exact"):
        s = llm_scorer(model, tok, SIDS, LABELS, 7, history=5, decode=decode, num_beams=4)(hist)
        assert s.shape == (3, 8) and np.isneginf(s[:, 0]).all()
        for u, h in enumerate(hist):
            assert np.isneginf(s[u, h]).all() if len(h) else True
            assert (s[u][np.isfinite(s[u])] <= 0).all()  # log-probabilities
        if decode == "beam":
            assert (np.isfinite(s).sum(1) <= 4).all()
    with pytest.raises(ValueError, match="decode"):
        llm_scorer(model, tok, SIDS, LABELS, 7, decode="greedy")


def test_eval_rows_and_codes():
    assert eval_rows(10, 0).tolist() == list(range(10))
    rows = eval_rows(100, 20)
    assert len(rows) == 20 and np.array_equal(rows, np.sort(rows))
    assert np.array_equal(rows, eval_rows(100, 20))  # the same users every time
    codes = code_matrix(SIDS, 7)
    assert codes.shape == (8, 4) and codes[5].tolist() == [2, 1, 0, 0]


def _run(seed_values: dict[tuple[str, str], float]) -> dict:
    rows = [
        {"model": m, "group": g, "metric": "ndcg", "k": 10, "value": v}
        for (m, g), v in seed_values.items()
    ]
    return {
        "eval": {"rows": rows, "group_sizes": {"all": 10, "memorization": 4, "non-memorization": 6}}
    }


def test_report_means_spreads_and_gain_shares():
    a = _run(
        {
            ("sasrec", "all"): 0.10,
            ("sasrec", "memorization"): 0.20,
            ("sasrec", "non-memorization"): 0.0333,
            ("llm", "all"): 0.16,
            ("llm", "memorization"): 0.20,
            ("llm", "non-memorization"): 0.1333,
        }
    )
    b = _run(
        {
            ("sasrec", "all"): 0.12,
            ("sasrec", "memorization"): 0.25,
            ("sasrec", "non-memorization"): 0.0333,
            ("llm", "all"): 0.18,
            ("llm", "memorization"): 0.25,
            ("llm", "non-memorization"): 0.1333,
        }
    )
    assert mean_std([0.1, 0.3]) == "0.2000 ± 0.1414" and mean_std([0.5]) == "0.5000"
    [row] = gain_rows([a, b])
    # gain all 0.06 on 10 users = 0.6; non-memorization 0.1 on 6 users = 0.6 -> 100 %
    assert row["gain all"] == "0.0600 ± 0.0000" and row["share non-memorization"] == "100%"
    assert row["share memorization"] == "0%"
    table = metric_rows([a, b])
    assert {"model": "llm", "group": "all"}.items() <= table[1].items()
    assert table[1]["NDCG@10"] == "0.1700 ± 0.0141"
