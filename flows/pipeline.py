"""The main job on the embedded default: ml-100k, from raw files to audited instruction data, a
small LoRA fine-tune of the embedded SmolLM2 and its evaluation against the baselines."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.compare import compare_flow
from flows.compare_report import compare_report
from flows.ingest import ingest_flow, ingest_summary
from flows.instructions import instructions_flow, instructions_report
from flows.prepare import prepare_flow, prepare_report
from flows.relations import relations_flow, relations_report
from flows.sids import sids_flow
from tasks.basemodel import DEFAULT_BASE
from tasks.reports import publish
from tasks.sids import sids_report


@flow(name="pipeline", flow_run_name="pipeline {dataset}")
def pipeline_flow(dataset: str = "ml100k", warehouse: str | None = None, k_core: int = 5,
                  as_of: str | None = None, window: int = 5, top_k: int = 10,
                  model: str = "all-minilm-l6-v2", next_item: str = "sliding",
                  max_samples: int = 0, history: int = 10, titles: bool = False,
                  base: str = DEFAULT_BASE, llm_steps: int = 60, eval_users: int = 200,
                  sasrec_steps: int = 300, tiger_steps: int = 2000) -> dict[str, Any]:
    """ingest -> prepare -> relations -> semantic IDs -> instructions (+ leakage audit) ->
    fine-tune -> evaluate against the baselines (`llm_steps=0` stops after the data).

    The demo's prompts are compact (last 10 items, SIDs without titles) so that a CPU fine-tunes
    within minutes; `hoprec instructions` builds the full IIRG format (titles, 20 items)."""
    ingested = ingest_flow(dataset=dataset, format="ml-100k", warehouse=warehouse)
    prepared = prepare_flow(dataset=dataset, warehouse=warehouse, k_core=k_core)
    relations = relations_flow(dataset=dataset, as_of=as_of, warehouse=warehouse,
                               window=window, top_k=top_k, model=model)
    sids = sids_flow(dataset=dataset, warehouse=warehouse, model=model)
    by_kind = {r["kind"]: r["snapshot_id"] for r in relations}
    instructions = instructions_flow(
        dataset=dataset, warehouse=warehouse, next_item=next_item, max_samples=max_samples,
        history=history, titles=titles,
        sid_version=sids["sid_version"], cooccurrence_snapshot=by_kind["cooccurrence"],
        semantic_snapshot=by_kind["semantic"])
    report = "\n\n".join([
        f"# hoprec pipeline: `{dataset}`",
        "\n".join(["## Ingest", *ingest_summary(ingested, [])]),
        prepare_report(prepared), relations_report(dataset, relations),
        sids_report(sids, embed_png=False)
        + "\n\nFull diagnostics with the plot: artifact `sid-diagnostics`.",
        instructions_report(instructions)])
    evaluation = None
    if llm_steps:
        evaluation = compare_flow(dataset=dataset, warehouse=warehouse,
                                  build_id=instructions["build_id"], base=base, steps=llm_steps,
                                  eval_users=eval_users, sasrec_steps=sasrec_steps,
                                  tiger_steps=tiger_steps, llms=["iirg"], fusion=False)
        report += "\n\n" + compare_report(evaluation, embed_png=False).replace(
            "# Compare on", "## Fine-tuned LLM vs baselines on", 1)
    publish("pipeline-report", report, f"pipeline run on {dataset}")
    return {"ingest": ingested, "prepare": prepared, "relations": relations, "sids": sids,
            "instructions": instructions, "evaluation": evaluation, "report": report}
