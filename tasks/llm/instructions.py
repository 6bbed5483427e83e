"""IIRG instruction data: next item, collaborative and semantic neighbours (+ SID alignment).

Samples are chat messages (role/content), independent of any model's chat template, written to
Parquet with the item indices and sequence positions they use, so the leakage audit can check
every one. Which events and pairs go in is SQL (`sql/instructions/`); the text is rendered here
from one label per item: `[<sid>] Title: ...`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import defaults
from ..data.warehouse import fetch_dicts, run
from ..settings import stage_dir
from .prompts import PROMPTS, encode_sample, item_labels, messages

log = logging.getLogger("hoprec.instructions")

NEXT_ITEM_FORMS = ("sliding", "all-remaining", "both")
SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("key", pa.string()),
        ("user_idx", pa.int32()),
        ("input_items", pa.list_(pa.int32())),
        ("input_pos", pa.list_(pa.int32())),
        ("target_items", pa.list_(pa.int32())),
        ("target_pos", pa.list_(pa.int32())),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("loss_weight", pa.float32()),
    ]
)


@dataclass(frozen=True)
class InstructionParams:
    """What an instruction build depends on (besides its SIDs and relation snapshots)."""

    history: int = defaults.HISTORY  # LLM input: last N training items
    next_item: Literal["sliding", "all-remaining", "both"] = defaults.NEXT_ITEM  # type: ignore[assignment]
    neighbors: int = defaults.NEIGHBORS  # targets of collaborative/semantic
    alignment: bool = False  # SID <-> title tasks (LC-Rec style)
    titles: bool = True  # items as `[<sid>] Title: ..` or `[<sid>]`
    weight_next: float = 1.0
    weight_collaborative: float = 1.0
    weight_semantic: float = 1.0
    weight_alignment: float = 1.0
    max_samples: int = 0  # per task; 0 keeps all
    seed: int = 0

    def __post_init__(self) -> None:
        if self.history < 1 or self.neighbors < 1:
            raise ValueError("history and neighbors must be >= 1")
        if self.next_item not in NEXT_ITEM_FORMS:
            raise ValueError(f"next_item must be one of {NEXT_ITEM_FORMS}, got {self.next_item!r}")
        if self.max_samples < 0:
            raise ValueError(f"max_samples must be >= 0, got {self.max_samples}")
        weights = (
            self.weight_next,
            self.weight_collaborative,
            self.weight_semantic,
            self.weight_alignment,
        )
        if any(w < 0 for w in weights):
            raise ValueError("loss weights must be >= 0")

    def weight(self, task: str) -> float:
        if task.startswith("next-item"):
            return self.weight_next
        if task in ("sid-to-title", "title-to-sid"):
            return self.weight_alignment
        return self.weight_collaborative if task == "collaborative" else self.weight_semantic


@dataclass
class InstructionBuild:
    """A small record of one build: where the Parquet is and what it holds."""

    build_id: str
    dataset: str
    path: str
    counts: dict[str, int]
    available: dict[str, int]  # samples before the per-task cap
    sources: dict[str, Any]
    params: dict[str, Any]
    token_lengths: dict[str, dict[str, float]] = field(default_factory=dict)


def user_task_rows(
    con: duckdb.DuckDBPyConnection, dataset: str, params: InstructionParams
) -> dict[str, list[dict[str, Any]]]:
    """Next-item samples (positions included) from the training events only."""
    forms = {
        "sliding": ["next-item"],
        "all-remaining": ["next-item-all"],
        "both": ["next-item", "next-item-all"],
    }[params.next_item]
    files = {
        "next-item": "instructions/next_item_sliding",
        "next-item-all": "instructions/next_item_all",
    }
    return {
        t: fetch_dicts(run(con, files[t], {"dataset": dataset, "history": params.history}))
        for t in forms
    }


def item_task_rows(
    con: duckdb.DuckDBPyConnection, table: str, snapshot_id: int, n: int
) -> list[dict[str, Any]]:
    """One sample per item: its first n neighbours in a relation snapshot."""
    cur = run(con, "instructions/neighbor_lists", {"snapshot_id": snapshot_id, "n": n}, table=table)
    return [
        {
            "user_idx": None,
            "input_items": [r["item"]],
            "input_pos": None,
            "target_items": r["targets"],
            "target_pos": None,
        }
        for r in fetch_dicts(cur)
    ]


def render(
    task: str,
    row: dict[str, Any],
    labels: dict[int, str],
    sids: dict[int, str],
    titles: dict[int, str],
    n: int,
) -> list[dict[str, str]]:
    """The chat messages of one sample."""
    if task == "sid-to-title":
        item = row["input_items"][0]
        return messages(PROMPTS[task].format(sid=f"[{sids[item]}]"), f"Title: {titles[item]}")
    if task == "title-to-sid":
        item = row["input_items"][0]
        return messages(PROMPTS[task].format(title=titles[item]), f"[{sids[item]}]")
    prompt = PROMPTS[task].format(input="\n".join(labels[i] for i in row["input_items"]), n=n)
    return messages(prompt, "\n".join(labels[i] for i in row["target_items"]))


def cap(rows: list[dict[str, Any]], limit: int, seed: int, task: str) -> list[dict[str, Any]]:
    """At most `limit` samples of a task, drawn with a seed (order kept); 0 keeps all."""
    if not limit or len(rows) <= limit:
        return rows
    salt = int(hashlib.sha256(task.encode()).hexdigest()[:8], 16)
    keep = np.sort(np.random.default_rng([seed, salt]).choice(len(rows), limit, replace=False))
    return [rows[i] for i in keep]


def build_id(dataset: str, params: InstructionParams, sources: dict[str, Any]) -> str:
    blob = json.dumps(
        {"dataset": dataset, "params": asdict(params), "sources": sources}, sort_keys=True
    )
    return f"{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def build_instructions(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    params: InstructionParams,
    sid_version: str,
    cooccurrence_id: int,
    semantic_id: int,
    out_dir: Path | None = None,
) -> InstructionBuild:
    """All samples of a build, in one Parquet file written to a temp name and renamed."""
    labels, sids, titles = item_labels(con, dataset, sid_version, params.titles)
    tasks_rows = user_task_rows(con, dataset, params)
    tasks_rows["collaborative"] = item_task_rows(
        con, "cooccurrence", cooccurrence_id, params.neighbors
    )
    tasks_rows["semantic"] = item_task_rows(
        con, "semantic_neighbors", semantic_id, params.neighbors
    )
    if params.alignment:
        one = [
            {
                "user_idx": None,
                "input_items": [i],
                "input_pos": None,
                "target_items": [i],
                "target_pos": None,
            }
            for i in sorted(labels)
        ]
        tasks_rows["sid-to-title"], tasks_rows["title-to-sid"] = one, one
    sources = {
        "sid_version": sid_version,
        "cooccurrence_snapshot": cooccurrence_id,
        "semantic_snapshot": semantic_id,
    }
    bid = build_id(dataset, params, sources)
    out = (out_dir or stage_dir("instructions", dataset)) / bid
    out.mkdir(parents=True, exist_ok=True)
    path, tmp = out / "train.parquet", out / "train.parquet.tmp"
    counts, available = {}, {}
    with pq.ParquetWriter(tmp, SCHEMA) as writer:
        for task, rows in tasks_rows.items():
            available[task] = len(rows)
            kept = cap(rows, params.max_samples, params.seed, task)
            counts[task] = len(kept)
            writer.write_table(
                pa.Table.from_pylist(
                    [
                        {
                            **r,
                            "task": task,
                            "key": f"{task}:{r['user_idx'] or ''}:{r['input_items'][0]}:"
                            f"{(r['target_pos'] or r['target_items'])[0]}",
                            "messages": render(task, r, labels, sids, titles, params.neighbors),
                            "loss_weight": params.weight(task),
                        }
                        for r in kept
                    ],
                    schema=SCHEMA,
                )
            )
            log.info("%s: %d samples (%d available)", task, len(kept), len(rows))
    os.replace(tmp, path)
    return InstructionBuild(bid, dataset, str(path), counts, available, sources, asdict(params))


def token_lengths(
    path: str, tokenizer: Any, extra_tokens: list[str], per_task: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Token-length quantiles per task under the base model's tokenizer and chat template,
    with the SID tokens added, encoded exactly as training does (measured on up to `per_task`
    samples a task)."""
    tokenizer.add_tokens(extra_tokens)
    table = pq.read_table(path, columns=["task", "messages"])
    tasks = table["task"].to_pylist()
    chats = table["messages"].to_pylist()
    out = {}
    for name in dict.fromkeys(tasks):
        drawn = cap([{"i": i} for i, t in enumerate(tasks) if t == name], per_task, seed, name)
        lengths = np.array([sum(map(len, encode_sample(tokenizer, chats[r["i"]]))) for r in drawn])
        q = np.percentile(lengths, [50, 90, 99])
        out[name] = {
            "measured": len(lengths),
            "p50": float(q[0]),
            "p90": float(q[1]),
            "p99": float(q[2]),
            "max": int(lengths.max()),
        }
    return out


def latest_sources(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    cooccurrence_id: int | None,
    semantic_id: int | None,
    sid_version: str | None,
) -> dict[str, Any]:
    """Fill in the newest all-events snapshots and SID version where none was named."""

    def latest(kind: str) -> int:
        row = run(con, "instructions/latest_snapshot", {"dataset": dataset, "kind": kind})
        if not (found := row.fetchall()):
            raise ValueError(
                f"dataset {dataset!r} has no {kind} snapshot over all events; "
                f"run `hoprec relations --dataset {dataset}` first"
            )
        return int(found[0][0])

    if sid_version is None:
        found = run(con, "instructions/latest_sid_version", {"dataset": dataset}).fetchall()
        if not found:
            raise ValueError(
                f"dataset {dataset!r} has no semantic IDs; run `hoprec sids "
                f"--dataset {dataset}` first"
            )
        sid_version = found[0][0]
    return {
        "sid_version": sid_version,
        "cooccurrence_snapshot": cooccurrence_id or latest("cooccurrence"),
        "semantic_snapshot": semantic_id or latest("semantic"),
    }


# --- Prefect tasks -------------------------------------------------------------------------
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from ..data.warehouse import connect  # noqa: E402


@task(name="instruction-sources", cache_policy=NO_CACHE)
def sources_task(
    warehouse: str,
    dataset: str,
    cooccurrence_id: int | None,
    semantic_id: int | None,
    sid_version: str | None,
) -> dict[str, Any]:
    """Which SIDs and relation snapshots the build reads."""
    with connect(warehouse) as con:
        return latest_sources(con, dataset, cooccurrence_id, semantic_id, sid_version)


@task(name="instruction-data", cache_policy=NO_CACHE)
def instructions_task(
    warehouse: str, dataset: str, params: InstructionParams, sources: dict[str, Any]
) -> dict[str, Any]:
    """Render every task's samples into one Parquet file."""
    with connect(warehouse) as con:
        return asdict(
            build_instructions(
                con,
                dataset,
                params,
                sources["sid_version"],
                sources["cooccurrence_snapshot"],
                sources["semantic_snapshot"],
            )
        )


@task(name="leakage-audit", cache_policy=NO_CACHE)
def leakage_audit_task(warehouse: str, build: dict[str, Any], mode: str) -> dict[str, Any]:
    """Check the build; publish what was checked; fail the flow on any violation."""
    from ..reports import publish
    from .audit import audit_build, audit_report, enforce

    with connect(warehouse) as con:
        result = audit_build(
            con,
            build["dataset"],
            build["path"],
            build["sources"],
            build["params"]["neighbors"],
            mode,  # type: ignore[arg-type]  # the flow checks it
        )
        publish("leakage-audit", audit_report(result), f"leakage audit of {build['build_id']}")
        enforce(result)
        s = build["sources"]
        run(
            con,
            "instructions/register_build",
            {
                "build_id": build["build_id"],
                "dataset": build["dataset"],
                "sid_version": s["sid_version"],
                "cooccurrence_snapshot": s["cooccurrence_snapshot"],
                "semantic_snapshot": s["semantic_snapshot"],
                "params_json": json.dumps(build["params"]),
                "counts_json": json.dumps(build["counts"]),
                "audit_json": json.dumps({"mode": mode, "checks": result.checks}),
                "path": build["path"],
            },
        )
    return {"mode": mode, "passed": True, "checks": result.checks}


@task(name="token-lengths", cache_policy=NO_CACHE)
def token_lengths_task(warehouse: str, build: dict[str, Any], base_model: str) -> dict[str, Any]:
    """Token-length quantiles per task under the base model's tokenizer (+ SID tokens)."""
    from ..sids.store import all_sid_tokens
    from .base import load_tokenizer

    with connect(warehouse) as con:
        extra = all_sid_tokens(con, build["sources"]["sid_version"])
    return token_lengths(build["path"], load_tokenizer(base_model), extra)
