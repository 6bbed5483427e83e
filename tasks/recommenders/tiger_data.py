"""TIGER's training data: token layout, (user, history -> next item) examples, IIRG's item pairs.

The vocabulary is PAD (also the decoder start), EOS, NO_USER, then the SID codes (token =
3 + offset[level] + code, levels side by side so the vocabulary is as small as the codebooks),
then `user_buckets` hashed user tokens. An example is an encoder input (a user token, the SID
tokens of up to `history` items, EOS) and one target item (decoder: its 4 SID tokens + EOS),
with a loss weight: next-item examples come from every position of the train sequences, IIRG's
collaborative and semantic samples add (one item -> one neighbour) pairs with their task's
weight and the NO_USER token.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PAD, EOS, NO_USER = 0, 1, 2  # special tokens; SID tokens start at 3
L = 4  # SID length (a, b, c, d)
IIRG_TASKS = ("collaborative", "semantic")


def check_codes(codes: np.ndarray) -> np.ndarray:
    """int64 [n + 1, 4], non-negative, rows 1..n distinct (a trie needs unique SIDs)."""
    codes = np.array(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != L or len(codes) < 2 or (codes[1:] < 0).any():
        raise ValueError(f"codes must be non-negative [n_items + 1, {L}], got {codes.shape}")
    if len(np.unique(codes[1:], axis=0)) != len(codes) - 1:
        raise ValueError("codes rows 1..n_items must be distinct")
    codes[0] = 0
    return codes


def sid_tokens(codes: np.ndarray) -> np.ndarray:
    """Token ids [n_items + 1, 4]: 3 + offset[level] + code, the pad row all PAD."""
    sizes = codes[1:].max(0) + 1
    tok = codes + 3 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    tok[0] = PAD
    return tok


def first_user_token(codes: np.ndarray) -> int:
    """The first user-bucket token (right after the SID tokens)."""
    return int(3 + (codes[1:].max(0) + 1).sum())


def user_token(users: np.ndarray | None, n: int, codes: np.ndarray, buckets: int) -> np.ndarray:
    """[n] user tokens: a multiplicative hash of each user id into `buckets` (TIGER's hashing
    trick; stable across processes), NO_USER where users is None or an id is negative."""
    if users is None:
        return np.full(n, NO_USER, np.int64)
    u = np.asarray(users, np.int64)
    if len(u) != n:
        raise ValueError(f"need one user id per history ({n}), got {len(u)}")
    h = (u.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32) % np.uint64(buckets)
    return np.where(u < 0, NO_USER, first_user_token(codes) + h.astype(np.int64))


@dataclass
class Examples:
    """Training examples as flat arrays: history item ids (right-padded with 0), one user
    token, one target item and one loss weight per example."""

    hist: np.ndarray  # [n, history] int64, 0 = padding
    user: np.ndarray  # [n] int64 tokens
    target: np.ndarray  # [n] int64 item ids
    weight: np.ndarray  # [n] float32

    def __len__(self) -> int:
        return len(self.target)

    def take(self, idx: np.ndarray) -> Examples:
        return Examples(self.hist[idx], self.user[idx], self.target[idx], self.weight[idx])

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        width = max(p.hist.shape[1] for p in parts)
        hist = [np.pad(p.hist, ((0, 0), (0, width - p.hist.shape[1]))) for p in parts]
        return Examples(
            np.concatenate(hist),
            np.concatenate([p.user for p in parts]),
            np.concatenate([p.target for p in parts]),
            np.concatenate([p.weight for p in parts]).astype(np.float32),
        )


def next_item_examples(
    sequences: Sequence[np.ndarray], user_tokens: np.ndarray, history: int
) -> Examples:
    """One example per position t >= 1 of every sequence: the last `history` items before t
    -> item t (so every train transition is a target once per epoch)."""
    hist, user, target = [], [], []
    for s, u in zip(sequences, user_tokens):
        for t in range(1, len(s)):
            h = s[max(0, t - history) : t]
            hist.append(np.pad(h, (0, history - len(h))))
            user.append(u)
            target.append(s[t])
    return Examples(
        np.array(hist, np.int64).reshape(-1, history),
        np.array(user, np.int64),
        np.array(target, np.int64),
        np.ones(len(target), np.float32),
    )


def pair_examples(pairs: Sequence[tuple[int, int, float]], history: int) -> Examples:
    """(item, neighbour, weight) pairs as examples with a one-item history and NO_USER."""
    a = np.array([p[0] for p in pairs], np.int64)
    hist = np.zeros((len(a), history), np.int64)
    hist[:, 0] = a
    return Examples(
        hist,
        np.full(len(a), NO_USER, np.int64),
        np.array([p[1] for p in pairs], np.int64),
        np.array([p[2] for p in pairs], np.float32),
    )


def iirg_pairs(path: str, tasks: Sequence[str] = IIRG_TASKS) -> list[tuple[int, int, float]]:
    """(item, neighbour, loss_weight) for every target of every sample of `tasks` in an
    instruction build's Parquet (collaborative: co-occurrence top-n; semantic: embedding top-n);
    a task weighted 0 adds nothing."""
    import pyarrow.parquet as pq

    tbl = pq.read_table(path, columns=["task", "input_items", "target_items", "loss_weight"])
    out: list[tuple[int, int, float]] = []
    for r in tbl.to_pylist():
        if r["task"] in tasks and r["loss_weight"] > 0:
            src = int(r["input_items"][0])
            out.extend((src, int(t), float(r["loss_weight"])) for t in r["target_items"])
    return out


def encoder_inputs(
    hist: Sequence[np.ndarray], user: np.ndarray, tokens: np.ndarray, history: int
) -> list[list[int]]:
    """Each encoder input: user token, the SID tokens of the last `history` items, EOS."""
    return [
        [int(u), *tokens[np.asarray(h, np.int64)[-history:]].reshape(-1).tolist(), EOS]
        for h, u in zip(hist, user)
    ]


def batch_tensors(
    ex: Examples, tokens: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, decoder_input_ids, labels, weight) of a batch: encoder
    inputs right-padded; decoder = start + the target's SID tokens; labels = SID tokens + EOS."""
    n_hist = (ex.hist > 0).sum(1)
    width = 2 + L * int(n_hist.max())
    ids = np.full((len(ex), width), PAD, np.int64)
    for i, (h, u) in enumerate(zip(ex.hist, ex.user)):
        row = [u, *tokens[h[h > 0]].reshape(-1).tolist(), EOS]
        ids[i, : len(row)] = row
    labels = np.concatenate([tokens[ex.target], np.full((len(ex), 1), EOS)], 1)
    dec = np.concatenate([np.full((len(ex), 1), PAD), labels[:, :-1]], 1)
    return (
        torch.from_numpy(ids),
        torch.from_numpy((ids != PAD).astype(np.int64)),
        torch.from_numpy(dec),
        torch.from_numpy(labels),
        torch.from_numpy(ex.weight.astype(np.float32)),
    )


def warehouse_sequences(con: Any, dataset: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """(user_idx, train sequences) of the warehouse's train split."""
    from ..data.warehouse import run

    rows = run(con, "prepare/train_sequences", {"dataset": dataset}).fetchall()
    return np.array([r[0] for r in rows], np.int64), [np.asarray(r[1], np.int64) for r in rows]


def warehouse_codes(con: Any, dataset: str, sid_version: str) -> np.ndarray:
    """The codes array [n_items + 1, 4] of the dataset's items under `sid_version`."""
    from ..data.sequences import n_items
    from ..sids.store import code_matrix, load_sids

    codes = code_matrix(load_sids(con, dataset, sid_version), n_items(con, dataset))
    if codes.shape[1] != L:
        raise ValueError(f"expected {L} SID codes, got {codes.shape[1]} in {sid_version!r}")
    return codes


@contextlib.contextmanager
def torch_threads(threads: int, device: torch.device) -> Iterator[None]:
    """`threads` torch threads on CPU, then restored: 1 is fastest for a model this small (2
    threads on the 2-core box were 1.2-7x slower per step), and safe on busy cores."""
    before = torch.get_num_threads()
    if threads and device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def beam_recall_ndcg(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(Recall@10, NDCG@10) from a beam's score matrix (a target outside the beam is a miss);
    ties go to the smaller item index, as in the evaluation."""
    t = scores[np.arange(len(targets)), targets][:, None]
    idx = np.arange(scores.shape[1])[None, :]
    rank = ((scores > t) | ((scores == t) & (idx < targets[:, None]))).sum(1) + 1
    hit = np.isfinite(t[:, 0]) & (rank <= 10)
    return float(hit.mean()), float(np.where(hit, 1 / np.log2(rank + 1), 0).mean())


def keep_best(
    log: Any, model: Any, net: Any, best: dict[str, torch.Tensor] | None, recall: float, ndcg: float
) -> dict[str, torch.Tensor] | None:
    """One validation check of a SID transformer (T5 or SID-Llama): log it, record it, and
    return the weights to keep - a copy of the net's when this check is the best so far."""
    log.info(
        "step %d loss %.4f valid R@10 %.4f NDCG@10 %.4f",
        model.steps,
        model.losses[-1],
        recall,
        ndcg,
    )
    if best is None or ndcg > max(v for _, v in model.valid):
        best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        model.best_step = model.steps
    model.valid.append((model.steps, ndcg))
    return best


def finish(model: Any, net: Any, best: dict[str, torch.Tensor] | None, start: float) -> Any:
    """The end of training: the best checked weights (if any checks ran), time, eval mode."""
    if best is not None:
        net.load_state_dict(best)
    model.seconds = time.perf_counter() - start
    net.eval()
    return model
