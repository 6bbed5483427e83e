"""IIRG's own evaluation: unconstrained generation, then SID parsing.

The model writes freely after the answer's opening `[` (20 beams, 20 returned sequences, no
trie), and the text is parsed back into items by IIRG's rule (snap-research/IIRG,
`sid_based/step10_sid_metric_calculation.py`, ported literally in tests/iirg_port.py):

1. every sequence's SID tokens are read in runs of L (one letter per level, in order: `<a_..>`,
   `<b_..>`, ...); a run out of order is dropped; distinct SIDs are kept in order of appearance;
2. each SID becomes the most popular item carrying it that the user has not seen;
3. the list is cut at 20, then topped up with the other items of those SIDs.

A generated SID that no item carries is *invalid*: hoprec reports the share of sequences that give
no valid SID, and the share of users left with fewer than K items, next to constrained beam and
exact scoring, which cannot produce an invalid item. Constrained decoding hides what this shows:
how often the model, left alone, names an item that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decoding import batches, inference, left_pad, pad_id

RETURN = 20  # IIRG: num_beams=20, num_return_sequences=20, a 20-item list
MAX_NEW_TOKENS = 8  # IIRG's budget: enough for an L-token SID and its closing `]`
SID_TOKEN = re.compile(r"<([a-z]_\d+)>")


def parse_sids(text: str, levels: int) -> list[tuple[str, ...]]:
    """The SIDs written in `text`: its SID tokens in consecutive runs of `levels`, each run kept
    only when its letters are a, b, c, ... in order (IIRG's `parse_codebook_tokens`, for any L)."""
    letters = [chr(ord("a") + i) + "_" for i in range(levels)]
    tokens = [t for t in SID_TOKEN.findall(text) if t[:2] in letters]  # other letters: not SIDs
    out = []
    for i in range(0, len(tokens) - levels + 1, levels):
        run = tokens[i : i + levels]
        if all(t.startswith(p) for t, p in zip(run, letters)):
            out.append(tuple(run))
    return out


def sid_key(sid: str) -> tuple[str, ...]:
    """'<a_1><b_2>' -> ('a_1', 'b_2'): how a stored SID is looked up from parsed text."""
    return tuple(SID_TOKEN.findall(sid))


def items_by_sid(sids: Mapping[int, str]) -> dict[tuple[str, ...], list[int]]:
    """SID -> the items carrying it (item order), from item_idx -> SID string."""
    out: dict[tuple[str, ...], list[int]] = {}
    for item in sorted(sids):
        out.setdefault(sid_key(sids[item]), []).append(int(item))
    return out


def generated_items(
    texts: Sequence[str],
    by_sid: Mapping[tuple[str, ...], Sequence[int]],
    popularity: np.ndarray,
    seen: set[int],
    levels: int,
    k: int = RETURN,
) -> tuple[list[int], int]:
    """(the user's ranked items, how many of `texts` named no real SID) by IIRG's rule."""
    sids: list[tuple[str, ...]] = []
    invalid = 0
    for text in texts:
        parsed = parse_sids(text, levels)
        if not any(s in by_sid for s in parsed):
            invalid += 1
        for s in parsed:
            if s not in sids:
                sids.append(s)
    ranked: list[int] = []
    for s in sids:
        unseen = [i for i in by_sid.get(s, ()) if i not in seen]
        if unseen:  # the most popular; sorted() is stable, so ties keep item order
            best = sorted(unseen, key=lambda i: popularity[i], reverse=True)[0]
            if best not in ranked:
                ranked.append(best)
    ranked = ranked[:k]
    for s in sids:  # top-up with the other items of the generated SIDs
        for i in by_sid.get(s, ()):
            if len(ranked) >= k:
                break
            if i not in seen and i not in ranked:
                ranked.append(i)
    return ranked[:k], invalid


def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    num_beams: int = RETURN,
    max_new_tokens: int = MAX_NEW_TOKENS,
    batch_size: int = 4,
    device: str = "cpu",
) -> list[list[str]]:
    """Each prompt's `num_beams` beam-search continuations as text, unconstrained (transformers'
    `generate`, greedy beams as IIRG runs it), special tokens kept."""
    out: list[list[str]] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else pad_id(model)
    with inference(model):
        for sl in batches(len(prompts), batch_size):
            ids, mask, _ = left_pad(prompts[sl], pad, device)
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=num_beams,
                num_return_sequences=num_beams,
                pad_token_id=pad,
                output_scores=False,
                return_dict_in_generate=False,
            )
            new = gen[:, ids.shape[1] :].tolist()
            texts = [tokenizer.decode(t, skip_special_tokens=False).strip("\n") for t in new]
            out += [
                texts[u * num_beams : (u + 1) * num_beams] for u in range(len(new) // num_beams)
            ]
    return out


@dataclass
class GenerationStats:
    """What unconstrained generation produced, summed over users."""

    users: int = 0
    sequences: int = 0
    invalid: int = 0  # sequences that name no real item's SID
    list_sizes: list[int] = field(default_factory=list)  # items left per user, after parsing

    def short(self, k: int) -> float:
        """Share of users with fewer than k items."""
        return float(np.mean(np.asarray(self.list_sizes) < k)) if self.list_sizes else 0.0

    def summary(self, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
        return {
            "users": self.users,
            "sequences": self.sequences,
            "invalid_rate": self.invalid / max(self.sequences, 1),
            **{f"short@{k}": self.short(k) for k in ks},
        }


def free_scores(
    texts: Sequence[Sequence[str]],
    histories: Sequence[np.ndarray],
    sids: Mapping[int, str],
    popularity: np.ndarray,
    n_items: int,
    stats: GenerationStats | None = None,
) -> np.ndarray:
    """The parsed lists as a score matrix [users, n_items + 1]: rank r scores -r, every other
    item -inf (unranked, as beam search leaves them)."""
    by_sid = items_by_sid(sids)
    levels = len(next(iter(by_sid)))
    out = np.full((len(texts), n_items + 1), -np.inf, np.float32)
    for u, (user_texts, h) in enumerate(zip(texts, histories)):
        items, invalid = generated_items(user_texts, by_sid, popularity, set(map(int, h)), levels)
        out[u, items] = -np.arange(1, len(items) + 1, dtype=np.float32)
        if stats is not None:
            stats.users += 1
            stats.sequences += len(user_texts)
            stats.invalid += invalid
            stats.list_sizes.append(len(items))
    return out


def score_free(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    histories: Sequence[np.ndarray],
    sids: Mapping[int, str],
    popularity: np.ndarray,
    n_items: int,
    num_beams: int = RETURN,
    batch_size: int = 4,
    device: str = "cpu",
    stats: GenerationStats | None = None,
) -> np.ndarray:
    """Generate, parse, rank: IIRG's evaluation of one batch of users as a score matrix."""
    if len(popularity) != n_items + 1:
        raise ValueError(f"popularity has {len(popularity)} entries, expected {n_items + 1}")
    texts = generate_texts(
        model, tokenizer, prompts, num_beams=num_beams, batch_size=batch_size, device=device
    )
    return free_scores(texts, histories, sids, popularity, n_items, stats)
