"""The compare flow: one base LLM fine-tuned on next-item-only data and on IIRG data, under one
step budget and seed, next to every baseline, evaluated on the same users, per memorization
group, plus MemGen's adaptive fusion of SASRec and the IIRG LLM; several seeds -> mean +- std."""
from __future__ import annotations

from typing import Any

import numpy as np
from prefect import flow

from flows.relations import relations_flow
from flows.train import train_params
from tasks.basemodel import DEFAULT_BASE
from tasks.compare import (BASELINES, eval_rows, evaluate_scores_task, fusion_task, fused,
                           score_task, split_inputs)
from tasks.config import state_dir
from tasks.evaluation import train_sasrec_task
from tasks.llm_runs import find_build, promote, train_llm_task
from tasks.warehouse import connect, resolve

NEXT, IIRG = "llm-next-item", "llm-iirg"
VARIANTS = {"next-item": NEXT, "iirg": IIRG}
FUSION = "fusion(sasrec+llm-iirg)"


@flow(name="compare", flow_run_name="compare {dataset}")
def compare_flow(dataset: str, warehouse: str | None = None, build_id: str | None = None,
                 base: str = DEFAULT_BASE, seeds: list[int] | None = None, steps: int = 60,
                 batch_size: int = 8, grad_accum: int = 1, lr: float | None = None,
                 eval_users: int = 200, decode: str = "beam", num_beams: int = 20,
                 sasrec_steps: int = 300, tiger_steps: int = 2000, device: str = "auto",
                 fusion: bool = True, promote_best: bool = True,
                 llms: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate everything on the same splits; one report, rows in eval_results.
    `llms`: which fine-tunes, of "next-item" and "iirg" (default both); `tiger_steps=0` skips
    the SID transformer; fusion needs the IIRG LLM."""
    from flows.compare_report import compare_report, plot_compare
    from tasks.reports import publish

    seeds = list(seeds or [0])
    llms = list(llms or VARIANTS)
    unknown = sorted(set(llms) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown LLM variant(s) {unknown}; choose from {list(VARIANTS)}")
    fusion = fusion and "iirg" in llms
    wh = str(resolve(warehouse))
    with connect(wh) as con:
        build = find_build(con, dataset, build_id)
        n_inst = _n_instances(con, dataset)
    snaps = {s: {r["kind"]: r["snapshot_id"] for r in
                 relations_flow(dataset=dataset, warehouse=warehouse, strict=s == "valid")}
             for s in ("valid", "test")}
    rows = {s: eval_rows(n_inst[s], eval_users) for s in ("valid", "test")}
    llm_opts = {"decode": decode, "num_beams": num_beams, "device": device}
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        models = _train_all(wh, dataset, build, base, seed, steps, batch_size, grad_accum, lr,
                            sasrec_steps, tiger_steps, device, llms)
        splits = ("valid", "test") if fusion else ("test",)
        scores = {s: {name: score_task(wh, dataset, s, name, kind, path, snaps[s], rows[s],
                                       llm_opts)
                      for name, (kind, path) in models.items()
                      if s == "test" or name in ("sasrec", IIRG)} for s in splits}
        fusion_params = None
        if fusion:
            fusion_params = fusion_task(wh, dataset, "sasrec", IIRG, scores["valid"]["sasrec"],
                                        scores["valid"][IIRG], rows["valid"])
            with connect(wh) as con:
                hist, _ = split_inputs(con, dataset, "test", rows["test"])
            scores["test"][FUSION] = fused(scores["test"]["sasrec"], scores["test"][IIRG], hist,
                                           fusion_params)
        result = evaluate_scores_task(wh, dataset, "test", scores["test"], rows["test"],
                                      snaps["test"], build["params"]["history"],
                                      build["sid_version"], f"compare seed {seed}")
        runs.append({"seed": seed, "eval": result, "fusion": fusion_params,
                     "models": {k: v[1] for k, v in models.items()}})
    promoted = _promote(wh, dataset, runs) if promote_best else None
    report_in = {"dataset": dataset, "build": build, "runs": runs, "steps": steps,
                 "batch_size": batch_size * grad_accum, "eval_users": len(rows["test"]),
                 "decode": decode, "promoted": promoted, "base": base,
                 "sasrec_steps": sasrec_steps, "tiger_steps": tiger_steps}
    report_in["png"] = plot_compare(report_in)
    publish("compare-report", compare_report(report_in), f"compare on {dataset}")
    report_in["report"] = compare_report(report_in, embed_png=False)
    return report_in


def _n_instances(con: Any, dataset: str) -> dict[str, int]:
    from tasks.evaluation import user_histories

    return {s: len(user_histories(con, dataset, s)[2]) for s in ("valid", "test")}


def _train_all(wh: str, dataset: str, build: dict[str, Any], base: str, seed: int, steps: int,
               batch_size: int, grad_accum: int, lr: float | None, sasrec_steps: int,
               tiger_steps: int, device: str, llms: list[str]) -> dict[str, tuple[str, str | None]]:
    """name -> (kind, path) of every model of one seed (LLMs: same budget, different data)."""
    from tasks.sasrec import SASRecParams
    from tasks.evaluation import train_tiger_task
    from tasks.tiger import TigerParams

    out = state_dir() / "models" / dataset
    out.mkdir(parents=True, exist_ok=True)
    sasrec = train_sasrec_task(wh, dataset, SASRecParams(max_steps=sasrec_steps, seed=seed,
                                                         device=device),
                               str(out / f"sasrec-seed{seed}-{sasrec_steps}.pt"))
    models: dict[str, tuple[str, str | None]] = {b: (b, None) for b in BASELINES}
    models["sasrec"] = ("sasrec", sasrec["path"])
    if tiger_steps:
        tiger = train_tiger_task(
            wh, dataset, build["sid_version"],
            TigerParams(max_steps=tiger_steps, seed=seed, device=device),
            str(out / f"tiger-{build['sid_version']}-seed{seed}-{tiger_steps}.pt"))
        models["tiger"] = ("tiger", tiger["path"])
    next_only = tuple(t for t in build["counts"] if t.startswith("next-item"))
    variants = {"next-item": next_only, "iirg": ()}
    for variant in llms:
        name, tasks = VARIANTS[variant], variants[variant]
        params = train_params(base, "lora", list(tasks), steps, batch_size, grad_accum, lr, seed,
                              device, save_every=max(10, steps // 4), log_every=max(1, steps // 10))
        models[name] = ("llm", train_llm_task(wh, dataset, build["build_id"], params)["out_dir"])
    return models


def _promote(wh: str, dataset: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Promote the IIRG LLM of the best seed when its mean test NDCG@10 beats every baseline's
    and the next-item-only LLM's; otherwise say why not."""
    from tasks.training import META

    means = _mean_metric(runs, "ndcg", 10, "all")
    if IIRG not in means:
        return {"promoted": None, "reason": "no IIRG model was trained"}
    rivals = {m: v for m, v in means.items() if m not in (IIRG, FUSION)}
    best_rival = max(rivals, key=rivals.get)
    if means.get(IIRG, -1) <= rivals[best_rival]:
        return {"promoted": None, "reason": f"{IIRG} NDCG@10 {means.get(IIRG, 0):.4f} does not "
                f"beat {best_rival} ({rivals[best_rival]:.4f})"}
    import json
    from pathlib import Path

    best = max(runs, key=lambda r: _cell(r["eval"], IIRG, "ndcg", 10, "all"))
    mid = json.loads((Path(best["models"][IIRG]) / META).read_text())["model_id"]
    with connect(wh) as con:
        promote(con, dataset, mid)
    return {"promoted": mid, "reason": f"{IIRG} NDCG@10 {means[IIRG]:.4f} beats every other "
            f"model (best: {best_rival} {rivals[best_rival]:.4f})"}


def _cell(ev: dict[str, Any], model: str, metric: str, k: int, group: str) -> float:
    return next(r["value"] for r in ev["rows"] if r["model"] == model and r["metric"] == metric
                and r["k"] == k and r["group"] == group)


def _mean_metric(runs: list[dict[str, Any]], metric: str, k: int, group: str) -> dict[str, float]:
    models = dict.fromkeys(r["model"] for r in runs[0]["eval"]["rows"])
    return {m: float(np.mean([_cell(r["eval"], m, metric, k, group) for r in runs]))
            for m in models}
