"""A fine-tuned LLM as a scorer: the user's history rendered exactly as in training (the
next-item prompt of the model's instruction build), then the item's SID decoded after the
answer's opening `[`, constrained to the trie of real items.

Two ways to score (``decode``):
* ``beam`` - trie-constrained beam search: the top `num_beams` items get their SID
  log-probability, the rest of the catalogue ties below them (fast; R/NDCG@K exact for K <= beams).
* ``exact`` - every item's exact log P(SID | prompt) by walking the trie over the cached prompt
  (the SimGR argument: an unbiased full ranking; ~2,400 trie nodes a user, so a GPU job).
* ``free`` - IIRG's own evaluation: unconstrained generation (20 beams, 20 sequences), SIDs
  parsed back into items (generation.py); an invalid SID is possible and counted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..sids.trie import SidTrie
from .decoding import beam_scores, constrained_beam_search
from .exact import exact_item_scores
from .generation import GenerationStats, score_free
from .prompts import PromptForm, history_prompts

DECODE = ("beam", "exact", "free")
Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]  # histories -> [users, n_items + 1]


def item_trie(tokenizer: Any, sids: dict[int, str]) -> SidTrie:
    """The trie of every item's SID token ids (items = item_idx)."""
    items = np.array(sorted(sids), dtype=np.int64)
    tokens = [re.findall(r"<[^<>]+>", sids[i]) for i in items]
    ids = np.array([tokenizer.convert_tokens_to_ids(t) for t in tokens], dtype=np.int64)
    unk = tokenizer.unk_token_id
    if (unk is not None and (ids == unk).any()) or (ids < 0).any():
        raise ValueError("the tokenizer lacks some SID tokens: was it trained on this SID version?")
    return SidTrie.from_token_ids(items, ids)


def llm_scorer(
    model: Any,
    tokenizer: Any,
    sids: dict[int, str],
    labels: dict[int, str],
    n_items: int,
    history: int = 20,
    decode: str = "beam",
    num_beams: int = 20,
    batch_size: int = 8,
    device: str = "cpu",
    timings: dict[str, float] | None = None,
    popularity: np.ndarray | None = None,
    stats: GenerationStats | None = None,
    form: PromptForm = PromptForm(),
) -> Scorer:
    """histories -> scores [users, n_items + 1] (log P of the SID, or -rank for ``free``;
    history items excluded). ``free`` needs each item's `popularity` (a SID shared by several
    items names the most popular) and sums what it generated into `stats`."""
    if decode not in DECODE:
        raise ValueError(f"decode must be one of {DECODE}, got {decode!r}")
    if decode == "free" and popularity is None:
        raise ValueError("free generation needs the items' popularity")
    trie = item_trie(tokenizer, sids)

    def score(histories: Sequence[np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        prompts = history_prompts(tokenizer, histories, labels, history, form)
        if decode == "beam":
            items, logp = constrained_beam_search(
                model,
                prompts,
                trie,
                num_beams=num_beams,
                top_k=num_beams,
                exclude=[set(map(int, h)) for h in histories],
                batch_size=batch_size,
                device=device,
            )
            out = beam_scores(items, logp, n_items)
        elif decode == "free":
            assert popularity is not None
            out = score_free(
                model,
                tokenizer,
                prompts,
                histories,
                sids,
                popularity,
                n_items,
                num_beams=num_beams,
                batch_size=batch_size,
                device=device,
                stats=stats,
            )
        else:
            exact = exact_item_scores(
                model, prompts, trie, batch_size=max(1, batch_size // 2), device=device
            )
            out = np.full((len(histories), n_items + 1), -np.inf, np.float32)
            out[:, trie.item_ids] = exact
            for u, h in enumerate(histories):  # history items are not ranked
                out[u, np.asarray(h, dtype=np.int64)] = -np.inf
        if timings is not None:
            timings["seconds"] = timings.get("seconds", 0.0) + time.perf_counter() - t0
            timings["users"] = timings.get("users", 0) + len(histories)
        return out

    return score


def score_trained(
    con: Any,
    dataset: str,
    path: str,
    histories: Sequence[np.ndarray],
    n_items: int,
    decode: str = "beam",
    num_beams: int = 20,
    batch_size: int = 8,
    device: str = "auto",
    popularity: np.ndarray | None = None,
    stats: GenerationStats | None = None,
) -> np.ndarray:
    """A trained run's scores [users, n_items + 1]: the adapter merged into its base (10x faster
    than an unmerged PeftModel on CPU), prompts from the run's own instruction build."""
    import torch

    from ..devices import resolve_device
    from .checkpoints import load_trained
    from .prompts import item_labels

    dev = resolve_device(device)
    model, tokenizer, meta = load_trained(path, str(dev), merge=True)
    if meta.get("objective") == "simgr":  # cosine / T over every item: no decoding
        from .simgr_scoring import scorer_from_meta

        simgr = scorer_from_meta(con, dataset, model, tokenizer, meta, n_items, device=str(dev))
        return simgr(histories)
    build = meta["build_params"]
    labels, sids, _ = item_labels(con, dataset, meta["sid_version"], build.get("titles", True))
    scorer = llm_scorer(
        model,
        tokenizer,
        sids,
        labels,
        n_items,
        history=build["history"],
        decode=decode,
        num_beams=num_beams,
        batch_size=batch_size,
        device=str(dev),
        popularity=popularity,
        stats=stats,
        form=PromptForm.of(meta["params"]),
    )
    with torch.inference_mode():
        return scorer(histories)
