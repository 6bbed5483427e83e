"""SimGR (arXiv 2602.07847) as a training objective and a scorer: the user vector is the LLM's
last hidden state after the history, an item's vector the mean of its SID tokens' rows in the
LLM's own input embedding table (the trainable new rows included), and the loss is the
cross-entropy of a temperature-scaled cosine softmax over the whole catalogue. Ranking is the
same similarity over every item: exact, no beam, no invalid items.

Two forms of the history (``positions``): ``all`` (default) - each user's train sequence as
bare SID tokens in windows of `window + 1` items, every position trained in one causal pass (the
hidden state at an item's last SID token predicts the next item), scored on the last `window`
items; ``prompt`` - the build's chat next-item prompt up to the answer's opening `[`, one target
a sample. The IIRG tasks become extra (item -> neighbour) pairs under the same loss at their
build `loss_weight` (history: the item's SID tokens, or in the prompt form the sample's prompt).

Temperature 0.07 by default: cosines lie in [-1, 1], so 1/T bounds the logits; at T = 1 the
softmax over 10^3-10^4 items stays nearly flat (the loss cannot fall far below log n), at 0.07
a cosine gap of 0.3 is a factor ~70 - the usual contrastive value (InfoNCE, MoCo, CLIP's
start). SimGR gives none: tune it on validation, one run a value (the ranking does not depend
on T, training does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Batch = dict[str, torch.Tensor]
Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]  # histories -> [users, n_items + 1]
NEXT_TASKS = ("next-item", "next-item-all")
PAIR_TASKS = ("collaborative", "semantic")


@dataclass
class SimgrInputs:
    """What SimGR training needs beyond the build's Parquet: every item's SID (the catalogue
    the softmax runs over) and, for the all-position form, the users' training sequences."""

    item_sids: Mapping[int, str]  # item_idx (1..n) -> "<a_1><b_2>..."
    sequences: list[np.ndarray] = field(default_factory=list)  # train split, oldest first
    window: int | None = None  # history items (the build's); None: as many as max_len holds


@dataclass
class Unit:
    """One training row: token ids, and (position, target item, weight) of each prediction."""

    ids: list[int]
    targets: list[tuple[int, int, float]]


# ------------------------------------------------------------------------------ the vectors
def _wide(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (bf16 autocast must not round the softmax), float64 kept (tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def item_tokens(tokenizer: Any, item_sids: Mapping[int, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """([n_items + 1, L] SID token ids, [n_items + 1, L] mask); row 0 is padding (masked)."""
    n = max(item_sids)
    toks = [re.findall(r"<[^<>]+>", item_sids[i]) if i in item_sids else [] for i in range(n + 1)]
    if any(not toks[i] for i in range(1, n + 1)):
        raise ValueError("every item 1..n needs a SID for the SimGR softmax")
    width = max(len(t) for t in toks)
    ids = torch.zeros((n + 1, width), dtype=torch.long)
    mask = torch.zeros((n + 1, width), dtype=torch.float32)
    unk = tokenizer.unk_token_id
    for i, t in enumerate(toks):
        row = tokenizer.convert_tokens_to_ids(t)
        if any(r is None or r < 0 or (unk is not None and r == unk) for r in row):
            raise ValueError(
                "the tokenizer lacks some SID tokens: was it trained on this SID version?"
            )
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1.0
    return ids, mask


def item_vectors(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, center: bool = False
) -> torch.Tensor:
    """[n_items + 1, d]: each item's SID token embeddings, mean-pooled (row 0 meaningless).
    Through the model's input embedding module, so LoRA's trainable SID rows are the ones used.
    `center` subtracts the catalogue's mean item vector (hoprec's option, not SimGR's): every
    SID row starts at the vocabulary's mean (base.init_new_rows), so raw item vectors share one
    dominant direction and their cosines barely differ (pairwise .977 after 2,400 CPU steps)."""
    emb = _wide(model.get_input_embeddings()(ids))
    vec = (emb * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    return vec - vec[1:].mean(0, keepdim=True) if center else vec


def hidden_states(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """[B, T, d] last hidden states (after the final norm), without the LM head: the 49k-word
    head is not needed for SimGR and would be a fifth of the compute."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    out = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state


def cosine_logits(users: torch.Tensor, items: torch.Tensor, temperature: float) -> torch.Tensor:
    """[N, n_items]: cosine(user, item) / T for items 1..n (column j is item j + 1)."""
    return F.normalize(_wide(users), dim=-1) @ F.normalize(_wide(items[1:]), dim=-1).T / temperature


def simgr_loss(
    model: Any,
    batch: Batch,
    n_target: int,
    ids: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    center: bool = False,
) -> torch.Tensor:
    """sum_i w_i * CE(cosine softmax over all items, target_i) / targets of the whole step; one
    causal forward pass gives every position's user vector."""
    hid = hidden_states(model, batch["input_ids"], batch["attention_mask"])
    users = hid[batch["rows"], batch["cols"]]
    items = item_vectors(model, ids.to(hid.device), mask.to(hid.device), center)
    ce = F.cross_entropy(
        cosine_logits(users, items, temperature), batch["labels"] - 1, reduction="none"
    )
    return (ce * batch["weights"]).sum() / max(n_target, 1)


# ------------------------------------------------------------------------------ the batches
def window_items(max_len: int, sid_len: int) -> int:
    """History items the all form sees: a training window of window + 1 items fits max_len."""
    return max(1, max_len // sid_len - 1)


def build_window(build_params: Mapping[str, Any]) -> int:
    """The all form's history in a warehouse run: the build's, what the generative model reads
    (and short windows keep a batch's padding small: 255-item windows cost ~40 s a CPU step)."""
    return int(build_params["history"])


def sequence_units(
    sequences: Sequence[np.ndarray], ids: torch.Tensor, window: int, weight: float
) -> list[Unit]:
    """Each sequence cut into windows of `window + 1` items overlapping by one, so every
    transition is predicted exactly once, from up to `window` items before it."""
    sid = sid_lists(ids)
    out = []
    for seq in sequences:
        seq = np.asarray(seq, np.int64).tolist()
        for start in range(0, max(len(seq) - 1, 0), window):
            toks: list[int] = []
            targets = []
            for k, item in enumerate(seq[start : start + window + 1]):
                if k:  # the hidden state at the previous item's last token predicts this one
                    targets.append((len(toks) - 1, item, weight))
                toks.extend(sid[item])
            out.append(Unit(toks, targets))
    return out


def sid_lists(ids: torch.Tensor) -> list[list[int]]:
    """Each item's SID token ids as a plain list (Python loops over tensors are slow)."""
    return [[t for t in row if t > 0] for row in ids.tolist()]


def pair_units(pairs: Sequence[tuple[int, int, float]], ids: torch.Tensor) -> list[Unit]:
    """(item, neighbour, weight) pairs, one unit an (item, weight) with all its neighbours: the
    history is the item's SID tokens alone."""
    groups: dict[tuple[int, float], list[int]] = {}
    for src, dst, w in pairs:
        groups.setdefault((int(src), float(w)), []).append(int(dst))
    sid = sid_lists(ids)
    return [Unit(sid[s], [(len(sid[s]) - 1, d, w) for d in ds]) for (s, w), ds in groups.items()]


def prompt_units(tokenizer: Any, rows: Sequence[dict[str, Any]], max_len: int) -> list[Unit]:
    """The build's samples in the prompt form: the chat prompt + the answer's opening `[`;
    next-item samples keep their first target, collaborative / semantic ones all of theirs."""
    from .prompts import encode_sample

    opening = tokenizer.encode("[", add_special_tokens=False)
    out = []
    for r in rows:
        prompt = (encode_sample(tokenizer, r["messages"])[0] + opening)[-max_len:]
        targets = r["target_items"][:1] if r["task"] in NEXT_TASKS else r["target_items"]
        out.append(
            Unit(prompt, [(len(prompt) - 1, int(t), float(r["loss_weight"])) for t in targets])
        )
    return out


def collate(units: Sequence[Unit], pad_id: int) -> Batch:
    """Right-padded ids and mask, and the flattened predictions: (rows, cols) where the user
    vector is read, labels (item_idx) and weights. `labels` counts the step's targets."""
    width = max(len(u.ids) for u in units)
    ids = torch.full((len(units), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(units), width), dtype=torch.long)
    for r, u in enumerate(units):
        ids[r, : len(u.ids)] = torch.tensor(u.ids)
        mask[r, : len(u.ids)] = 1
    preds = [(r, pos, item, w) for r, u in enumerate(units) for pos, item, w in u.targets]
    rows, cols, labels, weights = zip(*preds) if preds else ((), (), (), ())
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "rows": torch.tensor(rows, dtype=torch.long),
        "cols": torch.tensor(cols, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "weights": torch.tensor(weights, dtype=torch.float32),
    }


def build_rows(path: Any, tasks: Sequence[str], messages: bool) -> list[dict[str, Any]]:
    """The build's samples SimGR can use (next-item, collaborative, semantic), filtered."""
    import pyarrow.parquet as pq

    cols = ["task", "input_items", "target_items", "loss_weight"] + ["messages"] * messages
    keep = set(tasks) if tasks else set(NEXT_TASKS + PAIR_TASKS)
    return [
        r
        for r in pq.read_table(path, columns=cols).to_pylist()
        if r["task"] in keep and r["task"] in NEXT_TASKS + PAIR_TASKS and r["loss_weight"] > 0
    ]


def training_units(
    path: Any, params: Any, tokenizer: Any, inputs: SimgrInputs, ids: torch.Tensor
) -> list[Unit]:
    """Every training unit of a run: sequences (all) or prompts (prompt), plus the IIRG pairs."""
    rows = build_rows(path, params.tasks, messages=params.positions == "prompt")
    if params.positions == "prompt":
        return prompt_units(tokenizer, rows, params.max_len)
    next_w = [r["loss_weight"] for r in rows if r["task"] in NEXT_TASKS]
    units = []
    if next_w:  # the sequences stand for the build's next-item task, at its weight
        window = inputs.window or window_items(params.max_len, ids.shape[1])
        units = sequence_units(inputs.sequences, ids, window, float(max(next_w)))
    pairs = [
        (int(r["input_items"][0]), int(t), float(r["loss_weight"]))
        for r in rows
        if r["task"] in PAIR_TASKS
        for t in r["target_items"]
    ]
    return units + pair_units(pairs, ids)


def simgr_training(
    path: Any, params: Any, tokenizer: Any, inputs: SimgrInputs | None
) -> tuple[list[Unit], Callable[[np.ndarray], Batch], Callable[[Any, Batch, int], torch.Tensor]]:
    """(units, encode(indices) -> batch, loss(model, batch, n_target)): what train_llm's loop
    needs to train SimGR instead of the generative loss."""
    if inputs is None:
        raise ValueError("objective 'simgr' needs the items' SIDs (SimgrInputs)")
    ids, mask = item_tokens(tokenizer, inputs.item_sids)
    units = [u for u in training_units(path, params, tokenizer, inputs, ids) if u.targets]
    if not units:
        raise ValueError(f"no SimGR training targets in {path} ({params.positions} form)")

    def encode(idx: np.ndarray) -> Batch:
        return collate([units[i] for i in idx], tokenizer.pad_token_id)

    def loss(model: Any, batch: Batch, n_target: int) -> torch.Tensor:
        return simgr_loss(
            model, batch, n_target, ids, mask, params.temperature, params.simgr_center
        )

    return units, encode, loss
