"""Every model as a score matrix over the same evaluation instances, and MemGen's fusion of two.

A model is named by its kind: a non-neural baseline, 'sasrec' or 'tiger' (a saved model file)
or 'llm' (a trained run's folder). Each is scored once per split; fusion reuses the matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.sequences import n_items, user_histories
from ..data.warehouse import connect
from ..recommenders.baselines import MODELS as BASELINES
from ..recommenders.baselines import baseline_scores, popularity
from .evaluate import split_inputs
from .fusion import fuse, grid_search


@task(name="score-model", task_run_name="score {name} on {split}", cache_policy=NO_CACHE)
def score_task(
    warehouse: str,
    dataset: str,
    split: str,
    name: str,
    kind: str,
    path: str | None,
    snapshots: dict[str, int],
    rows: np.ndarray,
    llm: dict[str, Any] | None = None,
) -> np.ndarray:
    """One model's full-catalogue scores [rows, n_items + 1] for the split's evaluation rows."""
    with connect(warehouse) as con:
        histories, _ = split_inputs(con, dataset, split, rows)
        if kind in BASELINES:
            return baseline_scores(con, dataset, split, kind, snapshots, histories)
        if kind == "llm":
            from ..llm.scoring import score_trained

            return score_trained(
                con, dataset, str(path), histories, n_items(con, dataset), **(llm or {})
            )
        users = user_histories(con, dataset, split)[0][rows]  # TIGER's hashed user token
    if kind == "sasrec":
        from ..recommenders import sasrec

        return sasrec.score(sasrec.load(str(path)), histories)
    if kind == "tiger":
        from ..recommenders import tiger

        return tiger.score(tiger.load(str(path)), histories, users=users)
    raise ValueError(f"unknown model kind {kind!r}")


@task(
    name="free-generation", task_run_name="free generation {name} on {split}", cache_policy=NO_CACHE
)
def free_generation_task(
    warehouse: str,
    dataset: str,
    split: str,
    name: str,
    path: str,
    rows: np.ndarray,
    llm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """IIRG's evaluation of a trained LLM: unconstrained generation parsed into items
    (llm/generation.py). {"scores": [rows, n_items + 1], "stats": invalid-SID rate and the
    share of users with fewer than 10 / 20 items}."""
    from ..llm.generation import GenerationStats
    from ..llm.scoring import score_trained

    opts = {k: v for k, v in (llm or {}).items() if k != "decode"}
    stats = GenerationStats()
    with connect(warehouse) as con:
        histories, _ = split_inputs(con, dataset, split, rows)
        n = n_items(con, dataset)
        scores = score_trained(
            con,
            dataset,
            path,
            histories,
            n,
            decode="free",
            popularity=popularity(con, dataset, split, n),
            stats=stats,
            **opts,
        )
    return {"scores": scores, "stats": stats.summary()}


@task(name="fusion-grid", task_run_name="fusion grid {id_name} + {gr_name}", cache_policy=NO_CACHE)
def fusion_task(
    warehouse: str,
    dataset: str,
    id_name: str,
    gr_name: str,
    id_scores: np.ndarray,
    gr_scores: np.ndarray,
    rows: np.ndarray,
    floor: float | None = None,
) -> dict[str, Any]:
    """MemGen's (k, tau) grid on validation NDCG@10 (`floor`: see fusion.py)."""
    with connect(warehouse) as con:
        histories, targets = split_inputs(con, dataset, "valid", rows)
    return grid_search(id_scores, gr_scores, histories, targets, floor=floor)


def fused(
    id_scores: np.ndarray,
    gr_scores: np.ndarray,
    histories: Sequence[np.ndarray],
    params: Mapping[str, float],
    floor: float | None = None,
) -> np.ndarray:
    """The fused scores with a grid point's (k, tau)."""
    return fuse(id_scores, gr_scores, histories, params["k"], params["tau"], floor=floor)
