"""Trie, constrained beam search and exact item scoring on tiny random Llama models."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoprec.tasks.llm.decoding import (
    cache_select,
    constrained_beam_search,
    left_pad,
    tree_attention_ok,
)
from hoprec.tasks.llm.exact import exact_item_scores
from hoprec.tasks.sids.trie import SidTrie

BASE = 40  # ordinary tokens 0..39, then SID tokens
CODES = 4  # codes per level in the tests (so SIDs share prefixes)
L = 4
VOCAB = BASE + L * CODES + 4  # a few spare ids no SID uses


@functools.cache
def tiny_model(attn: str = "sdpa", seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    cfg._attn_implementation = attn
    model = LlamaForCausalLM(cfg).eval()
    # random init is small: sharpen the output so scores differ clearly (fewer near-ties)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model


def sid_tokens(codes: np.ndarray) -> np.ndarray:
    return BASE + codes + CODES * np.arange(codes.shape[1])


def random_trie(
    rng: np.random.Generator, n_items: int, codes: int = CODES
) -> tuple[SidTrie, np.ndarray]:
    seen: set[tuple[int, ...]] = set()
    while len(seen) < n_items:
        seen.add(tuple(int(x) for x in rng.integers(0, codes, L)))
    c = np.array(sorted(seen))
    rng.shuffle(c)
    items = rng.choice(10_000, size=n_items, replace=False)
    tok = sid_tokens(c)
    return SidTrie.from_token_ids(items, tok), tok


def brute_force(model, prompt: list[int], tok: np.ndarray) -> np.ndarray:
    """log P(SID | prompt) per item: a full forward of prompt + SID (no cache, no padding)."""
    x = torch.tensor([list(prompt) + list(t) for t in tok])
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=x).logits.float(), -1)
    t0 = len(prompt) - 1
    rows = torch.arange(len(tok))
    return sum(lp[rows, t0 + j, x[:, t0 + j + 1]] for j in range(tok.shape[1])).numpy()


def prompts_for(rng: np.random.Generator, lengths) -> list[list[int]]:
    return [[int(x) for x in rng.integers(0, BASE, n)] for n in lengths]


# ------------------------------------------------------------------------------------- trie
def test_trie_tables():
    tok = np.array([[1, 5, 7, 9], [1, 5, 8, 9], [1, 6, 7, 9], [2, 5, 7, 9], [1, 5, 7, 10]])
    trie = SidTrie.from_token_ids([30, 31, 32, 33, 34], tok)
    assert [trie.num_nodes(d) for d in range(5)] == [1, 2, 3, 4, 5]
    assert trie.tokens[0].tolist() == [1, 2]
    # depth-1 node 0 is prefix (1,), node 1 is (2,); (1,) has children 5 and 6, (2,) only 5
    assert trie.children[1].tolist() == [[0, 1], [2, -1]]
    nodes = torch.tensor([0, 1, -1])
    mask = trie.allowed(1, nodes, vocab_size=12)
    assert mask[0].nonzero().view(-1).tolist() == [5, 6]
    assert mask[1].nonzero().view(-1).tolist() == [5]
    assert not mask[2].any()
    # every item's path ends on its own leaf
    for i, t in enumerate(tok):
        node = 0
        for level, token in enumerate(t):
            k = int(np.searchsorted(trie.tokens[level], token))
            node = int(trie.children[level][node, k])
        assert node == trie.item_leaf[i] and trie.leaf_item[node] == [30, 31, 32, 33, 34][i]
    assert sorted(trie.leaves_of([34, 30, 999]).tolist()) == sorted(
        [trie.item_leaf[4], trie.item_leaf[0]]
    )
    with pytest.raises(ValueError, match="share a SID"):
        SidTrie.from_token_ids([1, 2], np.array([[1, 2], [1, 2]]))
    with pytest.raises(ValueError, match="unique"):
        SidTrie.from_token_ids([1, 1], np.array([[1, 2], [1, 3]]))


# ------------------------------------------------------------------------------- kv caches
def test_cache_select_dynamic_cache():
    from transformers import DynamicCache

    model = tiny_model()
    rng = np.random.default_rng(1)
    prompts = prompts_for(rng, [5, 5, 5])
    ids = torch.tensor(prompts)
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    assert isinstance(cache, DynamicCache)
    keys0 = [layer.keys.clone() for layer in cache.layers]
    idx = torch.tensor([2, 0, 0, 1])
    sel = cache_select(cache, idx)  # a new cache; the old one untouched
    for layer, k0, new in zip(cache.layers, keys0, sel.layers):
        assert torch.equal(layer.keys, k0)
        assert torch.equal(new.keys, k0[idx]) and torch.equal(new.values, layer.values[idx])
    # continuing from the selected cache == running the selected prompts from scratch
    nxt = torch.tensor([[41], [42], [43], [44]])
    with torch.no_grad():
        cont = model(input_ids=nxt, past_key_values=sel, use_cache=True).logits[:, -1]
        full = model(input_ids=torch.cat([ids[idx], nxt], 1)).logits[:, -1]
    torch.testing.assert_close(cont, full, atol=1e-5, rtol=1e-5)
    # in place (beam reorder)
    same = cache_select(cache, torch.tensor([1, 1, 2]), inplace=True)
    assert same is cache and torch.equal(cache.layers[0].keys, keys0[0][[1, 1, 2]])
    # legacy tuple caches
    legacy = tuple((k, k + 1) for k in keys0)
    out = cache_select(legacy, torch.tensor([2, 0]))
    assert torch.equal(out[0][0], keys0[0][[2, 0]]) and torch.equal(out[1][1], keys0[1][[2, 0]] + 1)


def test_left_pad_positions():
    ids, mask, pos = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]


# --------------------------------------------------------------------------- exact scoring
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("method", ["tree", "expand"])
def test_exact_scores_equal_brute_force(attn, method):
    model = tiny_model(attn)
    rng = np.random.default_rng(2)
    trie, tok = random_trie(rng, 40)
    assert trie.num_nodes(1) < trie.num_nodes(2) < trie.num_nodes(3) < 40  # shared prefixes
    prompts = prompts_for(rng, [1, 6, 13, 3, 9])
    want = np.stack([brute_force(model, p, tok) for p in prompts])
    # small max_tokens: several chunks per level
    got = exact_item_scores(model, prompts, trie, batch_size=3, method=method, max_tokens=20)
    assert got.shape == (5, 40)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # probabilities of all items sum to at most 1
    assert (np.exp(got).sum(1) <= 1 + 1e-5).all()


def test_exact_scores_batched_equals_unbatched():
    model = tiny_model()
    rng = np.random.default_rng(3)
    trie, _ = random_trie(rng, 30)
    prompts = prompts_for(rng, [4, 11, 2, 7, 7, 15, 1, 9, 3])
    one = exact_item_scores(model, prompts, trie, batch_size=1)
    many = exact_item_scores(model, prompts, trie, batch_size=8)
    np.testing.assert_allclose(one, many, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- beam search
def _check_rows(items, scores, trie, exclude, exact):
    valid = set(trie.item_ids.tolist())
    for u in range(items.shape[0]):
        row, sc = items[u], scores[u]
        real = row >= 0
        assert (np.diff(real.astype(int)) <= 0).all(), "padding only at the end"
        assert np.isneginf(sc[~real]).all() and np.isfinite(sc[real]).all()
        got = row[real].tolist()
        assert len(set(got)) == len(got)
        assert set(got) <= valid, "beam search yielded an invalid item"
        assert not set(got) & set(exclude[u] or ()), "beam search yielded an excluded item"
        assert (np.diff(sc[real]) <= 1e-6).all(), "sorted by score"
        col = {int(i): j for j, i in enumerate(trie.item_ids)}
        np.testing.assert_allclose(sc[real], exact[u, [col[i] for i in got]], atol=1e-4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_items=st.integers(1, 30),
    codes=st.integers(1, 4),
    num_beams=st.integers(1, 12),
    top_k=st.integers(1, 12),
    n_users=st.integers(1, 4),
    method=st.sampled_from(["tree", "batch"]),
)
def test_beam_search_yields_only_valid_items(
    seed, n_items, codes, num_beams, top_k, n_users, method
):
    rng = np.random.default_rng(seed)
    n_items = min(n_items, codes**L)
    trie, _ = random_trie(rng, n_items, codes)
    prompts = prompts_for(rng, rng.integers(1, 10, n_users))
    exclude = [
        set(rng.choice(trie.item_ids, size=rng.integers(0, n_items + 1), replace=False).tolist())
        if rng.random() < 0.7
        else None
        for _ in range(n_users)
    ]
    model = tiny_model()
    items, scores = constrained_beam_search(
        model,
        prompts,
        trie,
        num_beams=num_beams,
        top_k=top_k,
        exclude=exclude,
        batch_size=3,
        method=method,
    )
    assert items.shape == scores.shape == (n_users, top_k)
    exact = exact_item_scores(model, prompts, trie)
    _check_rows(items, scores, trie, exclude, exact)
    # the first beam can never beat the best allowed item
    for u in range(n_users):
        allowed = [j for j, i in enumerate(trie.item_ids) if i not in (exclude[u] or ())]
        if allowed and items[u, 0] >= 0:
            assert scores[u, 0] <= exact[u, allowed].max() + 1e-4


@pytest.mark.parametrize("method", ["tree", "batch"])
@pytest.mark.parametrize("exclude_some", [False, True])
def test_beam_search_exact_when_beams_cover_catalogue(exclude_some, method):
    model = tiny_model()
    rng = np.random.default_rng(4)
    trie, _ = random_trie(rng, 25)
    prompts = prompts_for(rng, [3, 8, 1, 12, 5])
    exact = exact_item_scores(model, prompts, trie)
    exclude = [
        set(rng.choice(trie.item_ids, 6, replace=False).tolist()) if exclude_some else None
        for _ in prompts
    ]
    top_k = 10
    items, scores = constrained_beam_search(
        model, prompts, trie, num_beams=25, top_k=top_k, exclude=exclude, method=method
    )
    _check_rows(items, scores, trie, exclude, exact)
    for u in range(len(prompts)):
        s = exact[u].copy()
        if exclude[u]:
            s[np.isin(trie.item_ids, list(exclude[u]))] = -np.inf
        order = np.argsort(-s, kind="stable")[:top_k]
        assert items[u].tolist() == trie.item_ids[order].tolist()
        np.testing.assert_allclose(scores[u], s[order], atol=1e-4)


@pytest.mark.parametrize("method", ["tree", "batch"])
def test_beam_search_pads_when_catalogue_is_small(method):
    model = tiny_model()
    rng = np.random.default_rng(5)
    trie, _ = random_trie(rng, 4)
    items, scores = constrained_beam_search(
        model,
        prompts_for(rng, [5, 2]),
        trie,
        num_beams=20,
        top_k=6,
        exclude=[{int(trie.item_ids[0])}, None],
        method=method,
    )
    assert (
        (items[0, :3] >= 0).all()
        and (items[0, 3:] == -1).all()
        and np.isneginf(scores[0, 3:]).all()
    )
    assert (items[1, :4] >= 0).all() and (items[1, 4:] == -1).all()
    assert int(trie.item_ids[0]) not in items[0].tolist()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_beam_search_batched_equals_unbatched_and_methods_agree(attn):
    """batch_size 1 == batch_size 8, and the tree method == beams flattened into the batch."""
    model = tiny_model(attn)
    rng = np.random.default_rng(6)
    trie, _ = random_trie(rng, 40)
    prompts = prompts_for(rng, [4, 11, 2, 7, 7, 15, 1, 9, 3])
    exclude = [set(rng.choice(trie.item_ids, 3, replace=False).tolist()) for _ in prompts]
    runs = {
        (method, bs): constrained_beam_search(
            model,
            prompts,
            trie,
            num_beams=6,
            top_k=5,
            exclude=exclude,
            batch_size=bs,
            method=method,
        )
        for method in ("tree", "batch")
        for bs in (1, 8)
    }
    ref_items, ref_scores = runs["batch", 1]
    assert (ref_items >= 0).all()
    for items, scores in runs.values():
        assert (items == ref_items).all()
        np.testing.assert_allclose(scores, ref_scores, atol=1e-4)


def test_tree_attention_ok():
    from types import SimpleNamespace as NS

    assert tree_attention_ok(tiny_model("sdpa")) and tree_attention_ok(tiny_model("eager"))
    assert not tree_attention_ok(NS(config=NS(_attn_implementation="flash_attention_2")))
    assert not tree_attention_ok(
        NS(
            config=NS(
                _attn_implementation="sdpa", layer_types=["full_attention", "sliding_attention"]
            )
        )
    )
    assert not tree_attention_ok(NS(config=NS(_attn_implementation="sdpa", sliding_window=128)))
    assert not tree_attention_ok(
        NS(config=NS(_attn_implementation="sdpa", sliding_window=128, use_sliding_window=True))
    )
    assert tree_attention_ok(
        NS(config=NS(_attn_implementation="sdpa", sliding_window=4096, use_sliding_window=False))
    )
    with pytest.raises(ValueError, match="method"):
        exact_item_scores(
            tiny_model(), [[1]], random_trie(np.random.default_rng(0), 3)[0], method="batch"
        )
