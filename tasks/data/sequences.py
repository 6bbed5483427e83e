"""Readers of the prepared sequences that every model and the evaluation share: the catalogue
size, each user's train sequence, and the (history, target) instances of a split.

They read the `sequences` table that prepare writes, and nothing another stage leaves behind.
"""

from __future__ import annotations

import duckdb
import numpy as np

from .warehouse import fetch_arrow, fetch_value, run

SPLITS = ("valid", "test")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def n_items(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    """Catalogue size: item_idx runs densely over 1..n_items (0 is padding)."""
    return int(fetch_value(run(con, "prepare/n_items", {"dataset": dataset})))


def train_sequences(con: duckdb.DuckDBPyConnection, dataset: str) -> list[np.ndarray]:
    """Each user's train-split items in order (valid and test items never enter)."""
    return [
        np.asarray(items, dtype=np.int64)
        for _, items in run(con, "prepare/train_sequences", {"dataset": dataset}).fetchall()
    ]


def split_events(
    con: duckdb.DuckDBPyConnection, dataset: str, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """(user_idx, item_idx) of the events an evaluation on `split` may learn from, ordered by
    user and position: train for 'valid', train + valid for 'test'."""
    _check_split(split)
    ev = run(con, "prepare/split_events", {"dataset": dataset, "split": split}).fetchnumpy()
    return (np.asarray(ev["user_idx"], dtype=np.int64), np.asarray(ev["item_idx"], dtype=np.int64))


def user_histories(
    con: duckdb.DuckDBPyConnection, dataset: str, split: str
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(user_idx, histories, targets) for evaluating on `split` ('valid' or 'test').

    valid: history = the user's train events; test: train + valid events (the test input
    includes the valid item). Histories are ordered by pos. Users without a target in `split`
    are left out. With a temporal split a user may have several targets: one row per target
    event, every row of the user with the same history (the earlier splits' events), so
    user_idx may repeat there. A user whose events all fall in `split` gets an empty history.
    """
    _check_split(split)
    tbl = fetch_arrow(run(con, "prepare/user_histories", {"dataset": dataset, "split": split}))
    hist = tbl.column("history").combine_chunks()
    values = hist.values.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = hist.offsets.to_numpy()
    histories = [values[offsets[i] : offsets[i + 1]] for i in range(len(tbl))]
    return (
        tbl.column("user_idx").to_numpy().astype(np.int64),
        histories,
        tbl.column("target").to_numpy().astype(np.int64),
    )


def eval_rows(n: int, users: int, seed: int = 0) -> np.ndarray:
    """Which of the split's `n` instances are evaluated: all (users = 0) or a seeded sample,
    the same for every model and training seed, so their figures are comparable."""
    if users <= 0 or users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, users, replace=False))
