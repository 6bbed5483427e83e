"""SimGR's ranking (simgr.py trains it): cosine(user, item) / T over the whole catalogue, for
scoring a finished run (`scorer_from_meta`, read from its meta) and for checkpoint selection on
validation (`simgr_validator`). Exact: no beam, no invalid items."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .simgr import (
    Scorer,
    Unit,
    build_window,
    collate,
    cosine_logits,
    hidden_states,
    item_tokens,
    item_vectors,
    sid_lists,
    window_items,
)


def simgr_scorer(
    model: Any,
    tokenizer: Any,
    item_sids: Mapping[int, str],
    n_items: int,
    temperature: float,
    render: Callable[[Sequence[np.ndarray]], list[list[int]]],
    batch_size: int = 32,
    device: str = "cpu",
    center: bool = False,
) -> Scorer:
    """histories -> scores [users, n_items + 1] = cosine(user, item) / T over the whole
    catalogue (items centred when the run was: simgr.item_vectors); column 0 (padding) and each
    user's history items are -inf."""
    ids, mask = item_tokens(tokenizer, item_sids)
    if ids.shape[0] != n_items + 1:
        raise ValueError(f"{ids.shape[0] - 1} items have SIDs, the catalogue has {n_items}")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def score(histories: Sequence[np.ndarray]) -> np.ndarray:
        out = np.full((len(histories), n_items + 1), -np.inf, np.float32)
        with torch.inference_mode():
            items = item_vectors(model, ids.to(device), mask.to(device), center)
            seqs = render(histories)
            for s in range(0, len(seqs), batch_size):
                chunk = seqs[s : s + batch_size]
                batch = collate([Unit(q, [(len(q) - 1, 1, 1.0)]) for q in chunk], pad)
                hid = hidden_states(
                    model, batch["input_ids"].to(device), batch["attention_mask"].to(device)
                )
                users = hid[batch["rows"].to(device), batch["cols"].to(device)]
                out[s : s + len(chunk), 1:] = cosine_logits(users, items, temperature).cpu().numpy()
        for u, h in enumerate(histories):  # history items are not ranked
            out[u, np.asarray(h, dtype=np.int64)] = -np.inf
        out[:, 0] = -np.inf
        return out

    return score


def sid_renderer(
    tokenizer: Any, item_sids: Mapping[int, str], window: int
) -> Callable[[Sequence[np.ndarray]], list[list[int]]]:
    """The all form's history: SID tokens of the last `window` items (an empty history reads
    as the end-of-text token alone)."""
    sid = sid_lists(item_tokens(tokenizer, item_sids)[0])
    empty = [tokenizer.eos_token_id or 0]

    def render(histories: Sequence[np.ndarray]) -> list[list[int]]:
        tail = [np.asarray(h, np.int64)[-window:].tolist() for h in histories]
        return [[t for i in h for t in sid[i]] or empty for h in tail]

    return render


def run_items(
    con: Any, dataset: str, meta: Mapping[str, Any]
) -> tuple[dict[int, str], dict[int, str] | None]:
    """(SIDs, prompt labels or None) of a SimGR run's items: read while the warehouse is open."""
    from ..sids.store import load_sids
    from .prompts import item_labels

    if meta["params"].get("positions", "all") == "prompt":
        titles = meta["build_params"].get("titles", True)
        labels, sids, _ = item_labels(con, dataset, meta["sid_version"], titles)
        return sids, labels
    return load_sids(con, dataset, meta["sid_version"]), None


def meta_scorer(
    model: Any,
    tokenizer: Any,
    meta: Mapping[str, Any],
    sids: Mapping[int, str],
    labels: Mapping[int, str] | None,
    n_items: int,
    batch_size: int = 32,
    device: str = "cpu",
) -> Scorer:
    """The scorer of a SimGR run in the form and at the temperature its meta records."""
    from .prompts import history_prompts

    p = meta["params"]
    render: Callable[[Sequence[np.ndarray]], list[list[int]]]
    if labels is not None:
        history, lab = meta["build_params"]["history"], dict(labels)

        def render(h: Sequence[np.ndarray]) -> list[list[int]]:
            return [q[-p["max_len"] :] for q in history_prompts(tokenizer, h, lab, history)]
    else:
        width = item_tokens(tokenizer, sids)[0].shape[1]
        window = meta.get("simgr_window") or window_items(p["max_len"], width)
        render = sid_renderer(tokenizer, sids, window)
    t, center = p["temperature"], p.get("simgr_center", False)
    return simgr_scorer(model, tokenizer, sids, n_items, t, render, batch_size, device, center)


def scorer_from_meta(
    con: Any,
    dataset: str,
    model: Any,
    tokenizer: Any,
    meta: Mapping[str, Any],
    n_items: int,
    batch_size: int = 32,
    device: str = "cpu",
) -> Scorer:
    """The scorer of a finished SimGR run (score_trained's branch for it)."""
    sids, labels = run_items(con, dataset, meta)
    return meta_scorer(model, tokenizer, meta, sids, labels, n_items, batch_size, device)


def ndcg_at_10(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean NDCG@10 of one target a user (llm may not import evaluation: the one line here)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    hit = top == np.asarray(targets)[:, None]
    return float((hit / np.log2(np.arange(2, 12))[None, :]).sum(1).mean()) if len(top) else 0.0


def simgr_validator(
    con: Any,
    dataset: str,
    build: Mapping[str, Any],
    params: Any,
    hists: Sequence[np.ndarray],
    targets: np.ndarray,
) -> Callable[[Any, Any], float]:
    """(model, tokenizer) -> validation NDCG@10 of the cosine ranking, for checkpoint selection
    (and so the temperature can be chosen on validation: one run a value)."""
    from ..data.sequences import n_items
    from ..devices import resolve_device

    meta = {
        "params": params.identity(),
        "build_params": build["params"],
        "sid_version": build["sid_version"],
        "simgr_window": build_window(build["params"]),
    }
    n, (sids, labels) = n_items(con, dataset), run_items(con, dataset, meta)
    device = str(resolve_device(params.device))

    def validate(model: Any, tokenizer: Any) -> float:
        was_training = model.training
        model.eval()
        score = meta_scorer(model, tokenizer, meta, sids, labels, n, device=device)
        value = ndcg_at_10(score(hists), targets)
        model.train(was_training)
        return value

    return validate
