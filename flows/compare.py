"""The compare flow: one base LLM fine-tuned on next-item-only data and on IIRG data, under one
step budget and seed, next to every baseline, evaluated on the same users, per memorization
group, plus MemGen's adaptive fusion of SASRec and the IIRG LLM; several seeds -> mean ± std."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow

from hoprec.flows.relations import relations_flow
from hoprec.flows.train import train_params
from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.evaluation.evaluate import evaluate_scores_task, sample_rows, split_inputs
from hoprec.tasks.evaluation.report import compare_report, plot_groups
from hoprec.tasks.evaluation.scoring import BASELINES, fused, fusion_task, score_task
from hoprec.tasks.llm.checkpoints import META
from hoprec.tasks.llm.train import find_build, promote, train_llm_task
from hoprec.tasks.recommenders.sasrec import SASRecParams, train_sasrec_task
from hoprec.tasks.recommenders.tiger import TigerParams, train_tiger_task
from hoprec.tasks.reports import publish, publish_plot

NEXT, IIRG = "llm-next-item", "llm-iirg"
VARIANTS = {"next-item": NEXT, "iirg": IIRG}
FUSION = "fusion(sasrec+llm-iirg)"


@flow(name="compare", flow_run_name="compare {dataset}")
def compare_flow(
    dataset: str,
    warehouse: str | None = None,
    build_id: str | None = None,
    base: str = defaults.BASE_MODEL,
    seeds: list[int] | None = None,
    steps: int = defaults.COMPARE_STEPS,
    batch_size: int = defaults.BATCH_SIZE,
    grad_accum: int = defaults.GRAD_ACCUM,
    lr: float | None = None,
    eval_users: int = defaults.EVAL_USERS,
    decode: str = defaults.DECODE,
    num_beams: int = defaults.NUM_BEAMS,
    sasrec_steps: int = defaults.COMPARE_SASREC_STEPS,
    tiger_steps: int = defaults.TIGER_STEPS,
    device: str = defaults.DEVICE,
    fusion: bool = True,
    promote_best: bool = True,
    llms: list[str] | None = None,
) -> dict[str, Any]:
    """Train and evaluate everything on the same splits; one report, rows in eval_results.
    `llms`: which fine-tunes, of "next-item" and "iirg" (default both); `tiger_steps=0` skips
    the SID transformer; fusion needs the IIRG LLM."""
    seeds = list(seeds or [0])
    llms = list(llms or VARIANTS)
    unknown = sorted(set(llms) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown LLM variant(s) {unknown}; choose from {list(VARIANTS)}")
    fusion = fusion and "iirg" in llms
    wh = str(resolve(warehouse))
    with connect(wh) as con:
        build = find_build(con, dataset, build_id)
        rows = {s: sample_rows(con, dataset, s, eval_users) for s in ("valid", "test")}
    snaps = {
        s: relations_flow(dataset=dataset, warehouse=warehouse, strict=s == "valid")["ids"]
        for s in ("valid", "test")
    }
    llm_opts = {"decode": decode, "num_beams": num_beams, "device": device}
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        models = _train_all(
            wh,
            dataset,
            build,
            base,
            seed,
            steps,
            batch_size,
            grad_accum,
            lr,
            sasrec_steps,
            tiger_steps,
            device,
            llms,
        )
        splits = ("valid", "test") if fusion else ("test",)
        scores = {
            s: {
                name: score_task(wh, dataset, s, name, kind, path, snaps[s], rows[s], llm_opts)
                for name, (kind, path) in models.items()
                if s == "test" or name in ("sasrec", IIRG)
            }
            for s in splits
        }
        fusion_params = None
        if fusion:
            fusion_params = fusion_task(
                wh,
                dataset,
                "sasrec",
                IIRG,
                scores["valid"]["sasrec"],
                scores["valid"][IIRG],
                rows["valid"],
            )
            with connect(wh) as con:
                hist, _ = split_inputs(con, dataset, "test", rows["test"])
            scores["test"][FUSION] = fused(
                scores["test"]["sasrec"], scores["test"][IIRG], hist, fusion_params
            )
        result = evaluate_scores_task(
            wh,
            dataset,
            "test",
            scores["test"],
            rows["test"],
            snaps["test"],
            build["params"]["history"],
            build["sid_version"],
            f"compare seed {seed}",
        )
        runs.append(
            {
                "seed": seed,
                "eval": result,
                "fusion": fusion_params,
                "models": {k: v[1] for k, v in models.items()},
            }
        )
    promoted = _promote(wh, dataset, runs) if promote_best else None
    out = {
        "dataset": dataset,
        "build": build,
        "runs": runs,
        "steps": steps,
        "batch_size": batch_size * grad_accum,
        "eval_users": len(rows["test"]),
        "decode": decode,
        "promoted": promoted,
        "base": base,
        "sasrec_steps": sasrec_steps,
        "tiger_steps": tiger_steps,
    }
    png = plot_groups(
        runs,
        f"{dataset} test: NDCG@10 by one-hop memorization group "
        f"({len(runs)} seed{'s' * (len(runs) > 1)})",
    )
    out["png"] = png
    report = out["report"] = compare_report(out)
    publish("compare-report", report, f"compare on {dataset}")
    publish_plot("compare-plot", png, f"NDCG@10 by group, compare on {dataset}")
    return out


def _train_all(
    wh: str,
    dataset: str,
    build: dict[str, Any],
    base: str,
    seed: int,
    steps: int,
    batch_size: int,
    grad_accum: int,
    lr: float | None,
    sasrec_steps: int,
    tiger_steps: int,
    device: str,
    llms: list[str],
) -> dict[str, tuple[str, str | None]]:
    """name -> (kind, path) of every model of one seed (LLMs: same budget, different data)."""
    sasrec = train_sasrec_task(
        wh, dataset, SASRecParams(max_steps=sasrec_steps, seed=seed, device=device)
    )
    models: dict[str, tuple[str, str | None]] = {b: (b, None) for b in BASELINES}
    models["sasrec"] = ("sasrec", sasrec["path"])
    if tiger_steps:
        tiger = train_tiger_task(
            wh,
            dataset,
            build["sid_version"],
            TigerParams(max_steps=tiger_steps, seed=seed, device=device),
        )
        models["tiger"] = ("tiger", tiger["path"])
    next_only = tuple(t for t in build["counts"] if t.startswith("next-item"))
    variants = {"next-item": next_only, "iirg": ()}
    for variant in llms:
        name, tasks = VARIANTS[variant], variants[variant]
        params = train_params(
            base,
            "lora",
            list(tasks),
            steps,
            batch_size,
            grad_accum,
            lr,
            seed,
            device,
            save_every=max(10, steps // 4),
            log_every=max(1, steps // 10),
        )
        models[name] = ("llm", train_llm_task(wh, dataset, build["build_id"], params)["out_dir"])
    return models


def _promote(wh: str, dataset: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Promote the IIRG LLM of the best seed when its mean test NDCG@10 beats every baseline's
    and the next-item-only LLM's; otherwise say why not."""
    means = _mean_metric(runs, "ndcg", 10, "all")
    if IIRG not in means:
        return {"promoted": None, "reason": "no IIRG model was trained"}
    rivals = {m: v for m, v in means.items() if m not in (IIRG, FUSION)}
    best_rival = max(rivals, key=lambda m: rivals[m])
    if means.get(IIRG, -1) <= rivals[best_rival]:
        return {
            "promoted": None,
            "reason": f"{IIRG} NDCG@10 {means.get(IIRG, 0):.4f} does not "
            f"beat {best_rival} ({rivals[best_rival]:.4f})",
        }
    best = max(runs, key=lambda r: _cell(r["eval"], IIRG, "ndcg", 10, "all"))
    mid = json.loads((Path(best["models"][IIRG]) / META).read_text())["model_id"]
    with connect(wh) as con:
        promote(con, dataset, mid)
    return {
        "promoted": mid,
        "reason": f"{IIRG} NDCG@10 {means[IIRG]:.4f} beats every other "
        f"model (best: {best_rival} {rivals[best_rival]:.4f})",
    }


def _cell(ev: dict[str, Any], model: str, metric: str, k: int, group: str) -> float:
    return next(
        r["value"]
        for r in ev["rows"]
        if r["model"] == model and r["metric"] == metric and r["k"] == k and r["group"] == group
    )


def _mean_metric(runs: list[dict[str, Any]], metric: str, k: int, group: str) -> dict[str, float]:
    models = dict.fromkeys(r["model"] for r in runs[0]["eval"]["rows"])
    return {
        m: float(np.mean([_cell(r["eval"], m, metric, k, group) for r in runs])) for m in models
    }
