"""Scoring and evaluating many models on the same users: the pieces of `hoprec compare`.

Every model becomes a score matrix over the same evaluation rows (a seeded sample of the split's
users, or all), computed once per split; fusion reuses the matrices, and one evaluation writes
the rows of every model to `eval_results` with the IIRG one-hop groups, MemGen categories and
SID-prefix memorization groups.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import duckdb
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation import evaluate, store, user_histories
from tasks.warehouse import connect, run

BASELINES = ("popularity", "markov", "cooc-knn")


def eval_rows(n: int, users: int, seed: int = 0) -> np.ndarray:
    """Which of the split's `n` instances are evaluated: all (users = 0) or a seeded sample,
    the same for every model and training seed, so their figures are comparable."""
    if users <= 0 or users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, users, replace=False))


def split_inputs(con: duckdb.DuckDBPyConnection, dataset: str, split: str,
                 rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    _, histories, targets = user_histories(con, dataset, split)
    return [histories[i] for i in rows], targets[rows]


def sid_codes(sids: Mapping[int, str], n_items: int) -> np.ndarray:
    """[n_items + 1, L] integer codes of each item's SID (row 0 = padding)."""
    first = next(iter(sids.values()))
    codes = np.zeros((n_items + 1, len(re.findall(r"_(\d+)>", first))), np.int64)
    for item, sid in sids.items():
        codes[item] = [int(c) for c in re.findall(r"_(\d+)>", sid)]
    return codes


def n_items_of(con: duckdb.DuckDBPyConnection, dataset: str) -> int:
    return int(run(con, "eval/sasrec_n_items", {"dataset": dataset}).fetchall()[0][0])


@task(name="score-model", task_run_name="score {name} on {split}", cache_policy=NO_CACHE)
def score_task(warehouse: str, dataset: str, split: str, name: str, kind: str,
               path: str | None, snapshots: dict[str, int], rows: np.ndarray,
               llm: dict[str, Any] | None = None) -> np.ndarray:
    """One model's full-catalogue scores [rows, n_items + 1] for the split's evaluation rows.
    kind: a baseline name, 'sasrec' / 'tiger' (a saved model file) or 'llm' (a trained run)."""
    with connect(warehouse) as con:
        histories, _ = split_inputs(con, dataset, split, rows)
        n_items = n_items_of(con, dataset)
        if kind in BASELINES:
            from tasks.baselines import popularity, relation_matrix
            from tasks.evaluation import baseline_scorers

            pop = popularity(con, dataset, split, n_items)
            trans = relation_matrix(con, "transitions", snapshots["transitions"], n_items)
            cooc = relation_matrix(con, "cooccurrence", snapshots["cooccurrence"], n_items)
            return baseline_scorers(pop, trans, cooc, [kind])[kind](histories)
        if kind == "llm":
            return _llm_scores(con, dataset, path, histories, n_items, llm or {})
    if kind == "sasrec":
        from tasks.sasrec import load, score

        return score(load(path), histories)
    if kind == "tiger":
        from tasks import tiger

        return tiger.score(tiger.load(path), histories)
    raise ValueError(f"unknown model kind {kind!r}")


def _llm_scores(con: duckdb.DuckDBPyConnection, dataset: str, path: str | None,
                histories: list[np.ndarray], n_items: int, opts: dict[str, Any]) -> np.ndarray:
    import torch

    from tasks.instructions import item_labels
    from tasks.llm_eval import llm_scorer
    from tasks.training import load_trained, resolve_device

    device = resolve_device(opts.get("device", "auto"))
    model, tokenizer, meta = load_trained(path, str(device), merge=True)
    build = meta["build_params"]
    labels, sids, _ = item_labels(con, dataset, meta["sid_version"], build.get("titles", True))
    scorer = llm_scorer(model, tokenizer, sids, labels, n_items, history=build["history"],
                        decode=opts.get("decode", "beam"), num_beams=opts.get("num_beams", 20),
                        batch_size=opts.get("batch_size", 8), device=str(device))
    with torch.inference_mode():
        return scorer(histories)


@task(name="fusion-grid", task_run_name="fusion grid {id_name} + {gr_name}", cache_policy=NO_CACHE)
def fusion_task(warehouse: str, dataset: str, id_name: str, gr_name: str,
                id_scores: np.ndarray, gr_scores: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """MemGen's (k, tau) grid on validation NDCG@10."""
    from tasks.fusion import grid_search

    with connect(warehouse) as con:
        histories, targets = split_inputs(con, dataset, "valid", rows)
    return grid_search(id_scores, gr_scores, histories, targets)


def fused(id_scores: np.ndarray, gr_scores: np.ndarray, histories: Sequence[np.ndarray],
          params: Mapping[str, float]) -> np.ndarray:
    from tasks.fusion import fuse

    return fuse(id_scores, gr_scores, histories, params["k"], params["tau"])


def categories(con: duckdb.DuckDBPyConnection, dataset: str, split: str,
               histories: list[np.ndarray], targets: np.ndarray, n_items: int,
               sid_version: str | None) -> dict[str, dict[str, np.ndarray]]:
    """MemGen instance categories and SID-prefix memorization (n = 1..L) of each instance,
    against the events the split may see (train; + valid for test)."""
    from tasks.fusion import last_items, prefix_memorization, transitions_from_sequences
    from tasks.memgen import categorize, category_masks
    from tasks.relations import load_input
    from tasks.sids import load_sids

    load_input(con, dataset, None, split == "valid")
    ev = run(con, "eval/training_events").fetchnumpy()
    labels, _ = categorize(histories, targets, ev["user_idx"], ev["item_idx"], n_items)
    out = {"memgen": category_masks(labels)}
    if sid_version:
        codes = sid_codes(load_sids(con, dataset, sid_version), n_items)
        cuts = np.flatnonzero(np.diff(ev["user_idx"])) + 1
        src, dst = transitions_from_sequences(np.split(ev["item_idx"].astype(np.int64), cuts))
        pm = prefix_memorization(last_items(histories), targets, src, dst, codes)
        out["prefix"] = {f"{n}-gram": mask for n, mask in pm.items()}
    return out


@task(name="evaluate-scores", task_run_name="evaluate {split} ({tag})", cache_policy=NO_CACHE)
def evaluate_scores_task(warehouse: str, dataset: str, split: str,
                         scores: dict[str, np.ndarray], rows: np.ndarray,
                         snapshots: dict[str, int], history: int, sid_version: str | None,
                         tag: str) -> dict[str, Any]:
    """Metrics of every model on the same rows, per group and category; stored."""
    from tasks.baselines import relation_matrix

    with connect(warehouse) as con:
        histories, targets = split_inputs(con, dataset, split, rows)
        n_items = n_items_of(con, dataset)
        trans = relation_matrix(con, "transitions", snapshots["transitions"], n_items)
        cats = categories(con, dataset, split, histories, targets, n_items, sid_version)
        result = evaluate(dataset, split, histories, targets,
                          {m: (lambda h, s=s: s) for m, s in scores.items()}, trans, history,
                          categories=cats, tag=tag)
        store(con, result)
    return asdict(result)
