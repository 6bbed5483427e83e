"""Non-LLM models in the `models` table, so that `recommend` and `retrain` treat every trained
model alike: SASRec runs are registered under an id their settings decide."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import connect, run, transaction
from .sasrec import SASRecParams, train_sasrec_task


def sasrec_id(dataset: str, params: SASRecParams) -> str:
    """The `models` id of a SASRec run: same settings, same id (a rerun replaces its row)."""
    blob = json.dumps(asdict(params), sort_keys=True)
    return f"{dataset}-sasrec-s{params.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


@task(name="train-registered-sasrec", cache_policy=NO_CACHE)
def registered_sasrec_task(warehouse: str, dataset: str, params: SASRecParams) -> dict[str, Any]:
    """Train SASRec and record it in `models` (kind sasrec); returns the `models` row."""
    t0 = time.perf_counter()
    trained = train_sasrec_task.fn(warehouse, dataset, params)
    row = {
        "model_id": sasrec_id(dataset, params),
        "dataset": dataset,
        "kind": "sasrec",
        "base": None,
        "build_id": None,
        "sid_version": None,
        "tasks": None,
        "params_json": json.dumps(asdict(params), sort_keys=True),
        "steps": int(trained["steps"]),
        "final_loss": trained["final_loss"],
        "seconds": time.perf_counter() - t0,
        "path": trained["path"],
    }
    with connect(warehouse) as con, transaction(con):
        run(con, "train/register_model", row)
    return {**row, "best_step": trained["best_step"]}
