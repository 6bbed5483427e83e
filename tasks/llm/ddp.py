"""Data-parallel fine-tuning: `hoprec train --devices N` runs N processes (torchrun's launcher,
`torch.distributed.run`), each training through `accelerate` on its share of every batch.

What stays as on one device (and why it can): the data order is `sample_order` of the global
step, each micro-batch split across ranks by position (rank r takes samples r, r + N, ...); the
loss is divided by the whole step's target tokens (summed over ranks), and DDP's gradient mean is
undone by scaling each rank's loss by N, so the summed gradient is the one-device gradient, and
clipping, AdamW and the schedule see the same numbers. Rank 0 writes checkpoints and the
finished run; a rerun resumes every rank from the same checkpoint. The loss log is summed over
ranks, so it reads as the one-device log. tests/test_ddp.py runs 2 CPU processes (gloo) against
one process with the same global batch: equal to float precision without dropout. LoRA dropout
masks are drawn per process, so with dropout the curves agree in expectation, not bit for bit.

Not under DDP (a clear error instead): checkpoint selection on validation, and the SimGR
objective (its loss reads the model's decoder directly, around DDP's gradient hooks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("hoprec.training")

SPEC = "ddp_spec.pkl"


class Parallel:
    """This process's place in a data-parallel run; with world 1 every method is a no-op."""

    def __init__(self, world: int = 1, rank: int = 0, accelerator: Any = None) -> None:
        self.world, self.rank, self.acc = world, rank, accelerator

    @classmethod
    def from_env(cls) -> Parallel:
        """The run torchrun set up (WORLD_SIZE > 1), else a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        from accelerate import Accelerator

        acc = Accelerator(cpu=not torch.cuda.is_available())
        return cls(acc.num_processes, acc.process_index, acc)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device | None:
        return self.acc.device if self.acc is not None else None

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's samples of a micro-batch: positions rank, rank + world, ..."""
        return idx[self.rank :: self.world]

    def wrap(self, model: Any) -> Any:
        """The model every forward goes through (DDP under accelerate, else the model)."""
        return self.acc.prepare_model(model) if self.acc is not None else model

    def total(self, value: float) -> float:
        """The sum of `value` over ranks."""
        if self.acc is None:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.acc.device)
        return float(self.acc.reduce(t, reduction="sum").item())

    @contextlib.contextmanager
    def accumulating(self, model: Any, last: bool) -> Iterator[None]:
        """No gradient all-reduce before the step's last micro-batch."""
        if self.acc is None or last:
            yield
        else:
            with self.acc.no_sync(model):
                yield

    def barrier(self) -> None:
        if self.acc is not None:
            self.acc.wait_for_everyone()


def check(params: Any) -> None:
    """What data-parallel training does not support, named before anything starts."""
    if params.devices < 1:
        raise ValueError(f"devices must be >= 1, got {params.devices}")
    if params.devices > 1 and params.select_every:
        raise ValueError("checkpoint selection (select_every) runs on one device: drop --devices")
    if params.devices > 1 and params.objective != "generative":
        raise ValueError(f"--devices > 1 trains the generative objective, not {params.objective}")
    if params.devices > 1 and params.batch_size < params.devices:
        raise ValueError(f"batch_size {params.batch_size} < devices {params.devices}: a rank idles")


def launch(
    samples_path: str | Path,
    sid_tokens: list[str],
    params: Any,
    out_dir: str | Path,
    meta: dict[str, Any] | None,
    alignment: Any = (),
) -> dict[str, Any]:
    """Train with `params.devices` processes and return the finished run's meta. The workers
    get their arguments from a pickle in the run folder (the same ones `train_llm` takes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / SPEC
    args = (str(samples_path), list(sid_tokens), params, str(out), meta, list(alignment))
    spec.write_bytes(pickle.dumps(args))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={params.devices}", "-m", "hoprec.tasks.llm.ddp_worker", str(spec),
    ]  # fmt: skip
    log.info("data-parallel training on %d processes: %s", params.devices, " ".join(cmd))
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"data-parallel training failed (exit {done.returncode}); rerun to resume from the "
            f"last checkpoint in {out}"
        )
    import json

    from .checkpoints import META

    return dict(json.loads((out / META).read_text()))
