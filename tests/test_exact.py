"""Exact item scoring equals a per-item reference: one teacher-forced forward per item."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from hoprec.tasks.llm.exact import exact_item_scores
from hoprec.tasks.sids.trie import SidTrie

BASE, CODES = 30, 3  # ordinary tokens 0..29, then CODES SID tokens per level


@functools.cache
def tiny_model(attn: str, depth: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(7)
    cfg = LlamaConfig(
        vocab_size=BASE + depth * CODES + 3,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as in SmolLM2
        max_position_embeddings=128,
    )
    cfg._attn_implementation = attn
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(10.0)  # spread the scores out
    return model


def random_trie(rng: np.random.Generator, n_items: int, depth: int) -> tuple[SidTrie, np.ndarray]:
    codes = {tuple(int(x) for x in rng.integers(0, CODES, depth)) for _ in range(4 * n_items)}
    c = np.array(sorted(codes))[rng.permutation(len(codes))[:n_items]]
    tok = BASE + c + CODES * np.arange(depth)
    items = rng.choice(1000, size=len(c), replace=False)
    return SidTrie.from_token_ids(items, tok), tok


def reference(model, prompt: list[int], sid: np.ndarray) -> float:
    """log P(sid | prompt), straightforwardly: one forward of prompt + sid, no cache, no padding."""
    x = torch.tensor([prompt + sid.tolist()])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=x).logits[0].double(), -1)
    return sum(float(lp[len(prompt) - 1 + j, t]) for j, t in enumerate(sid.tolist()))


@pytest.mark.parametrize("method", ["tree", "expand"])
@pytest.mark.parametrize(
    ("attn", "depth", "max_tokens"),
    [("sdpa", 4, 7), ("eager", 4, 7), ("sdpa", 4, 4096), ("sdpa", 3, 5), ("sdpa", 2, 3)],
)
def test_exact_scores_equal_per_item_reference(method, attn, depth, max_tokens):
    rng = np.random.default_rng(depth * 100 + max_tokens)
    model = tiny_model(attn, depth)
    trie, tok = random_trie(rng, 20, depth)
    prompts = [[int(x) for x in rng.integers(0, BASE, n)] for n in (5, 1, 9, 3)]  # left-padded
    want = np.array([[reference(model, p, t) for t in tok] for p in prompts])
    # 3 users a batch (a full and a short batch); small max_tokens: levels span several chunks
    got = exact_item_scores(
        model, prompts, trie, batch_size=3, method=method, max_tokens=max_tokens
    )
    assert got.shape == (4, trie.n_items) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)


def test_exact_single_level_and_single_item():
    rng = np.random.default_rng(0)
    model = tiny_model("sdpa", 1)
    prompts = [[3, 4, 5], [6]]
    trie, tok = random_trie(rng, 3, 1)  # depth 1: the prompt's logits are the whole answer
    want = np.array([[reference(model, p, t) for t in tok] for p in prompts])
    np.testing.assert_allclose(exact_item_scores(model, prompts, trie), want, atol=1e-4)
    model = tiny_model("sdpa", 3)
    one, tok = random_trie(rng, 1, 3)
    got = exact_item_scores(model, prompts, one, method="tree")
    np.testing.assert_allclose(got[:, 0], [reference(model, p, tok[0]) for p in prompts], atol=1e-4)
    with pytest.raises(ValueError, match="max_tokens"):
        exact_item_scores(model, prompts, one, max_tokens=0)
