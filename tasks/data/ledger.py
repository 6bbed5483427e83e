"""Finished stages by content key, so that a rerun after a crash skips what is done.

A stage's key is a hash of its name, its parameters and its inputs' own keys (a fingerprint of
the loaded batches, the prepared data, snapshot ids, a build id, a model id), never of a
connection or a timestamp. The same key means the same work on the same data, so the stored
output stands in for running it again; changed data gives a new key, and the stage runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from .warehouse import connect, fetch_first, fetch_value, run, transaction

log = logging.getLogger("hoprec.retrain")


def stage_key(stage: str, inputs: Mapping[str, Any]) -> str:
    """The content key of a stage run."""
    blob = json.dumps({"stage": stage, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_stamps(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each file: a file rewritten under the same name is new input."""
    return [(p, (st := os.stat(p)).st_size, st.st_mtime_ns) for p in paths]


def batches_fingerprint(warehouse: str, dataset: str) -> str:
    """A key of the dataset's loaded ingest batches (changes when one is loaded or dropped)."""
    with connect(warehouse) as con:
        return str(fetch_value(run(con, "retrain/batches_fingerprint", {"dataset": dataset})))


def cached_stage(
    warehouse: str,
    dataset: str,
    stage: str,
    inputs: Mapping[str, Any],
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`work()`'s output (a JSON-able dict), or the stored output of an earlier run with the same
    key. The result carries `stage`, `key`, `reused` and `seconds` for the report."""
    key = stage_key(stage, inputs)
    with connect(warehouse) as con:
        row = fetch_first(
            run(
                con,
                "retrain/find_stage",
                {"dataset": dataset, "stage": stage, "input_key": key},
            )
        )
    if row is not None:
        log.info("stage %s: finished before with the same inputs (key %s): skipped", stage, key)
        return {**json.loads(row[0]), "stage": stage, "key": key, "reused": True, "seconds": 0.0}
    t0 = time.perf_counter()
    out = work()
    out = {**out, "seconds": time.perf_counter() - t0}
    with connect(warehouse) as con, transaction(con):
        run(
            con,
            "retrain/record_stage",
            {
                "dataset": dataset,
                "stage": stage,
                "input_key": key,
                "output_json": json.dumps(out, default=str),
            },
        )
    return {**out, "stage": stage, "key": key, "reused": False}
