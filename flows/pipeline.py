"""The main job on the embedded default: ml-100k, from raw files to relation snapshots."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.ingest import ingest_flow, ingest_summary
from flows.prepare import prepare_flow, prepare_report
from flows.relations import relations_flow, relations_report
from tasks.reports import publish


@flow(name="pipeline", flow_run_name="pipeline {dataset}")
def pipeline_flow(dataset: str = "ml100k", warehouse: str | None = None, k_core: int = 5,
                  as_of: str | None = None, window: int = 5, top_k: int = 10,
                  model: str = "all-minilm-l6-v2") -> dict[str, Any]:
    """ingest -> prepare -> relations (later stages extend this flow)."""
    ingested = ingest_flow(dataset=dataset, format="ml-100k", warehouse=warehouse)
    prepared = prepare_flow(dataset=dataset, warehouse=warehouse, k_core=k_core)
    relations = relations_flow(dataset=dataset, as_of=as_of, warehouse=warehouse,
                               window=window, top_k=top_k, model=model)
    report = "\n\n".join([f"# hoprec pipeline: `{dataset}`",
                          "\n".join(["## Ingest", *ingest_summary(ingested, [])]),
                          prepare_report(prepared),
                          relations_report(dataset, relations)])
    publish("pipeline-report", report, f"pipeline run on {dataset}")
    return {"ingest": ingested, "prepare": prepared, "relations": relations, "report": report}
