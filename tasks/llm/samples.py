"""The build's samples as training reads them: loaded from the instruction Parquet (filtered to
the run's tasks), and their order, a pure function of (seed, position) so that a resumed run
replays exactly the batches the killed one would have seen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq


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
