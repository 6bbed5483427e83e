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
             candidates: int = 50, ks: Sequence[int] = KS) -> EvalResult:
    """Metrics of each model, overall and per memorization group, as eval_results rows."""
    inputs = [np.asarray(h)[-history:] for h in histories]
    cands = successor_candidates(inputs, transitions, candidates)
    benefit = memorization_split(cands, targets)
    groups = {"memorization": benefit, "non-memorization": ~benefit}
    blob = json.dumps({"dataset": dataset, "split": split, "models": sorted(scorers),
                       "users": len(targets)}, sort_keys=True)
    eval_id = f"{dataset}-{split}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
    result = EvalResult(eval_id, dataset, split, len(targets),
                        {"all": len(targets), "memorization": int(benefit.sum()),
                         "non-memorization": int((~benefit).sum())})
    for name, scorer in scorers.items():
        scores = scorer(histories)
        per_group = grouped_metrics(scores, targets, histories, groups, ks)
        lists = top_k(mask_items(scores, histories), 5)
        for group, values in per_group.items():
            for (metric, k), value in values.items():
                result.rows.append({"model": name, "group": group, "metric": metric, "k": k,
                                    "value": value})
            mask = np.ones(len(targets), bool) if group == "all" else groups[group]
            result.rows.append({"model": name, "group": group, "metric": "memorization_rate",
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
             f"recall@{k}": cell[(m, g, "recall", k)], f"ndcg@{k}": cell[(m, g, "ndcg", k)],
             "mrr": cell[(m, g, "mrr", 0)], f"coverage@{k}": cell[(m, g, "coverage", k)],
             "mem. rate@5": cell[(m, g, "memorization_rate", 5)]}
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
