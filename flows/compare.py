"""The compare flow: one base LLM fine-tuned on next-item-only data and on IIRG data, under one
step budget and seed, next to every baseline, evaluated on the same users, per memorization
group, plus MemGen's adaptive fusions; several seeds -> mean ± std.

Decisions use validation only: the fusion grids, the promotion and its seed (and SASRec's and
the SID transformer's model selection inside their training). The models judged on validation
never saw a validation event: the LLMs train on the validation-clean twin of the build (strict
co-occurrence, audited in validation mode), made when missing. Test is for reporting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow

from hoprec.flows.instructions import validation_clean_build
from hoprec.flows.relations import relations_flow
from hoprec.flows.train import train_params
from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.evaluation.curves import curve_section, plot_curves, run_checks
from hoprec.tasks.evaluation.evaluate import evaluate_scores_task, sample_rows, split_inputs
from hoprec.tasks.evaluation.report import cells, compare_report, plot_groups
from hoprec.tasks.evaluation.scoring import (
    BASELINES,
    free_generation_task,
    fused,
    fusion_task,
    score_task,
)
from hoprec.tasks.llm.checkpoints import META
from hoprec.tasks.llm.train import find_build, promote, train_llm_task
from hoprec.tasks.recommenders.sasrec import SASRecParams, train_sasrec_task
from hoprec.tasks.recommenders.tiger import TigerParams, train_tiger_task
from hoprec.tasks.reports import publish, publish_plot

NEXT, IIRG, IIRG_FULL = "llm-next-item", "llm-iirg", "llm-iirg-full"
FREE = "@free"  # an LLM scored by IIRG's unconstrained generation
VARIANTS = dict(zip(defaults.LLM_VARIANTS, (NEXT, IIRG)))
MINMAX = {"gap": None, "literal": 0.0}
NDCG10 = (
    "all",
    "ndcg",
    10,
)  # what promotion compares (on validation)  # fusion normalisation: hoprec's floor, or MemGen's 0


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
    fusion_minmax: str = "gap",
    full_relations: bool = False,
    select_every: int = 0,
    select_users: int = defaults.SELECT_USERS,
    patience: int = 0,
    promote_best: bool = True,
    llms: list[str] | None = None,
    free_generation: bool = False,
    align_steps: int = 0,
    pause_tokens: int = 0,
    system_prompt: bool = True,
    sid_init: str = defaults.SID_INIT,
    simgr_center: bool = False,
    objective: str = defaults.OBJECTIVE,
    temperature: float = defaults.SIMGR_TEMPERATURE,
    simgr_positions: str = defaults.SIMGR_POSITIONS,
) -> dict[str, Any]:
    """Train and evaluate everything on the same splits; one report, rows in eval_results.
    `llms`: which fine-tunes, of "next-item" and "iirg" (default both); `tiger_steps=0` skips
    the SID transformer; fusion mixes SASRec with the IIRG LLM and with the SID transformer
    (MemGen's pair); `full_relations` adds llm-iirg-full, the IIRG LLM on the build as given
    (its co-occurrence counts validation events: more data, reported on test, never decides);
    `select_every` keeps each LLM's best checkpoint by validation NDCG@10; `free_generation` adds
    IIRG's own evaluation of each LLM (unconstrained generation, SIDs parsed; rows `<llm>@free`),
    with its invalid-SID rate."""
    seeds = list(seeds or [0])
    llms = list(llms or VARIANTS)
    unknown = sorted(set(llms) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown LLM variant(s) {unknown}; choose from {list(VARIANTS)}")
    if fusion_minmax not in MINMAX:
        raise ValueError(f"fusion_minmax must be one of {list(MINMAX)}, got {fusion_minmax!r}")
    wh = str(resolve(warehouse))
    with connect(wh) as con:
        given = find_build(con, dataset, build_id)
        rows = {s: sample_rows(con, dataset, s, eval_users) for s in ("valid", "test")}
    build = validation_clean_build(dataset, warehouse, given)
    snaps = {
        s: relations_flow(dataset=dataset, warehouse=warehouse, strict=s == "valid")["ids"]
        for s in ("valid", "test")
    }
    builds = {"clean": build, "full": given if full_relations and given is not build else None}
    llm_opts = {"decode": decode, "num_beams": num_beams, "device": device}
    budget = {
        "steps": steps,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "lr": lr,
        "device": device,
        "select_every": select_every,
        "select_users": select_users,
        "patience": patience,
        "align_steps": align_steps,
        "pause_tokens": pause_tokens,
        "system_prompt": system_prompt,
        "sid_init": sid_init,
        "simgr_center": simgr_center,
        "objective": objective,
        "temperature": temperature,
        "positions": simgr_positions,
    }
    history, sids = build["params"]["history"], build["sid_version"]
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        models = _train_all(
            wh, dataset, builds, base, seed, budget, sasrec_steps, tiger_steps, llms
        )
        scores = {
            s: {
                name: score_task(wh, dataset, s, name, kind, path, snaps[s], rows[s], llm_opts)
                for name, (kind, path) in models.items()
                if s == "test" or name != IIRG_FULL  # its validation saw validation events
            }
            for s in ("valid", "test")
        }
        generates = free_generation and objective == "generative"  # SimGR writes no SIDs
        generation = (
            _free_generation(wh, dataset, models, scores, rows, llm_opts) if generates else {}
        )
        fusions = _fusions(wh, dataset, scores, rows, MINMAX[fusion_minmax]) if fusion else {}
        evals = {
            s: evaluate_scores_task(
                wh, dataset, s, scores[s], rows[s], snaps[s], history, sids, f"compare seed {seed}"
            )
            for s in ("valid", "test")
        }
        runs.append(
            {
                "seed": seed,
                "valid": evals["valid"],
                "eval": evals["test"],
                "fusion": fusions,
                "generation": generation,
                "models": {k: v[1] for k, v in models.items()},
                "curves": {
                    k: run_checks(str(p)) for k, (kind, p) in models.items() if kind == "llm"
                },
            }
        )
    promoted = _promote(wh, dataset, runs) if promote_best else None
    out = {
        "dataset": dataset,
        "build": build,
        "given_build": given,
        "runs": runs,
        "steps": steps,
        "batch_size": batch_size * grad_accum,
        "eval_users": len(rows["test"]),
        "decode": decode,
        "free_generation": free_generation,
        "simgr": objective == "simgr",
        "promoted": promoted,
        "base": base,
        "sasrec_steps": sasrec_steps,
        "tiger_steps": tiger_steps,
        "fusion_minmax": fusion_minmax,
    }
    png = plot_groups(
        runs,
        f"{dataset} test: NDCG@10 by one-hop memorization group "
        f"({len(runs)} seed{'s' * (len(runs) > 1)})",
    )
    out["png"] = png
    report = out["report"] = compare_report(out) + _curves(runs, dataset, select_every)
    publish("compare-report", report, f"compare on {dataset}")
    publish_plot("compare-plot", png, f"NDCG@10 by group, compare on {dataset}")
    return out


def _train_all(
    wh: str,
    dataset: str,
    builds: dict[str, Any],
    base: str,
    seed: int,
    budget: dict[str, Any],
    sasrec_steps: int,
    tiger_steps: int,
    llms: list[str],
) -> dict[str, tuple[str, str | None]]:
    """name -> (kind, path) of every model of one seed (LLMs: same budget, different data)."""
    steps, device = budget["steps"], budget["device"]
    build = builds["clean"]
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
    runs = [(VARIANTS[v], build, {"next-item": next_only, "iirg": ()}[v]) for v in llms]
    if builds["full"] is not None and "iirg" in llms:
        runs.append((IIRG_FULL, builds["full"], ()))
    for name, on, tasks in runs:
        params = train_params(
            base,
            "lora",
            list(tasks),
            save_every=max(10, steps // 4),
            log_every=max(1, steps // 10),
            seed=seed,
            **budget,
        )
        models[name] = ("llm", train_llm_task(wh, dataset, on["build_id"], params)["out_dir"])
    return models


def _curves(runs: list[dict[str, Any]], dataset: str, every: int) -> str:
    """The learning-curve section (LLM checks against SASRec and the SID transformer), when the
    LLMs were checked on validation as they trained (`select_every`)."""
    curves = {m: [r["curves"][m] for r in runs] for m in runs[0]["curves"]}
    if not every or not any(c for seeds in curves.values() for c in seeds):
        return ""
    c = cells([{"eval": r["valid"]} for r in runs])
    refs = {
        m: float(np.mean(c[(m, "all", "ndcg", 10)]))
        for m in ("sasrec", "tiger", "cooc-knn")
        if (m, "all", "ndcg", 10) in c
    }
    png = plot_curves(curves, refs, f"{dataset}: validation NDCG@10 while training", dataset)
    publish_plot("compare-curves", png, f"learning curves, compare on {dataset}")
    return "\n\n" + "\n".join(curve_section(curves, refs, png, every))


def _free_generation(
    wh: str,
    dataset: str,
    models: dict[str, tuple[str, str | None]],
    scores: dict[str, dict[str, Any]],
    rows: dict[str, np.ndarray],
    llm_opts: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """IIRG's evaluation of every LLM: its free-generation scores join `scores` as `<name>@free`
    (same users, same groups); returns {split: {name: generation stats}}."""
    out: dict[str, dict[str, Any]] = {}
    for s in ("valid", "test"):
        for name, (kind, path) in models.items():
            if kind != "llm" or name not in scores[s]:
                continue
            res = free_generation_task(wh, dataset, s, name, str(path), rows[s], llm_opts)
            scores[s][name + FREE] = res["scores"]
            out.setdefault(s, {})[name] = res["stats"]
    return out


def _fusions(
    wh: str,
    dataset: str,
    scores: dict[str, dict[str, Any]],
    rows: dict[str, np.ndarray],
    floor: float | None,
) -> dict[str, dict[str, Any]]:
    """MemGen's adaptive fusion of SASRec with each generative model there is (the IIRG LLM,
    the SID transformer): (k, tau) on validation NDCG@10, the fused test scores added."""
    with connect(wh) as con:
        hist, _ = split_inputs(con, dataset, "test", rows["test"])
    out = {}
    for gr in (IIRG, "tiger"):
        if gr not in scores["valid"]:
            continue
        name = f"fusion(sasrec+{gr})"
        v = scores["valid"]
        params = fusion_task(wh, dataset, "sasrec", gr, v["sasrec"], v[gr], rows["valid"], floor)
        t = scores["test"]
        t[name] = fused(t["sasrec"], t[gr], hist, params, floor)
        out[name] = params
    return out


def _promote(wh: str, dataset: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Promote the IIRG LLM of the seed with the best validation NDCG@10 when its mean
    validation NDCG@10 beats every other model's; otherwise say why not. Test is never read."""
    c = cells([{"eval": r["valid"]} for r in runs])
    means = {m: float(np.mean(v)) for (m, g, met, k), v in c.items() if (g, met, k) == NDCG10}
    if IIRG not in means:
        return {"promoted": None, "reason": "no IIRG model was trained"}
    rivals = {m: v for m, v in means.items() if m != IIRG and not m.endswith(FREE)}
    best_rival = max(rivals, key=lambda m: rivals[m])
    if means[IIRG] <= rivals[best_rival]:
        return {
            "promoted": None,
            "reason": f"{IIRG} validation NDCG@10 {means[IIRG]:.4f} does not beat "
            f"{best_rival} ({rivals[best_rival]:.4f})",
        }
    best = max(runs, key=lambda r: _cell(r["valid"], IIRG, "ndcg", 10, "all"))
    mid = json.loads((Path(best["models"][IIRG]) / META).read_text())["model_id"]
    with connect(wh) as con:
        promote(con, dataset, mid)
    return {
        "promoted": mid,
        "reason": f"{IIRG} validation NDCG@10 {means[IIRG]:.4f} beats every other model (best: "
        f"{best_rival} {rivals[best_rival]:.4f}); seed {best['seed']} has the best validation",
    }


def _cell(ev: dict[str, Any], model: str, metric: str, k: int, group: str) -> float:
    return next(
        r["value"]
        for r in ev["rows"]
        if r["model"] == model and r["metric"] == metric and r["k"] == k and r["group"] == group
    )
