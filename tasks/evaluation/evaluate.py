"""Evaluation: every model's full-catalogue scores for the same instances become metrics for all
users, IIRG's one-hop memorization groups and the other instance groups (MemGen categories,
SID-prefix memorization), stored in `eval_results`. `hoprec baselines` and `hoprec compare` both
come through `evaluate_scores_task`; a single seed is a run list of length one.

History items are excluded from every ranking. The groups come from what the split may see:
C(u) from the transitions snapshot of that split, MemGen categories and prefix memorization
from its training events (train for validation, train + valid for test).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp
from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.sequences import eval_rows, n_items, split_events, user_histories
from ..data.warehouse import connect, run, transaction
from ..recommenders.baselines import relation_matrix
from ..sids.store import code_matrix, load_sids
from .memorization import (
    category_masks,
    label_masks,
    memgen_labels,
    memorization_rate,
    memorization_split,
    prefix_memorization,
    primary,
    successor_candidates,
)
from .metrics import KS, metrics_by_group, per_user, ranked

GROUPS = ("all", "memorization", "non-memorization")


@dataclass
class EvalResult:
    eval_id: str
    dataset: str
    split: str
    users: int
    group_sizes: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)  # eval_results rows
    # per model, each user's NDCG@10 and Recall@10 (for paired bootstrap intervals), and each
    # user's IIRG one-hop group (True: memorization-benefiting)
    per_user: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    memorization: list[bool] = field(default_factory=list)


def sample_rows(
    con: duckdb.DuckDBPyConnection, dataset: str, split: str, users: int, seed: int = 0
) -> np.ndarray:
    """`eval_rows` over the split's instances: what every model of a run is scored on."""
    return eval_rows(len(user_histories(con, dataset, split)[2]), users, seed)


def split_inputs(
    con: duckdb.DuckDBPyConnection, dataset: str, split: str, rows: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """(histories, targets) of the evaluated instances `rows` of a split."""
    _, histories, targets = user_histories(con, dataset, split)
    return [histories[i] for i in rows], targets[rows]


def evaluate(
    dataset: str,
    split: str,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    scores: Mapping[str, np.ndarray],
    transitions: sp.csr_matrix,
    history: int = 20,
    candidates: int = 50,
    ks: Sequence[int] = KS,
    categories: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    tag: str = "",
) -> EvalResult:
    """Metrics of each model's score matrix, overall, per memorization group and per extra
    category, given as {kind: {name: user mask}} and stored as group `kind:name`; `tag` tells
    apart evaluations of the same users (e.g. seeds)."""
    inputs = [np.asarray(h)[-history:] for h in histories]
    cands = successor_candidates(inputs, transitions, candidates)
    benefit = memorization_split(cands, targets)
    groups = {"memorization": benefit, "non-memorization": ~benefit}
    kinds = {g: "memorization" for g in ("all", *groups)}
    for kind, masks in (categories or {}).items():
        for name, mask in masks.items():
            groups[f"{kind}:{name}"] = mask
            kinds[f"{kind}:{name}"] = kind
    blob = json.dumps(
        {
            "dataset": dataset,
            "split": split,
            "models": sorted(scores),
            "users": len(targets),
            "tag": tag,
        },
        sort_keys=True,
    )
    eval_id = f"{dataset}-{split}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
    result = EvalResult(
        eval_id,
        dataset,
        split,
        len(targets),
        {"all": len(targets), **{g: int(m.sum()) for g, m in groups.items()}},
    )
    result.memorization = benefit.tolist()
    for name, matrix in scores.items():
        ranks, lists = ranked(matrix, targets, histories, max(*ks, 5))
        per_group = metrics_by_group(ranks, lists[:, : max(ks)], matrix.shape[1] - 1, groups, ks)
        result.per_user[name] = {m: v.tolist() for m, v in per_user(ranks).items()}
        for group, values in per_group.items():
            for (metric, k), value in values.items():
                result.rows.append(
                    {
                        "model": name,
                        "kind": kinds[group],
                        "group": group,
                        "metric": metric,
                        "k": k,
                        "value": value,
                    }
                )
            mask = np.ones(len(targets), bool) if group == "all" else groups[group]
            result.rows.append(
                {
                    "model": name,
                    "kind": kinds[group],
                    "group": group,
                    "metric": "memorization_rate",
                    "k": 5,
                    "value": memorization_rate(
                        [c for c, m in zip(cands, mask) if m], lists[mask, :5], 5
                    ),
                }
            )
    return result


def store(con: duckdb.DuckDBPyConnection, result: EvalResult) -> None:
    """Replace this evaluation's rows in `eval_results`."""
    import pyarrow as pa

    con.register("eval_rows", pa.Table.from_pylist(result.rows))
    try:
        with transaction(con):
            run(con, "evaluation/delete_results", {"eval_id": result.eval_id})
            run(
                con,
                "evaluation/insert_results",
                {"eval_id": result.eval_id, "dataset": result.dataset, "split": result.split},
            )
    finally:
        con.unregister("eval_rows")


def instance_groups(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    split: str,
    histories: list[np.ndarray],
    targets: np.ndarray,
    n: int,
    sid_version: str | None,
) -> dict[str, dict[str, np.ndarray]]:
    """MemGen's instance categories (primary and multi-label) and, with a SID version, its
    SID-prefix memorization (n = 1..L, hops 1..4) of each instance. As in MemGen's code the
    training relations come from the train split only, for validation and test alike."""
    users, items = split_events(con, dataset, "valid")  # the events a validation may see: train
    labels = memgen_labels(histories, targets, users, items, n)
    out = {
        "memgen": category_masks([primary(lab)[0] for lab in labels]),
        "memgen-label": label_masks(labels),
    }
    if sid_version:
        codes = code_matrix(load_sids(con, dataset, sid_version), n)
        out["prefix"] = prefix_memorization(histories, targets, users, items, codes)
    return out


@task(name="evaluate-scores", task_run_name="evaluate {split} ({tag})", cache_policy=NO_CACHE)
def evaluate_scores_task(
    warehouse: str,
    dataset: str,
    split: str,
    scores: dict[str, np.ndarray],
    rows: np.ndarray,
    snapshots: dict[str, int],
    history: int,
    sid_version: str | None,
    tag: str,
) -> dict[str, Any]:
    """Metrics of every model on the same rows, per group and category; stored."""
    with connect(warehouse) as con:
        histories, targets = split_inputs(con, dataset, split, rows)
        n = n_items(con, dataset)
        trans = relation_matrix(con, "transitions", snapshots["transitions"], n)
        groups = instance_groups(con, dataset, split, histories, targets, n, sid_version)
        result = evaluate(
            dataset, split, histories, targets, scores, trans, history, categories=groups, tag=tag
        )
        store(con, result)
    return asdict(result)
