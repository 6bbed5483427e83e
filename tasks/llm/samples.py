"""The build's samples as training reads them: loaded from the instruction Parquet (filtered to
the run's tasks), encoded into padded batches with labels on the answers only, and their order,
a pure function of (seed, position) so that a resumed run replays exactly the batches the killed
one would have seen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from .prompts import PromptForm, encode_sample


def sample_order(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Sample indices `start .. start+count` of the endless stream of seeded epoch shuffles:
    a pure function of (n, seed, position), which is what makes resume replay the same data."""
    out = []
    pos = start
    while pos < start + count:
        epoch, off = divmod(pos, n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        take = min(n - off, start + count - pos)
        out.append(perm[off : off + take])
        pos += take
    return np.concatenate(out) if out else np.empty(0, np.int64)


def load_samples(
    path: str | Path, tasks: Sequence[str] = ()
) -> tuple[list[Any], np.ndarray, list[str]]:
    """(messages, loss weights, task) of the build's samples, filtered to `tasks`."""
    if not Path(path).exists():
        raise FileNotFoundError(f"instruction data not found: {path}")
    table = pq.read_table(path, columns=["task", "messages", "loss_weight"])
    names = table["task"].to_pylist()
    if tasks:
        unknown = sorted(set(tasks) - set(names))
        if unknown:
            raise ValueError(f"task(s) {unknown} not in {path} (it has {sorted(set(names))})")
        keep = [i for i, t in enumerate(names) if t in tasks]
        table = table.take(keep)
        names = [names[i] for i in keep]
    return (
        table["messages"].to_pylist(),
        table["loss_weight"].to_numpy().astype(np.float32),
        names,
    )


def encode_batch(
    tokenizer: Any,
    messages: Sequence[Sequence[dict[str, str]]],
    weights: Sequence[float],
    max_len: int,
    pad_id: int,
    form: PromptForm = PromptForm(),
) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, labels (-100 outside answers: prompt and pauses) and
    per-token weights."""
    rows = []
    for msgs in messages:
        p, a = encode_sample(tokenizer, msgs, form)
        a = a[:max_len]
        rows.append((p[max(0, len(p) + len(a) - max_len) :], a))
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    tok_w = torch.zeros((len(rows), width), dtype=torch.float32)
    for r, ((p, a), w) in enumerate(zip(rows, weights)):
        n = len(p) + len(a)
        ids[r, :n] = torch.tensor(p + a)
        mask[r, :n] = 1
        labels[r, len(p) : n] = torch.tensor(a)
        tok_w[r, len(p) : n] = float(w)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": tok_w}
