"""Non-LLM models in the `models` table, so that `recommend` and `retrain` treat every trained
model alike: SASRec runs are registered under an id their settings decide."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import connect, fetch_value, run, transaction
from .sasrec import SASRecParams, train_sasrec_task


def sasrec_id(dataset: str, params: SASRecParams, data: str) -> str:
    """The `models` id of a SASRec run: the same settings on the same prepared data (`data`, its
    fingerprint) give the same id, and a rerun replaces its row; new data is a new model."""
    blob = json.dumps({"params": asdict(params), "data": data}, sort_keys=True)
    return f"{dataset}-sasrec-s{params.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


@task(name="train-registered-sasrec", cache_policy=NO_CACHE)
def registered_sasrec_task(warehouse: str, dataset: str, params: SASRecParams) -> dict[str, Any]:
    """Train SASRec and record it in `models` (kind sasrec); returns the `models` row."""
    with connect(warehouse) as con:
        data = str(fetch_value(run(con, "relations/prepared_fingerprint", {"dataset": dataset})))
        catalogue = str(fetch_value(run(con, "recommend/catalogue_key", {"dataset": dataset})))
    mid = sasrec_id(dataset, params, data)
    t0 = time.perf_counter()
    trained = train_sasrec_task.fn(warehouse, dataset, params)
    path = Path(trained["path"]).with_name(f"{mid}.pt")  # its own file: never overwritten
    os.replace(trained["path"], path)
    row = {
        "model_id": mid,
        "dataset": dataset,
        "kind": "sasrec",
        "base": None,
        "build_id": None,
        "sid_version": None,
        "tasks": None,
        "params_json": json.dumps({**asdict(params), "catalogue": catalogue}, sort_keys=True),
        "steps": int(trained["steps"]),
        "final_loss": trained["final_loss"],
        "seconds": time.perf_counter() - t0,
        "path": str(path),
    }
    with connect(warehouse) as con, transaction(con):
        run(con, "train/register_model", row)
    return {**row, "best_step": trained["best_step"]}
