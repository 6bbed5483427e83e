"""Exact item-level scoring over semantic IDs.

`exact_item_scores`: log P(SID | prompt) of every item, exactly (the SimGR argument: beam
search prunes, so the ranking it gives is biased). The prompt is run once; then the trie is
walked level by level, and each distinct prefix is evaluated once, so the cost is about the
number of trie nodes, not items x L forwards. Two ways of doing a level:

- ``method="tree"`` (default): all prefixes of a level are appended to the *one* cached prompt
  as a packed sequence with a custom 4D attention mask (each node sees the prompt, its own
  ancestors and itself; positions = prompt length + depth), i.e. tree attention. The prompt KV
  is never copied; one token is fed per trie node (the deepest fed level is cropped from the
  cache after each chunk, since it is nobody's ancestor).
- ``method="expand"``: the cached prompt KV is expanded to one row per (user, prefix), chunked,
  and the l prefix tokens are fed on it. Works with any attention implementation (the tree
  method needs one that honours a 4D float mask: eager and sdpa do, flash-attention does not;
  ``method="auto"``, the default, checks with `tree_attention_ok`).
"""

from __future__ import annotations

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


def exact_item_scores(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    trie: SidTrie,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    method: str = "auto",
    max_tokens: int = 1024,
) -> np.ndarray:
    """log P(item's SID | prompt) for every user and item: float32 [n_users, n_items], exact.

    Columns follow the order of the items given to `SidTrie.from_token_ids` (``trie.item_ids``).
    Users go `batch_size` at a time; the prompt is run once, then every distinct prefix of length
    1..L-1 is evaluated once (``method="tree"``: packed on the shared prompt cache with tree
    attention, one token per trie node; ``"expand"``: on per-prefix copies of the prompt cache;
    ``"auto"``: tree where `tree_attention_ok(model)`), in chunks of about `max_tokens`
    (users x fed tokens) per forward, which bounds the memory of the logits and the attention.
    """
    method = pick_method(model, method, "expand")
    n = len(prompt_ids)
    result = np.empty((n, trie.n_items), np.float32)
    with inference(model):
        for sl in batches(n, batch_size):
            leaf = _exact_batch(
                model, prompt_ids[sl], trie, torch.device(device), method, max_tokens
            )
            result[sl] = leaf[:, trie.item_leaf]
    return result


def _exact_batch(
    model: Any,
    prompts: Sequence[Sequence[int]],
    trie: SidTrie,
    dev: torch.device,
    method: str,
    max_tokens: int,
) -> np.ndarray:
    n_users = len(prompts)
    ids, mask, pos = left_pad(prompts, pad_id(model), dev)
    out = run_prompt(model, ids, mask, pos)
    cache = out.past_key_values
    logits = out.logits[:, -1]
    check_vocab(model, logits, trie)
    logp0 = torch.log_softmax(logits.float(), -1)
    del out, logits
    # node_score: [users, n_d] log P(prefix) of every depth-d node
    node_score = logp0[:, trie.t("node_token", 1, dev)]
    n_prompt = mask.sum(1)  # real prompt lengths
    width = ids.shape[1]
    if method == "tree":
        prompt_bias = prompt_mask_bias(model, mask)
    fed = 0  # trie nodes appended to the cache (tree)
    for d in range(1, trie.depth):
        n_d = trie.num_nodes(d)
        parent_next = trie.node_parent[d + 1]  # sorted (nodes are in prefix order)
        tok_next = trie.t("node_token", d + 1, dev)
        par_next = trie.t("node_parent", d + 1, dev)
        next_score = torch.empty(n_users, trie.num_nodes(d + 1), device=dev)
        if method == "tree":
            # cache column of every depth-j node: the prompt first, then depths 1, 2, ... in order
            # (the last fed level is cropped after each chunk, so it never needs a column)
            starts = [width + sum(trie.num_nodes(j) for j in range(1, k)) for k in range(1, d + 1)]
            anc_cols = trie.t("ancestors", d, dev) + torch.as_tensor(starts, device=dev)
            chunk = max(1, max_tokens // n_users)
        else:
            prefixes = trie.t("prefixes", d, dev)
            chunk = max(1, max_tokens // (n_users * d))
        for a in range(0, n_d, chunk):
            b = min(n_d, a + chunk)
            c = b - a
            if method == "tree":
                cols = anc_cols[a:b].clone()
                cols[:, -1] = width + fed + torch.arange(c, device=dev)  # the chunk itself
                attn = tree_mask(prompt_bias, width + fed + c, cols[None])
                step = trie.t("node_token", d, dev)[a:b].expand(n_users, c)
                position = (n_prompt + d - 1)[:, None].expand(n_users, c)
                out = model(
                    input_ids=step,
                    attention_mask=attn,
                    position_ids=position,
                    past_key_values=cache,
                    use_cache=True,
                )
                cache = out.past_key_values
                if d == trie.depth - 1 and hasattr(cache, "crop"):
                    cache.crop(-c)  # last fed level: never an ancestor, keep the kv short
                else:
                    fed += c
                logp = torch.log_softmax(out.logits.float(), -1)  # [users, c, vocab]
            else:
                rep = torch.arange(n_users, device=dev).repeat_interleave(c)
                sub = cache_select(cache, rep, inplace=False)
                step = prefixes[a:b].repeat(n_users, 1)  # [users * c, d]
                am = torch.cat([mask.index_select(0, rep), mask.new_ones(len(rep), d)], 1)
                position = n_prompt.index_select(0, rep)[:, None] + torch.arange(d, device=dev)
                out = model(
                    input_ids=step,
                    attention_mask=am,
                    position_ids=position,
                    past_key_values=sub,
                    use_cache=True,
                )
                del sub
                logp = torch.log_softmax(out.logits[:, -1].float(), -1).view(n_users, c, -1)
            del out
            lo, hi = np.searchsorted(parent_next, [a, b])
            par = par_next[lo:hi]
            next_score[:, lo:hi] = node_score[:, par] + logp[:, par - a, tok_next[lo:hi]]
            del logp
        node_score = next_score
    return node_score.cpu().numpy()
