"""The semantic-ID flow: quantize a dataset's item embeddings into a SID version (or reuse the
stored one) and publish its diagnostics."""
from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.embeddings import DEFAULT_MODEL
from tasks.reports import publish
from tasks.sids import SidParams, assign_task, sids_report, sids_task
from tasks.warehouse import resolve


@flow(name="semantic-ids", flow_run_name="sids {dataset}")
def sids_flow(dataset: str, warehouse: str | None = None, levels: int = 3, codebook: int = 256,
              seed: int = 0, model: str = DEFAULT_MODEL, force: bool = False) -> dict[str, Any]:
    """Make (or reuse) the SID version of `dataset`'s prepared items; returns its record."""
    params = SidParams(levels=levels, codebook=codebook, seed=seed, model=model)
    record = sids_task(str(resolve(warehouse)), dataset, params, force)
    publish("sid-diagnostics", sids_report(record), f"semantic IDs of {dataset}")
    return record


@flow(name="assign-semantic-ids", flow_run_name="assign sids {dataset} {sid_version}")
def assign_flow(dataset: str, sid_version: str, warehouse: str | None = None) -> dict[str, Any]:
    """Incremental SIDs: new items get nearest-centroid codes within an existing version."""
    assigned = assign_task(str(resolve(warehouse)), dataset, sid_version)
    text = (f"# New items in `{sid_version}`\n\n{assigned:,} item(s) of `{dataset}` got a SID by "
            f"nearest centroid; existing SIDs are unchanged.")
    publish("sid-assignment", text, f"incremental SIDs of {dataset}")
    return {"sid_version": sid_version, "assigned": assigned, "report": text}
