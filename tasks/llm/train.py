"""Warehouse side of LLM fine-tuning: which build a run trains on, its model id and output
folder, the Prefect training task (tag `gpu`) with its progress artifact, and the `models` row."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from .. import defaults
from ..data.warehouse import connect, fetch_dicts, run, transaction
from ..settings import checked_name, stage_dir
from .align import alignment_samples
from .checkpoints import is_trained
from .ddp import launch
from .finetune import TrainParams, train_llm

log = logging.getLogger("hoprec.training")


def find_build(
    con: duckdb.DuckDBPyConnection, dataset: str, build_id: str | None = None
) -> dict[str, Any]:
    """The audited instruction build named (else the newest of `dataset`)."""
    rows = fetch_dicts(run(con, "train/find_build", {"dataset": dataset, "build_id": build_id}))
    if not rows:
        what = f"build {build_id!r}" if build_id else "instruction build"
        raise ValueError(
            f"no audited {what} for dataset {dataset!r}; run "
            f"`hoprec instructions --dataset {dataset}` first"
        )
    row = rows[0]
    return {
        **row,
        "params": json.loads(row.pop("params_json")),
        "counts": json.loads(row.pop("counts_json")),
        "audit": json.loads(row.pop("audit_json")),
    }


def validator(
    con: duckdb.DuckDBPyConnection, dataset: str, build: dict[str, Any], params: TrainParams
) -> Any:
    """(model, tokenizer) -> validation NDCG@10 on a seeded sample of validation users: the
    build's next-item prompt, trie-constrained beam search, history excluded. What checkpoint
    selection reads; the test split is never touched."""
    from ..data.sequences import eval_rows, user_histories
    from ..devices import resolve_device
    from .decoding import constrained_beam_search
    from .prompts import history_prompts, item_labels
    from .scoring import item_trie

    _, hists, targets = user_histories(con, dataset, "valid")
    rows = eval_rows(len(targets), params.select_users, params.seed)
    hists, targets = [hists[i] for i in rows], targets[rows]
    if params.objective == "simgr":  # full-catalogue cosine ranking, NDCG@10 of its top 10
        from .simgr_scoring import simgr_validator

        return simgr_validator(con, dataset, build, params, hists, targets)
    history = build["params"]["history"]
    labels, sids, _ = item_labels(
        con, dataset, build["sid_version"], build["params"].get("titles", True)
    )
    device = str(resolve_device(params.device))

    def validate(model: Any, tokenizer: Any) -> float:
        items, _ = constrained_beam_search(
            model,
            history_prompts(tokenizer, hists, labels, history, params.form),
            item_trie(tokenizer, sids),
            num_beams=defaults.NUM_BEAMS,
            top_k=10,
            exclude=[set(map(int, h)) for h in hists],
            device=device,
        )
        hit = items == targets[:, None]
        discount = 1.0 / np.log2(np.arange(2, items.shape[1] + 2))
        gains = np.where(hit, discount[None, :], 0.0).sum(axis=1)
        return float(gains.mean()) if len(gains) else 0.0

    return validate


def simgr_inputs(
    con: duckdb.DuckDBPyConnection, dataset: str, build: dict[str, Any], params: TrainParams
) -> Any:
    """A SimGR run's items' SIDs and the users' train-split sequences (the same training events
    as the build's next-item samples: validation-clean); None for the generative objective."""
    if params.objective != "simgr":
        return None
    from ..data.sequences import train_sequences
    from ..sids.store import load_sids
    from .simgr import SimgrInputs, build_window

    seqs = train_sequences(con, dataset) if params.positions == "all" else []
    sids = load_sids(con, dataset, build["sid_version"])
    return SimgrInputs(sids, seqs, build_window(build["params"]))


def tasks_tag(tasks: tuple[str, ...]) -> str:
    return "+".join(tasks) if tasks else "all"


def model_id(dataset: str, build_id: str, params: TrainParams) -> str:
    """Same build and training settings -> same id (and output folder): what makes a rerun
    resume or reuse instead of starting over."""
    blob = json.dumps({"build": build_id, "params": params.identity()}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
    kind = params.mode if params.objective == "generative" else f"simgr-{params.mode}"
    return f"{dataset}-{kind}-{tasks_tag(params.tasks)}-s{params.seed}-{digest}"


def model_dir(dataset: str, mid: str) -> Path:
    return stage_dir("models", dataset) / checked_name(mid, "model")


def register_model(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    with transaction(con):
        run(con, "train/register_model", row)


def promote(con: duckdb.DuckDBPyConnection, dataset: str, mid: str) -> None:
    with transaction(con):
        run(con, "train/promote", {"dataset": dataset, "model_id": mid})


@task(
    name="fine-tune-llm",
    task_run_name="fine-tune {params.mode} ({params.max_steps} steps, seed {params.seed})",
    tags=["gpu"],
    cache_policy=NO_CACHE,
)
def train_llm_task(
    warehouse: str, dataset: str, build_id: str | None, params: TrainParams, force: bool = False
) -> dict[str, Any]:
    """Fine-tune on an audited build (resuming an interrupted run of the same settings), keep a
    Prefect progress artifact current, and register the model in `models`."""
    import shutil

    from ..sids.store import all_sid_tokens

    with connect(warehouse) as con:
        build = find_build(con, dataset, build_id)
        sid_tokens = all_sid_tokens(con, build["sid_version"])
        validate = validator(con, dataset, build, params) if params.select_every else None
        simgr = simgr_inputs(con, dataset, build, params)
        align = alignment_samples(con, dataset, build["sid_version"]) if params.align_steps else ()
    mid = model_id(dataset, build["build_id"], params)
    out = model_dir(dataset, mid)
    if force:
        shutil.rmtree(out, ignore_errors=True)
    run_meta = {
        "model_id": mid,
        "dataset": dataset,
        "build_id": build["build_id"],
        "sid_version": build["sid_version"],
        "build_params": build["params"],
        **({"simgr_window": simgr.window} if simgr else {}),
    }
    launched = params.devices > 1 and not is_trained(out)
    if launched:  # N processes write the run; it is then read back like a finished one
        launch(build["path"], sid_tokens, params, out, run_meta, align)
    if is_trained(out):
        if not launched:
            log.info("model %s already trained: %s (use --force to retrain)", mid, out)
        meta = json.loads((out / "hoprec_model.json").read_text())
        history, seconds, resumed = meta["history"], meta.get("seconds"), None
        reused = not launched
        checks, best_step = meta.get("validation", []), meta.get("best_step")
        alignment = meta.get("alignment", [])
    else:
        update = _progress_reporter(mid, params.max_steps)
        result = train_llm(
            build["path"],
            sid_tokens,
            params,
            out,
            meta=run_meta,
            progress=update,
            validate=validate,
            simgr=simgr,
            alignment=align,
        )
        history, seconds, resumed = result.history, result.seconds, result.resumed_from
        checks, best_step, reused = result.validation, result.best_step, False
        alignment = result.alignment
    row = {
        "model_id": mid,
        "dataset": dataset,
        "kind": f"llm-{params.mode}",  # SimGR runs too: score_trained reads the objective
        "base": params.base,
        "build_id": build["build_id"],
        "sid_version": build["sid_version"],
        "tasks": ",".join(params.tasks) or ",".join(build["counts"]),
        "params_json": json.dumps(params.identity(), sort_keys=True),
        "steps": params.max_steps,
        "final_loss": history[-1]["loss"] if history else None,
        "seconds": seconds,
        "path": str(out / "model"),
    }
    with connect(warehouse) as con:
        register_model(con, row)
    return {
        **row,
        "history": history,
        "resumed_from": resumed,
        "reused": reused,
        "out_dir": str(out),
        "validation": checks,
        "best_step": best_step,
        "alignment": alignment,
    }


def _progress_reporter(mid: str, total: int) -> Any:
    """A callback that moves a Prefect progress artifact (when in a run) and logs."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is None:
        return None
    art: Any = create_progress_artifact(0.0, description=f"fine-tuning {mid}: steps done (%)")

    def update(step: int, _total: int, row: dict[str, float]) -> None:
        update_progress_artifact(
            art,
            100.0 * step / total,
            description=f"fine-tuning {mid}: step {step}/{total}, loss "
            f"{row['loss']:.3f}, {row['tokens_per_s']:.0f} tokens/s",
        )

    return update
