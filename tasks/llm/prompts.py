"""Every text the LLM reads or writes, defined once: the system prompt, the task prompts, how an
item is written (`[<sid>] Title: ...`), and the chat encoding that training, token statistics
and evaluation share, so the prompt a model is scored with is the one it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from ..data.warehouse import run

SYSTEM = "You are a recommender system. Items are written as [<semantic ID>] Title: ..."
# PauseRec: k copies of one learned token between the prompt and the answer, no loss on them
PAUSE = "<pause>"


@dataclass(frozen=True)
class PromptForm:
    """How a run frames every prompt. Training sets it, the run's meta keeps it (`of`), and
    scoring reads it back, so a model is always asked the way it was taught."""

    pauses: int = 0  # PauseRec's <pause> tokens after the prompt
    # hoprec's system prompt; False: an empty system message. On SmolLM2 that is 15 framing
    # tokens instead of 36 (its template's own default system prompt would cost 31).
    system: bool = True

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> PromptForm:
        """From a run's saved params (older runs: the defaults)."""
        return cls(int(params.get("pause_tokens", 0)), bool(params.get("system_prompt", True)))


PROMPTS = {
    "next-item": (
        "A user interacted with these items, oldest first:\n{input}\n"
        "Which item will the user interact with next?"
    ),
    "next-item-all": (
        "A user's first item was:\n{input}\n"
        "List the items the user interacted with after it, in order."
    ),
    "collaborative": (
        "Item: {input}\nList the {n} items that the same users most often "
        "interact with within a few steps of it, strongest first."
    ),
    "semantic": "Item: {input}\nList the {n} items most similar to it in content, closest first.",
    "sid-to-title": "Which item has the semantic ID {sid}?",
    "title-to-sid": 'What is the semantic ID of the item titled "{title}"?',
}


def item_label(sid: str, title: str | None) -> str:
    """`[<sid>] Title: ...` (or `[<sid>]` without titles): the one way an item appears in any
    prompt or answer, in training and at evaluation alike."""
    return f"[{sid}] Title: {title}" if title is not None else f"[{sid}]"


def messages(prompt: str, answer: str) -> list[dict[str, str]]:
    """One sample's chat messages: the user's prompt and the assistant's answer."""
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def prompt_ids(tokenizer: Any, user_content: str, form: PromptForm = PromptForm()) -> list[int]:
    """The chat-formatted prompt up to the assistant's first token, then the form's pause tokens
    (PauseRec): the one encoding training and evaluation share."""
    system = SYSTEM if form.system else ""
    ids = list(
        tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": user_content}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
    )
    return ids + pause_ids(tokenizer, form.pauses)


def pause_ids(tokenizer: Any, pauses: int) -> list[int]:
    """`pauses` copies of the pause token's id (which the tokenizer must have been given)."""
    if not pauses:
        return []
    pid = tokenizer.convert_tokens_to_ids(PAUSE)
    if pid is None or pid == tokenizer.unk_token_id or pid < 0:
        raise ValueError(f"the tokenizer has no {PAUSE} token: was it trained with pause tokens?")
    return [int(pid)] * pauses


def answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """The assistant's answer and its end-of-turn token: the tokens that carry the loss."""
    return tokenizer.encode(answer + (tokenizer.eos_token or ""), add_special_tokens=False)


def encode_sample(
    tokenizer: Any, messages: Sequence[dict[str, str]], form: PromptForm = PromptForm()
) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of one instruction sample (user + assistant messages); pause
    tokens end the prompt, so they carry no loss."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    answer = next(m["content"] for m in messages if m["role"] == "assistant")
    return prompt_ids(tokenizer, user, form), answer_ids(tokenizer, answer)


def history_prompts(
    tokenizer: Any,
    histories: Sequence[np.ndarray],
    labels: dict[int, str],
    history: int,
    form: PromptForm = PromptForm(),
) -> list[list[int]]:
    """Next-item prompts of the last `history` items, then the pause tokens, ending with the
    answer's opening `[`."""
    opening = tokenizer.encode("[", add_special_tokens=False)
    return [
        prompt_ids(
            tokenizer,
            PROMPTS["next-item"].format(
                input="\n".join(labels[int(i)] for i in np.asarray(h)[-history:])
            ),
            form,
        )
        + opening
        for h in histories
    ]


def item_titles(
    con: duckdb.DuckDBPyConnection, dataset: str, sids: dict[int, str]
) -> dict[int, str]:
    """item_idx -> title (else item id) of every item, which must all have a SID."""
    rows = run(con, "instructions/item_titles", {"dataset": dataset}).fetchall()
    missing = [i for i, _ in rows if i not in sids]
    if missing:
        raise ValueError(
            f"{len(missing)} items of {dataset!r} have no SID (e.g. item_idx "
            f"{missing[0]}); run `hoprec sids --dataset {dataset}` first"
        )
    return dict(rows)


def item_labels(
    con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str, titles: bool = True
) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """(labels, sids, titles) by item_idx for a SID version."""
    from ..sids.store import load_sids

    sids = load_sids(con, dataset, sid_version)
    names = item_titles(con, dataset, sids)
    return {i: item_label(sids[i], t if titles else None) for i, t in names.items()}, sids, names
