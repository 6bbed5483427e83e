"""Batch recommendations: every user's top-K of one model, over their whole prepared sequence,
written to the `recommendations` table and to one Parquet file (one row a user).

A model is a `models` row (an LLM fine-tune, SASRec, the SID transformer), the dataset's
champion, or a baseline by name. A baseline needs no trained model, so a team always has a
fallback; SASRec is trained on the spot when none is stored. History items are never
recommended. Users are scored in chunks, so memory stays at one chunk's score matrix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.sequences import n_items
from ..data.warehouse import fetch_arrow, fetch_dicts, fetch_value, run, transaction
from ..evaluation.metrics import mask_items, top_k
from ..recommenders.baselines import MODELS as BASELINES
from ..recommenders.baselines import baseline_scores, popularity
from ..settings import stage_dir

log = logging.getLogger("hoprec.recommend")

Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ModelRef:
    """What to recommend with: a stored model (kind + path) or a baseline (no path)."""

    model_id: str
    kind: str  # popularity | markov | cooc-knn | sasrec | tiger | llm-lora | llm-full
    path: str | None = None
    catalogue: str | None = None  # the item index it was trained on (index-scored models)


def find_model(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    model_id: str | None = None,
    kind: str | None = None,
    champion: bool = False,
) -> ModelRef | None:
    """A `models` row: the one named, the champion, or the newest of a kind."""
    rows = fetch_dicts(
        run(
            con,
            "recommend/find_model",
            {"dataset": dataset, "model_id": model_id, "kind": kind, "champion": champion},
        )
    )
    if not rows:
        return None
    r = rows[0]
    catalogue = json.loads(r["params_json"] or "{}").get("catalogue")
    return ModelRef(r["model_id"], r["kind"], r["path"], catalogue)


def catalogue_key(con: duckdb.DuckDBPyConnection, dataset: str) -> str:
    """A key of the dataset's item index (item id -> dense index) as prepare left it."""
    return str(fetch_value(run(con, "recommend/catalogue_key", {"dataset": dataset})))


def check_catalogue(con: duckdb.DuckDBPyConnection, dataset: str, ref: ModelRef) -> None:
    """An index-scored model trained on another item index would score the wrong items."""
    if ref.catalogue is not None and ref.catalogue != catalogue_key(con, dataset):
        raise ValueError(
            f"model {ref.model_id} was trained on another item catalogue of {dataset!r} (items "
            "were added or dropped since, so item indices moved); retrain it"
        )


def resolve_model(con: duckdb.DuckDBPyConnection, dataset: str, name: str) -> ModelRef | None:
    """`name` -> a ModelRef: 'champion', a baseline, 'sasrec' (the newest stored; None when
    there is none yet, so the caller trains one), or a model id. Unknown names fail here."""
    if name in BASELINES:
        return ModelRef(f"{dataset}-{name}", name)
    if name == "champion":
        ref = find_model(con, dataset, champion=True)
        if ref is None:
            raise ValueError(
                f"dataset {dataset!r} has no champion yet: run `hoprec retrain --dataset "
                f"{dataset}`, or recommend with a baseline (--model popularity|markov|cooc-knn|"
                "sasrec)"
            )
        return ref
    if name == "sasrec":  # the newest that fits today's catalogue, else None: train one
        ref = find_model(con, dataset, kind="sasrec")
        fits = ref is not None and ref.catalogue in (None, catalogue_key(con, dataset))
        return ref if fits else None
    ref = find_model(con, dataset, model_id=name)
    if ref is None:
        raise ValueError(
            f"no model {name!r} in dataset {dataset!r}; use a model id from the `models` "
            f"table, 'champion', or one of {', '.join((*BASELINES, 'sasrec'))}"
        )
    return ref


def all_histories(
    con: duckdb.DuckDBPyConnection, dataset: str
) -> tuple[list[str], list[np.ndarray]]:
    """(user ids, whole sequences) of every prepared user."""
    tbl = fetch_arrow(run(con, "recommend/user_histories", {"dataset": dataset}))
    if not len(tbl):
        raise ValueError(f"dataset {dataset!r} has no prepared sequences: run `hoprec prepare`")
    hist = tbl.column("history").combine_chunks()
    values = hist.values.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = hist.offsets.to_numpy()
    users = [str(u) for u in tbl.column("user_id").to_pylist()]
    return users, [values[offsets[i] : offsets[i + 1]] for i in range(len(tbl))]


def item_ids(con: duckdb.DuckDBPyConnection, dataset: str) -> np.ndarray:
    """item_idx -> item_id (index 0, padding, is '')."""
    rows = run(con, "recommend/item_ids", {"dataset": dataset}).fetchall()
    out = np.empty(len(rows) + 1, dtype=object)
    out[0] = ""
    for idx, item in rows:
        out[idx] = item
    return out


def pick_users(
    all_users: list[str], histories: list[np.ndarray], wanted: Sequence[str] | None
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """(users, histories, unknown): the wanted users in their given order (all when None). An
    unknown user (not in the prepared data) is a cold start: scored with an empty history."""
    if wanted is None:
        return all_users, histories, []
    pos = {u: i for i, u in enumerate(all_users)}
    seen: set[str] = set()
    users, hists, unknown = [], [], []
    for u in wanted:
        if u in seen:
            continue
        seen.add(u)
        users.append(u)
        if u in pos:
            hists.append(histories[pos[u]])
        else:
            unknown.append(u)
            hists.append(np.zeros(0, dtype=np.int64))
    return users, hists, unknown


def read_user_file(path: str | Path) -> list[str]:
    """User ids, one a line (blank lines and '#' comments skipped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--users file {p} does not exist")
    lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    users = [line for line in lines if line and not line.startswith("#")]
    if not users:
        raise ValueError(f"--users file {p} lists no user id")
    return users


def model_scorer(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    ref: ModelRef,
    snapshots: dict[str, int] | None,
    llm: dict[str, Any] | None = None,
) -> Scorer:
    """A function from histories to full-catalogue scores [users, n_items + 1]. Baselines read
    the popularity and relation snapshots a test-time evaluation sees (train + valid events)."""
    if ref.kind in BASELINES:
        assert snapshots is not None, "baselines need the relation snapshots"
        snaps = dict(snapshots)
        return lambda h: baseline_scores(con, dataset, "test", ref.kind, snaps, h)
    if ref.kind in ("sasrec", "tiger"):
        check_catalogue(con, dataset, ref)
    if ref.kind == "sasrec":
        from ..recommenders import sasrec

        net = sasrec.load(str(ref.path))
        return lambda h: sasrec.score(net, list(h))
    if ref.kind == "tiger":
        from ..recommenders import tiger

        model = tiger.load(str(ref.path))
        return lambda h: tiger.score(model, list(h))
    if ref.kind.startswith("llm"):
        from ..llm.scoring import score_trained

        run_dir = str(Path(str(ref.path)).parent)  # models.path is <run>/model
        n = n_items(con, dataset)
        return lambda h: score_trained(con, dataset, run_dir, h, n, **(llm or {}))
    raise ValueError(f"cannot recommend with a model of kind {ref.kind!r}")


def cold_start_popular(con: duckdb.DuckDBPyConnection, dataset: str, scorer: Scorer) -> Scorer:
    """The scorer, with users who have no history given the most popular items (a sequence
    model has nothing to continue for them)."""
    pop = popularity(con, dataset, "test", n_items(con, dataset))

    def score(histories: Sequence[np.ndarray]) -> np.ndarray:
        known = [i for i, h in enumerate(histories) if len(h)]
        out = np.tile(pop, (len(histories), 1))
        if known:
            out[known] = scorer([histories[i] for i in known])
        return out

    return score


def top_lists(
    scorer: Scorer,
    histories: list[np.ndarray],
    k: int,
    chunk: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(items [users, k], scores [users, k]) with history items and padding excluded; a slot
    past the user's last rankable item holds item 0 and -inf."""
    items = np.zeros((len(histories), k), dtype=np.int64)
    scores = np.full((len(histories), k), -np.inf)
    for start in range(0, len(histories), chunk):
        part = histories[start : start + chunk]
        masked = mask_items(scorer(part), part)
        best = top_k(masked, k)
        vals = np.take_along_axis(masked, best, axis=1)
        items[start : start + len(part)] = np.where(np.isfinite(vals), best, 0)
        scores[start : start + len(part)] = vals
        if progress:
            progress(start + len(part), len(histories))
    return items, scores


def recommendations_table(
    users: list[str], items: np.ndarray, scores: np.ndarray, ids: np.ndarray
) -> pa.Table:
    """Long rows (user_id, rank, item_id, score) of the finite slots."""
    keep = np.isfinite(scores)
    u_idx, slot = np.nonzero(keep)
    return pa.table(
        {
            "user_id": pa.array(np.asarray(users, dtype=object)[u_idx], pa.string()),
            "rank": pa.array(slot + 1, pa.int32()),
            "item_id": pa.array(ids[items[keep]], pa.string()),
            "score": pa.array(scores[keep], pa.float64()),
        }
    )


def write_recommendations(
    con: duckdb.DuckDBPyConnection, dataset: str, model_id: str, recs: pa.Table, out: Path
) -> datetime:
    """Replace the model's rows in the warehouse (one transaction) and write its Parquet file
    (one row a user: item and score lists by rank), to a temp name and renamed."""
    created = datetime.now().replace(microsecond=0)
    con.register("recs", recs)
    try:
        with transaction(con):
            run(
                con,
                "recommend/replace",
                {"dataset": dataset, "model_id": model_id, "created_at": created},
            )
    finally:
        con.unregister("recs")
    per_user = (
        recs.group_by("user_id", use_threads=False)
        .aggregate([("item_id", "list"), ("score", "list")])
        .rename_columns(["user_id", "items", "scores"])
    )
    per_user = per_user.append_column(
        "model_id", pa.array([model_id] * len(per_user), pa.string())
    ).append_column("created_at", pa.array([created] * len(per_user), pa.timestamp("s")))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(per_user, tmp)
    tmp.replace(out)
    return created


def recommend(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    ref: ModelRef,
    k: int,
    wanted: Sequence[str] | None,
    snapshots: dict[str, int] | None,
    llm: dict[str, Any] | None = None,
    chunk: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Score, rank and store one model's top-K for the users; returns the run's figures."""
    if k < 1:
        raise ValueError(f"--k must be >= 1, got {k}")
    all_users, all_hist = all_histories(con, dataset)
    users, histories, unknown = pick_users(all_users, all_hist, wanted)
    scorer = cold_start_popular(con, dataset, model_scorer(con, dataset, ref, snapshots, llm))
    t0 = time.perf_counter()
    items, scores = top_lists(scorer, histories, k, chunk, progress)
    seconds = time.perf_counter() - t0
    recs = recommendations_table(users, items, scores, item_ids(con, dataset))
    out = stage_dir("recommendations", dataset) / f"{_file_name(ref.model_id)}.parquet"
    created = write_recommendations(con, dataset, ref.model_id, recs, out)
    listed = items[np.isfinite(scores)]
    return {
        "dataset": dataset,
        "model_id": ref.model_id,
        "kind": ref.kind,
        "k": k,
        "users": len(users),
        "cold_start": len(unknown),
        "rows": recs.num_rows,
        "short_lists": int((~np.isfinite(scores[:, -1])).sum()),
        "coverage": len(np.unique(listed)) / max(n_items(con, dataset), 1),
        "seconds": seconds,
        "users_per_s": len(users) / seconds if seconds > 0 else float("inf"),
        "parquet": str(out),
        "created_at": created.isoformat(sep=" "),
    }


def _file_name(model_id: str) -> str:
    """A model id as a file name (ids are already path-safe; long ones are shortened)."""
    if len(model_id) <= 120:
        return model_id
    return model_id[:100] + "-" + hashlib.sha256(model_id.encode()).hexdigest()[:12]


# --- Prefect task ---------------------------------------------------------------------------
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from ..data.warehouse import connect  # noqa: E402


@task(name="recommend", task_run_name="recommend with {ref.model_id}", cache_policy=NO_CACHE)
def recommend_task(
    warehouse: str,
    dataset: str,
    ref: ModelRef,
    k: int,
    wanted: list[str] | None,
    snapshots: dict[str, int] | None,
    llm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`recommend` with a progress artifact in the run (and progress lines in the log)."""
    chunk = 32 if ref.kind.startswith("llm") else 256
    with connect(warehouse) as con:
        return recommend(con, dataset, ref, k, wanted, snapshots, llm, chunk, _progress(ref))


def _progress(ref: ModelRef) -> Callable[[int, int], None]:
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import TaskRunContext

    art: Any = (
        create_progress_artifact(0.0, description=f"recommendations of {ref.model_id}: users (%)")
        if TaskRunContext.get() is not None
        else None
    )
    t0 = time.perf_counter()

    def update(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        log.info("recommend %s: %d/%d users (%.0f users/s)", ref.model_id, done, total, rate)
        if art is not None:
            update_progress_artifact(art, 100.0 * done / total)

    return update
