"""The baselines flow: popularity, one-hop Markov, co-occurrence kNN and SASRec, scored on one
split and evaluated through the same path as `compare` (a run list of length one): full-catalogue
metrics per IIRG memorization group and MemGen category, gains over SASRec, a plot."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hoprec.flows.relations import relations_flow
from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.evaluation.evaluate import evaluate_scores_task, sample_rows
from hoprec.tasks.evaluation.report import baselines_report, plot_groups
from hoprec.tasks.evaluation.scoring import BASELINES, score_task
from hoprec.tasks.recommenders.sasrec import SASRecParams, train_sasrec_task
from hoprec.tasks.reports import publish, publish_plot

MODELS = (*BASELINES, "sasrec")


@flow(name="baselines", flow_run_name="baselines {dataset} on {split}")
def baselines_flow(
    dataset: str,
    warehouse: str | None = None,
    split: str = "test",
    models: list[str] | None = None,
    sasrec_steps: int = defaults.BASELINE_SASREC_STEPS,
    seed: int = 0,
    history: int = defaults.HISTORY,
    eval_users: int = 0,
) -> dict[str, Any]:
    """Train and evaluate the baselines; the report shows where each model's hits come from."""
    models = list(models or MODELS)
    bad = sorted(set(models) - set(MODELS))
    if bad or split not in ("valid", "test"):
        raise ValueError(f"unknown model(s) {bad} or split {split!r}; models: {', '.join(MODELS)}")
    wh = str(resolve(warehouse))
    # validation is scored with relations that never saw a validation target (strict)
    snaps = relations_flow(dataset=dataset, warehouse=warehouse, strict=split == "valid")["ids"]
    with connect(wh) as con:
        rows = sample_rows(con, dataset, split, eval_users)
    sasrec = None
    if "sasrec" in models:
        sasrec = train_sasrec_task(wh, dataset, SASRecParams(max_steps=sasrec_steps, seed=seed))
    paths = {"sasrec": sasrec["path"] if sasrec else None}
    scores = {m: score_task(wh, dataset, split, m, m, paths.get(m), snaps, rows) for m in models}
    ev = evaluate_scores_task(wh, dataset, split, scores, rows, snaps, history, None, "")
    runs = [{"seed": seed, "eval": ev}]
    png = plot_groups(runs, f"{dataset} {split}: NDCG@10 by one-hop memorization group")
    result: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "runs": runs,
        "sasrec": sasrec,
        "png": png,
    }
    report = result["report"] = baselines_report(result)
    publish("baselines-report", report, f"baselines on {dataset} ({split})")
    publish_plot("baselines-plot", png, f"NDCG@10 by group, baselines on {dataset}")
    return result
