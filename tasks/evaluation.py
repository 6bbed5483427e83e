"""Evaluation: every model scores the whole catalogue for the same users, and the metrics are
reported for all users and for IIRG's memorization groups, then stored in `eval_results`.

A model is a scorer `histories -> scores [users, items+1]`; history items are excluded from
the ranking. The memorization groups come from the transitions snapshot the evaluation split
may see: C(u) is the top-50 training successors of the last `history` items of the input.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

from tasks.baselines import (memorization_rate, memorization_split, successor_candidates)
from tasks.metrics import KS, grouped_metrics, mask_items, top_k
from tasks.warehouse import run

Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]
GROUPS = ("all", "memorization", "non-memorization")


SPLITS = ("valid", "test")


def user_histories(con: duckdb.DuckDBPyConnection, dataset: str,
                   split: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(user_idx, histories, targets) for evaluating on `split` ('valid' or 'test').

    valid: history = the user's train events; test: train + valid events (the test input
    includes the valid item). Histories are ordered by pos. Users without a target in `split`
    are left out. With a temporal split a user may have several targets: one row per target
    event, every row of the user with the same history (the earlier splits' events), so
    user_idx may repeat there. A user whose events all fall in `split` gets an empty history.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    tbl = run(con, "eval/user_histories", {"dataset": dataset, "split": split}).to_arrow_table()
    hist = tbl.column("history").combine_chunks()
    values = hist.values.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = hist.offsets.to_numpy()
    histories = [values[offsets[i]:offsets[i + 1]] for i in range(len(tbl))]
    return (tbl.column("user_idx").to_numpy().astype(np.int64), histories,
            tbl.column("target").to_numpy().astype(np.int64))


@dataclass
class EvalResult:
    eval_id: str
    dataset: str
    split: str
    users: int
    group_sizes: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)        # eval_results rows


def evaluate(dataset: str, split: str, histories: Sequence[np.ndarray], targets: np.ndarray,
             scorers: Mapping[str, Scorer], transitions, history: int = 20,
             candidates: int = 50, ks: Sequence[int] = KS,
             categories: Mapping[str, Mapping[str, np.ndarray]] | None = None,
             tag: str = "") -> EvalResult:
    """Metrics of each model, overall, per memorization group and per extra category, given as
    {kind: {name: user mask}} (MemGen instance categories, prefix memorization, ...) and stored
    as group `kind:name`; `tag` tells apart evaluations of the same users (e.g. seeds)."""
    inputs = [np.asarray(h)[-history:] for h in histories]
    cands = successor_candidates(inputs, transitions, candidates)
    benefit = memorization_split(cands, targets)
    groups = {"memorization": benefit, "non-memorization": ~benefit}
    kinds = {g: "memorization" for g in ("all", *groups)}
    for kind, masks in (categories or {}).items():
        for name, mask in masks.items():
            groups[f"{kind}:{name}"] = mask
            kinds[f"{kind}:{name}"] = kind
    blob = json.dumps({"dataset": dataset, "split": split, "models": sorted(scorers),
                       "users": len(targets), "tag": tag}, sort_keys=True)
    eval_id = f"{dataset}-{split}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
    result = EvalResult(eval_id, dataset, split, len(targets),
                        {"all": len(targets), **{g: int(m.sum()) for g, m in groups.items()}})
    for name, scorer in scorers.items():
        scores = scorer(histories)
        per_group = grouped_metrics(scores, targets, histories, groups, ks)
        lists = top_k(mask_items(scores, histories), 5)
        for group, values in per_group.items():
            for (metric, k), value in values.items():
                result.rows.append({"model": name, "kind": kinds[group], "group": group,
                                    "metric": metric, "k": k, "value": value})
            mask = np.ones(len(targets), bool) if group == "all" else groups[group]
            result.rows.append({"model": name, "kind": kinds[group], "group": group,
                                "metric": "memorization_rate",
                                "k": 5, "value": memorization_rate(
                                    [c for c, m in zip(cands, mask) if m], lists[mask], 5)})
    return result


def store(con: duckdb.DuckDBPyConnection, result: EvalResult) -> None:
    """Replace this evaluation's rows in `eval_results`."""
    import pyarrow as pa

    from tasks.warehouse import transaction

    con.register("eval_rows", pa.Table.from_pylist(result.rows))
    try:
        with transaction(con):
            run(con, "eval/delete_results", {"eval_id": result.eval_id})
            run(con, "eval/insert_results", {"eval_id": result.eval_id, "dataset": result.dataset,
                                             "split": result.split})
    finally:
        con.unregister("eval_rows")


def metric_table(result: EvalResult, k: int = 10) -> list[dict[str, Any]]:
    """One row a (model, group): the figures a person compares first."""
    cell = {(r["model"], r["group"], r["metric"], r["k"]): r["value"] for r in result.rows}
    models = list(dict.fromkeys(r["model"] for r in result.rows))
    return [{"model": m, "group": g, "users": result.group_sizes[g],
             f"recall@{k}": cell.get((m, g, "recall", k)), f"ndcg@{k}": cell.get((m, g, "ndcg", k)),
             "mrr": cell.get((m, g, "mrr", 0)), f"coverage@{k}": cell.get((m, g, "coverage", k)),
             "mem. rate@5": cell.get((m, g, "memorization_rate", 5))}
            for m in models for g in GROUPS]


def gain_table(result: EvalResult, reference: str, k: int = 10) -> list[dict[str, Any]]:
    """Each model's NDCG@k gain over `reference`, per group, and the share of the total gain
    (summed over users) that each group carries."""
    cell = {(r["model"], r["group"]): r["value"] for r in result.rows
            if r["metric"] == "ndcg" and r["k"] == k}
    out = []
    for m in dict.fromkeys(r["model"] for r in result.rows):
        if m == reference:
            continue
        gains = {g: cell[(m, g)] - cell[(reference, g)] for g in GROUPS}
        total = gains["all"] * result.group_sizes["all"]
        row: dict[str, Any] = {"model": m}
        for g in GROUPS:
            row[f"gain {g}"] = gains[g]
        for g in GROUPS[1:]:
            share = gains[g] * result.group_sizes[g] / total if total else float("nan")
            row[f"share {g}"] = share
        out.append(row)
    return out


MODELS = ("popularity", "markov", "cooc-knn", "sasrec")


def baseline_scorers(pop: np.ndarray, transitions: Any, cooccurrence: Any,
                     models: Sequence[str], sasrec: Any = None) -> dict[str, Scorer]:
    """Scorers of the named models: baselines over the relation matrices, SASRec if given."""
    from tasks.baselines import knn_scores, markov_scores, popularity_scores

    scorers: dict[str, Scorer] = {
        "popularity": lambda h: popularity_scores(pop, len(h)),
        "markov": lambda h: markov_scores(h, transitions, pop),
        "cooc-knn": lambda h: knn_scores(h, cooccurrence, pop),
    }
    if sasrec is not None:
        from tasks.sasrec import score

        scorers["sasrec"] = lambda h: score(sasrec, list(h))
    return {m: scorers[m] for m in models if m in scorers}


# --- Prefect tasks -------------------------------------------------------------------------
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from tasks.warehouse import connect  # noqa: E402


@task(name="train-sasrec", tags=["gpu"], cache_policy=NO_CACHE)
def train_sasrec_task(warehouse: str, dataset: str, params: Any, out: str) -> dict[str, Any]:
    """Train SASRec (full-softmax CE) on the train split; the weights go to `out`."""
    import torch

    from tasks.sasrec import resolve_device, save, train_sasrec

    threads = torch.get_num_threads()
    if resolve_device(params.device).type == "cpu":
        torch.set_num_threads(1)     # small model: one thread is as fast, and far faster on busy cores
    try:
        with connect(warehouse) as con:
            model = train_sasrec(con, dataset, params)
    finally:
        torch.set_num_threads(threads)
    save(model, out)
    return {"path": out, "steps": model.steps, "best_step": model.best_step,
            "final_loss": model.losses[-1] if model.losses else None}


@task(name="train-tiger", tags=["gpu"], cache_policy=NO_CACHE)
def train_tiger_task(warehouse: str, dataset: str, sid_version: str, params: Any,
                     out: str) -> dict[str, Any]:
    """Train the TIGER-like SID transformer on the train split; the weights go to `out`."""
    from tasks.tiger import save, train_tiger_on

    with connect(warehouse) as con:
        model = train_tiger_on(con, dataset, sid_version, params)
    save(model, out)
    return {"path": out, "steps": model.steps, "best_step": model.best_step,
            "final_loss": model.losses[-1] if model.losses else None, "seconds": model.seconds}


@task(name="evaluate-models", task_run_name="evaluate on {split}", cache_policy=NO_CACHE)
def evaluate_task(warehouse: str, dataset: str, split: str, models: list[str],
                  snapshots: dict[str, int], sasrec_path: str | None = None,
                  history: int = 20) -> dict[str, Any]:
    """Score, group (IIRG one-hop and MemGen categories), store and return the rows."""
    from dataclasses import asdict

    from tasks.baselines import popularity, relation_matrix
    from tasks.memgen import categorize, category_masks
    from tasks.relations import load_input
    from tasks.sasrec import load

    with connect(warehouse) as con:
        _, histories, targets = user_histories(con, dataset, split)
        n_items = int(run(con, "eval/sasrec_n_items", {"dataset": dataset}).fetchone()[0])
        pop = popularity(con, dataset, split, n_items)
        trans = relation_matrix(con, "transitions", snapshots["transitions"], n_items)
        cooc = relation_matrix(con, "cooccurrence", snapshots["cooccurrence"], n_items)
        scorers = baseline_scorers(pop, trans, cooc, models,
                                   load(sasrec_path) if sasrec_path else None)
        load_input(con, dataset, None, split == "valid")
        ev = run(con, "eval/training_events").fetchnumpy()
        labels, _ = categorize(histories, targets, ev["user_idx"], ev["item_idx"], n_items)
        result = evaluate(dataset, split, histories, targets, scorers, trans, history,
                          categories={"memgen": category_masks(labels)})
        store(con, result)
    return asdict(result)
