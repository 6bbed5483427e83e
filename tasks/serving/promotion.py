"""Champion/challenger: both models scored on the same validation users, and the challenger
promoted only when its validation NDCG@10 beats the champion's by more than a margin.

Test events never enter a decision: the users, their histories and targets all come from the
validation split, so changing test labels cannot change an outcome (tested). Every decision is
kept in `model_decisions` with both scores and the paired bootstrap interval of the gain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import connect, fetch_dicts, run, transaction
from ..evaluation.evaluate import evaluate_scores_task, sample_rows, split_inputs
from ..evaluation.metrics import paired_bootstrap
from .recommend import ModelRef, model_scorer

SPLIT = "valid"


@dataclass
class Decision:
    challenger_id: str
    champion_id: str | None
    users: int
    challenger_ndcg: float
    champion_ndcg: float | None
    diff_low: float | None
    diff_high: float | None
    margin: float
    promoted: bool
    reason: str


def decide(
    challenger_id: str,
    challenger: np.ndarray,
    champion_id: str | None,
    champion: np.ndarray | None,
    margin: float,
    unscorable: str | None = None,
) -> Decision:
    """The decision from per-user validation NDCG@10 of both models on the same users.
    `unscorable` says why the champion could not be scored (then the challenger wins)."""
    if margin < 0:
        raise ValueError(f"--margin must be >= 0, got {margin}")
    mean = float(np.mean(challenger)) if len(challenger) else 0.0
    base: dict[str, Any] = {
        "challenger_id": challenger_id,
        "users": len(challenger),
        "challenger_ndcg": mean,
    }
    if champion_id is None or champion is None:
        reason = unscorable or "there was no champion yet"
        return Decision(**base, champion_id=champion_id, champion_ndcg=None, diff_low=None,
                        diff_high=None, margin=margin, promoted=True, reason=reason)  # fmt: skip
    gain, low, high = paired_bootstrap(np.asarray(challenger) - np.asarray(champion))
    champ = float(np.mean(champion))
    promoted = gain > margin
    verb = "beats" if promoted else "does not beat"
    reason = (
        f"challenger validation NDCG@10 {mean:.4f} {verb} the champion's {champ:.4f} by more "
        f"than the margin {margin:g} (gain {gain:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}], "
        f"{len(challenger)} users)"
    )
    return Decision(**base, champion_id=champion_id, champion_ndcg=champ, diff_low=low,
                    diff_high=high, margin=margin, promoted=promoted, reason=reason)  # fmt: skip


def record_decision(con: duckdb.DuckDBPyConnection, dataset: str, d: Decision) -> None:
    """Keep the decision; a promoted challenger becomes the dataset's champion (one transaction)."""
    with transaction(con):
        run(con, "retrain/record_decision", {"dataset": dataset, **asdict(d)})
        if d.promoted:
            run(con, "train/promote", {"dataset": dataset, "model_id": d.challenger_id})


def decisions(con: duckdb.DuckDBPyConnection, dataset: str) -> list[dict[str, Any]]:
    """A dataset's decisions, newest first."""
    return fetch_dicts(run(con, "retrain/decisions", {"dataset": dataset}))


@task(name="judge-on-validation", cache_policy=NO_CACHE)
def judge_task(
    warehouse: str,
    dataset: str,
    challenger: ModelRef,
    champion: ModelRef | None,
    snapshots: dict[str, int],
    eval_users: int,
    margin: float,
    history: int,
    sid_version: str | None,
    llm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score both models on the same validation users, store their metrics under their model
    ids (per memorization group), decide and record. Returns the decision and the evaluation."""
    if champion is not None and champion.model_id == challenger.model_id:
        champion = None  # the same data and settings gave the same model: nothing to decide
        same = True
    else:
        same = False
    refs = [r for r in (challenger, champion) if r is not None]
    scores: dict[str, np.ndarray] = {}
    unscorable = None
    with connect(warehouse) as con:
        rows = sample_rows(con, dataset, SPLIT, eval_users)
        histories, _ = split_inputs(con, dataset, SPLIT, rows)
        for ref in refs:
            try:
                scores[ref.model_id] = model_scorer(con, dataset, ref, snapshots, llm)(histories)
            except ValueError as exc:
                if ref is challenger:
                    raise
                unscorable = f"the champion cannot be scored on the current data: {exc}"
    ev = evaluate_scores_task.fn(
        warehouse, dataset, SPLIT, scores, rows, snapshots, history, sid_version, "retrain"
    )
    ndcg = {m: np.asarray(v["ndcg@10"]) for m, v in ev["per_user"].items()}
    if same:
        mean = float(ndcg[challenger.model_id].mean())
        d = Decision(challenger.model_id, challenger.model_id, len(rows), mean, mean, 0.0, 0.0,
                     margin, False, "the challenger is the champion itself (same data and "
                     "settings): nothing to decide")  # fmt: skip
    else:
        has_champ = champion is not None and champion.model_id in ndcg
        d = decide(
            challenger.model_id,
            ndcg[challenger.model_id],
            champion.model_id if has_champ and champion else None,
            ndcg[champion.model_id] if has_champ and champion else None,
            margin,
            unscorable,
        )
        if champion is not None:
            d.champion_id = champion.model_id
    with connect(warehouse) as con:
        record_decision(con, dataset, d)
    return {"decision": asdict(d), "eval": ev}
