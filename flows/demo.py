"""The main job on the embedded default: ml-100k, from raw files to audited instruction data, a
small LoRA fine-tune of the embedded SmolLM2 and its evaluation against the baselines."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hoprec.flows.compare import compare_flow
from hoprec.flows.ingest import ingest_flow
from hoprec.flows.instructions import instructions_flow
from hoprec.flows.prepare import prepare_flow
from hoprec.flows.relations import relations_flow
from hoprec.flows.sids import sids_flow
from hoprec.tasks import defaults
from hoprec.tasks.reports import publish, subsection


@flow(name="demo", flow_run_name="demo {dataset}")
def demo_flow(
    dataset: str = defaults.DATASET,
    warehouse: str | None = None,
    k_core: int = defaults.K_CORE,
    as_of: str | None = None,
    window: int = defaults.WINDOW,
    top_k: int = defaults.TOP_K,
    model: str = defaults.EMBEDDING_MODEL,
    next_item: str = defaults.NEXT_ITEM,
    max_samples: int = 0,
    history: int = defaults.DEMO_HISTORY,
    titles: bool = False,
    base: str = defaults.BASE_MODEL,
    llm_steps: int = defaults.DEMO_LLM_STEPS,
    eval_users: int = defaults.EVAL_USERS,
    sasrec_steps: int = defaults.COMPARE_SASREC_STEPS,
    tiger_steps: int = defaults.TIGER_STEPS,
) -> dict[str, Any]:
    """ingest -> prepare -> relations -> semantic IDs -> instructions (+ leakage audit) ->
    fine-tune -> evaluate against the baselines (`llm_steps=0` stops after the data).

    The demo's prompts are compact (last 10 items, SIDs without titles) so that a CPU fine-tunes
    within minutes; `hoprec instructions` builds the full IIRG format (titles, 20 items). The
    report is the stages' own reports, one after the other."""
    stages: dict[str, Any] = {}
    stages["ingest"] = ingest_flow(dataset=dataset, format="ml-100k", warehouse=warehouse)
    stages["prepare"] = prepare_flow(dataset=dataset, warehouse=warehouse, k_core=k_core)
    stages["relations"] = relations_flow(
        dataset=dataset, as_of=as_of, warehouse=warehouse, window=window, top_k=top_k, model=model
    )
    stages["sids"] = sids_flow(dataset=dataset, warehouse=warehouse, model=model)
    ids = stages["relations"]["ids"]
    stages["instructions"] = instructions_flow(
        dataset=dataset,
        warehouse=warehouse,
        next_item=next_item,
        max_samples=max_samples,
        history=history,
        titles=titles,
        sid_version=stages["sids"]["sid_version"],
        cooccurrence_snapshot=ids["cooccurrence"],
        semantic_snapshot=ids["semantic"],
    )
    if llm_steps:
        stages["compare"] = compare_flow(
            dataset=dataset,
            warehouse=warehouse,
            build_id=stages["instructions"]["build_id"],
            base=base,
            steps=llm_steps,
            eval_users=eval_users,
            sasrec_steps=sasrec_steps,
            tiger_steps=tiger_steps,
            llms=["iirg"],
            fusion=False,
        )
    report = "\n\n".join(
        [f"# hoprec demo: `{dataset}`", *(subsection(r["report"]) for r in stages.values())]
    )
    publish("demo-report", report, f"demo run on {dataset}")
    return {**stages, "report": report}
