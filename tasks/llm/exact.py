"""Exact item-level scoring over semantic IDs.

`exact_item_scores`: log P(SID | prompt) of every item, exactly (the SimGR argument: beam
search prunes, so the ranking it gives is biased). The prompt is run once; then the trie is
walked level by level, and each distinct prefix is evaluated once, so the cost is about the
number of trie nodes, not items x L forwards. Two ways of doing a level:

- ``method="tree"`` (default): a level's nodes are fed in a few large chunks (all users of the
  batch at once, one token per node) on a cache built for the chunk: the user's prompt KV (shared,
  not copied per node), then only the contiguous ranges of earlier levels' KV that the chunk's
  nodes descend from, then the chunk itself; a 4D mask lets each node see its prompt, its own
  ancestors and itself (tree attention). Nodes are in prefix order, so a chunk's ancestors are
  contiguous and few: attention costs about nodes x (prompt + chunk), not nodes x (all nodes fed
  so far), which one growing cache costs (ml-100k: a depth-3 node would attend over ~2,700
  columns, not ~300 + chunk; with the 4D mask sdpa computes every column).
- ``method="expand"``: the cached prompt KV is expanded to one row per (user, prefix), chunked,
  and the l prefix tokens are fed on it. Works with any attention implementation (the tree
  method needs one that honours a 4D float mask: eager and sdpa do, flash-attention does not;
  ``method="auto"``, the default, checks with `tree_attention_ok`).

Log-probs are gathered with tensor indexing only (log-sum-exp per fed row, then the child
tokens' logits), never a full log-softmax copy of the [rows, vocab] logits.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..sids.trie import SidTrie
from .decoding import (
    batches,
    cache_select,
    check_vocab,
    inference,
    left_pad,
    pad_id,
    pick_method,
    prompt_mask_bias,
    run_prompt,
    tree_mask,
)

KV = list[tuple[torch.Tensor, torch.Tensor]]  # (keys, values) [users, heads, seq, dim] per layer


def exact_item_scores(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    trie: SidTrie,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    method: str = "auto",
    max_tokens: int = 4096,
) -> np.ndarray:
    """log P(item's SID | prompt) for every user and item: float32 [n_users, n_items], exact.

    Columns follow the order of the items given to `SidTrie.from_token_ids` (``trie.item_ids``).
    Users go `batch_size` at a time; the prompt is run once, then every distinct prefix of length
    1..L-1 is evaluated once (``method="tree"``: on the shared prompt cache with tree attention,
    one token per trie node; ``"expand"``: on per-prefix copies of the prompt cache; ``"auto"``:
    tree where `tree_attention_ok(model)`), in chunks of about `max_tokens` (users x fed tokens)
    per forward, which bounds the memory of the logits and the attention.
    """
    method = pick_method(model, method, "expand")
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    n = len(prompt_ids)
    result = np.empty((n, trie.n_items), np.float32)
    with inference(model):
        for sl in batches(n, batch_size):
            leaf = _exact_batch(
                model, prompt_ids[sl], trie, torch.device(device), method, max_tokens
            )
            result[sl] = leaf[:, trie.item_leaf]
    return result


def child_scores(
    logits: torch.Tensor, node_score: torch.Tensor, a: int, par: torch.Tensor, tok: torch.Tensor
) -> torch.Tensor:
    """log P(child) = log P(parent) + log-softmax(parent's logits)[child token], [users, children].

    `logits` [users, c, vocab] belong to parents a..a+c-1; `par` (global parent ids) and `tok`
    (token ids) list the children. Only one log-sum-exp per row and one gather: no [c, vocab] copy.
    """
    local = par - a
    lse = torch.logsumexp(logits.float(), -1)  # [users, c]
    picked = logits[:, local, tok].float()
    return node_score[:, par] + picked - lse[:, local]


def _exact_batch(
    model: Any,
    prompts: Sequence[Sequence[int]],
    trie: SidTrie,
    dev: torch.device,
    method: str,
    max_tokens: int,
) -> np.ndarray:
    ids, mask, pos = left_pad(prompts, pad_id(model), dev)
    out = run_prompt(model, ids, mask, pos)
    cache = out.past_key_values
    logits = out.logits[:, -1:]
    check_vocab(model, logits, trie)
    # node_score: [users, n_d] log P(prefix) of every depth-d node
    root = torch.zeros(len(prompts), 1, device=dev)
    node_score = child_scores(
        logits, root, 0, trie.t("node_parent", 1, dev), trie.t("node_token", 1, dev)
    )
    del out, logits
    walk = _tree_levels if method == "tree" else _expand_levels
    return walk(model, cache, mask, trie, node_score, max_tokens).cpu().numpy()


def _level_children(
    trie: SidTrie, d: int, a: int, b: int, dev: torch.device
) -> tuple[slice, torch.Tensor, torch.Tensor]:
    """Depth-(d+1) children of depth-d nodes a..b-1: (their slice, parent ids, tokens)."""
    lo, hi = np.searchsorted(trie.node_parent[d + 1], [a, b])  # sorted: nodes in prefix order
    return (
        slice(int(lo), int(hi)),
        trie.t("node_parent", d + 1, dev)[lo:hi],
        trie.t("node_token", d + 1, dev)[lo:hi],
    )


def _tree_levels(
    model: Any,
    cache: Any,
    mask: torch.Tensor,
    trie: SidTrie,
    node_score: torch.Tensor,
    max_tokens: int,
) -> torch.Tensor:
    """Depths 1..L-1 with tree attention on per-chunk caches: prompt + ancestor ranges + chunk."""
    dev = mask.device
    n_users, width = mask.shape
    n_prompt = mask.sum(1)
    prompt_bias = prompt_mask_bias(model, mask)
    prompt_kv = _cache_kv(cache)
    fed: list[KV] = [prompt_kv]  # index j >= 1: KV of every depth-j node, in node order
    chunk = max(1, max_tokens // n_users)
    for d in range(1, trie.depth):
        n_d = trie.num_nodes(d)
        anc = trie.ancestors[d]  # [n_d, d]: depth-1..d ancestors (the last is the node)
        next_score = torch.empty(n_users, trie.num_nodes(d + 1), device=dev)
        level_kv: list[KV] = []
        for a in range(0, n_d, chunk):
            b = min(n_d, a + chunk)
            c = b - a
            # the chunk's ancestors at depth j are one contiguous range (prefix order)
            ranges = [(int(anc[a, j - 1]), int(anc[b - 1, j - 1]) + 1) for j in range(1, d)]
            parts = [
                [(k[:, :, lo:hi], v[:, :, lo:hi]) for k, v in fed[j]]
                for j, (lo, hi) in enumerate(ranges, 1)
            ]
            offsets = np.cumsum([width] + [hi - lo for lo, hi in ranges])
            cols = np.empty((c, d), np.int64)
            for j, (lo, _) in enumerate(ranges, 1):
                cols[:, j - 1] = offsets[j - 1] + anc[a:b, j - 1] - lo
            cols[:, d - 1] = offsets[-1] + np.arange(c)
            kv = _cat_kv([prompt_kv, *parts])
            step_cache = _cache_like(cache, kv)
            attn = tree_mask(
                prompt_bias, int(offsets[-1]) + c, torch.as_tensor(cols, device=dev)[None]
            )
            out = model(
                input_ids=trie.t("node_token", d, dev)[a:b].expand(n_users, c),
                attention_mask=attn,
                position_ids=(n_prompt + d - 1)[:, None].expand(n_users, c),
                past_key_values=step_cache,
                use_cache=True,
            )
            if d < trie.depth - 1:  # the last fed level is nobody's ancestor
                # copies: a view would keep the chunk's whole cache (a prompt copy) alive
                new = _cache_kv(out.past_key_values)
                level_kv.append([(k[:, :, -c:].clone(), v[:, :, -c:].clone()) for k, v in new])
            sl, par, tok = _level_children(trie, d, a, b, dev)
            next_score[:, sl] = child_scores(out.logits, node_score, a, par, tok)
            del out, step_cache, kv, attn
        if level_kv:
            fed.append(_cat_kv(level_kv))
        node_score = next_score
    return node_score


def _expand_levels(
    model: Any,
    cache: Any,
    mask: torch.Tensor,
    trie: SidTrie,
    node_score: torch.Tensor,
    max_tokens: int,
) -> torch.Tensor:
    """Depths 1..L-1 on per-(user, prefix) copies of the prompt cache (any attention)."""
    dev = mask.device
    n_users = mask.shape[0]
    n_prompt = mask.sum(1)
    for d in range(1, trie.depth):
        n_d = trie.num_nodes(d)
        prefixes = trie.t("prefixes", d, dev)
        next_score = torch.empty(n_users, trie.num_nodes(d + 1), device=dev)
        chunk = max(1, max_tokens // (n_users * d))
        for a in range(0, n_d, chunk):
            b = min(n_d, a + chunk)
            c = b - a
            rep = torch.arange(n_users, device=dev).repeat_interleave(c)
            sub = cache_select(cache, rep, inplace=False)
            am = torch.cat([mask.index_select(0, rep), mask.new_ones(len(rep), d)], 1)
            out = model(
                input_ids=prefixes[a:b].repeat(n_users, 1),  # [users * c, d]
                attention_mask=am,
                position_ids=n_prompt.index_select(0, rep)[:, None] + torch.arange(d, device=dev),
                past_key_values=sub,
                use_cache=True,
            )
            del sub
            sl, par, tok = _level_children(trie, d, a, b, dev)
            logits = out.logits[:, -1].view(n_users, c, -1)
            next_score[:, sl] = child_scores(logits, node_score, a, par, tok)
            del out, logits
        node_score = next_score
    return node_score


# ------------------------------------------------------------------------------ kv caches
def _cache_kv(cache: Any) -> KV:
    """(keys, values) per layer of a transformers `Cache` (``.layers``) or a legacy tuple."""
    if isinstance(cache, (tuple, list)):
        return [(k, v) for k, v in cache]
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    raise TypeError(f"tree scoring cannot read a cache of type {type(cache).__name__}")


def _cat_kv(parts: list[KV]) -> KV:
    """Per layer, the parts' keys and values joined along the sequence (one part: as it is)."""
    if len(parts) == 1:
        return parts[0]
    return [
        (torch.cat([p[i][0] for p in parts], 2), torch.cat([p[i][1] for p in parts], 2))
        for i in range(len(parts[0]))
    ]


def _cache_like(cache: Any, kv: KV) -> Any:
    """A new cache of `cache`'s kind holding `kv`; `cache` itself is left untouched."""
    if isinstance(cache, (tuple, list)):
        return type(cache)(tuple(layer) for layer in kv)
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    for layer, (k, v) in zip(out.layers, kv, strict=True):
        layer.keys, layer.values = k, v
    return out
