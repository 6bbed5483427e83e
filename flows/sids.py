"""The semantic-ID flows: quantize a dataset's item embeddings into a SID version (or reuse the
stored one) and publish its diagnostics; or give new items SIDs within an existing version."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.reports import publish, publish_plot
from hoprec.tasks.sids.versions import SidParams, assign_task, sids_report, sids_task


@flow(name="semantic-ids", flow_run_name="sids {dataset}")
def sids_flow(
    dataset: str,
    warehouse: str | None = None,
    levels: int = defaults.SID_LEVELS,
    codebook: int = defaults.SID_CODEBOOK,
    seed: int = 0,
    model: str = defaults.EMBEDDING_MODEL,
    force: bool = False,
) -> dict[str, Any]:
    """Make (or reuse) the SID version of `dataset`'s prepared items; returns its record."""
    params = SidParams(levels=levels, codebook=codebook, seed=seed, model=model)
    record = sids_task(str(resolve(warehouse)), dataset, params, force)
    record["report"] = sids_report(record)
    publish("sids-report", record["report"], f"semantic IDs of {dataset}")
    publish_plot("sids-plot", record["png"], f"SID diagnostics of {dataset}")
    return record


@flow(name="assign-semantic-ids", flow_run_name="assign sids {dataset} {sid_version}")
def assign_flow(dataset: str, sid_version: str, warehouse: str | None = None) -> dict[str, Any]:
    """Incremental SIDs: new items get nearest-centroid codes within an existing version."""
    assigned = assign_task(str(resolve(warehouse)), dataset, sid_version)
    text = (
        f"# New items in `{sid_version}`\n\n{assigned:,} item(s) of `{dataset}` got a SID by "
        f"nearest centroid; existing SIDs are unchanged."
    )
    publish("sids-assignment-report", text, f"incremental SIDs of {dataset}")
    return {"sid_version": sid_version, "assigned": assigned, "report": text}


def sids_command(
    dataset: str, assign_new: str | None = None, warehouse: str | None = None, **build: Any
) -> dict[str, Any]:
    """`hoprec sids`: build a version, or with `assign_new` extend that version."""
    if assign_new:
        return assign_flow(dataset=dataset, sid_version=assign_new, warehouse=warehouse)
    return sids_flow(dataset=dataset, warehouse=warehouse, **build)
