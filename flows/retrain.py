"""The retrain flow: scheduled retraining with champion/challenger, as one parent flow whose
stages are the pipeline's own flows.

    ingest (landing folder) -> prepare -> relations -> SIDs -> instructions -> train challenger
        -> judge champion and challenger on validation -> promote? -> refresh recommendations

Every stage is keyed by its parameters and its inputs' content keys (`tasks/data/ledger.py`),
so a rerun after a crash skips what finished. The challenger is judged on validation only, so it
trains on validation-clean data: strict co-occurrence (no validation event) and next-item
samples from train events, audited in validation mode. Test never decides anything.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow

from hoprec.flows.ingest import ingest_flow
from hoprec.flows.instructions import instructions_flow
from hoprec.flows.prepare import prepare_flow
from hoprec.flows.recommend import recommend_flow
from hoprec.flows.relations import relations_flow
from hoprec.flows.sids import assign_flow, sids_flow
from hoprec.flows.train import train_params
from hoprec.tasks import defaults
from hoprec.tasks.data.ledger import batches_fingerprint, cached_stage
from hoprec.tasks.data.warehouse import connect, fetch_first, resolve, run
from hoprec.tasks.evaluation.report import plot_groups
from hoprec.tasks.llm.train import train_llm_task
from hoprec.tasks.recommenders.registry import registered_sasrec_task
from hoprec.tasks.recommenders.sasrec import SASRecParams
from hoprec.tasks.reports import publish, publish_plot
from hoprec.tasks.serving.promotion import judge_task
from hoprec.tasks.serving.recommend import ModelRef, find_model
from hoprec.tasks.serving.retrain_report import landing_files, retrain_report, training_plot

CHALLENGERS = ("llm", "sasrec")
log = logging.getLogger("hoprec.retrain")


@flow(name="retrain", flow_run_name="retrain {dataset}")
def retrain_flow(
    dataset: str = defaults.DATASET,
    landing: str | None = None,
    format: str | None = None,
    mapping: dict[str, str] | list[str] | None = None,
    ts_unit: str | None = None,
    delim: str | None = None,
    encoding: str | None = None,
    warehouse: str | None = None,
    challenger: str = defaults.RETRAIN_CHALLENGER,
    margin: float = defaults.RETRAIN_MARGIN,
    eval_users: int = defaults.RETRAIN_EVAL_USERS,
    base: str = defaults.BASE_MODEL,
    steps: int = defaults.RETRAIN_STEPS,
    batch_size: int = defaults.BATCH_SIZE,
    sasrec_steps: int = defaults.COMPARE_SASREC_STEPS,
    history: int = defaults.DEMO_HISTORY,
    titles: bool = False,
    seed: int = 0,
    warm_start: bool = False,
    k: int = defaults.RECOMMEND_K,
    recommend: bool = True,
    device: str = defaults.DEVICE,
) -> dict[str, Any]:
    """Retrain `dataset` on what is new and promote the challenger when it wins on validation.
    `landing`: a folder whose files (of `format`) are ingested first (files seen before are
    skipped; `mapping`, `ts_unit`, `delim`, `encoding` as for `hoprec ingest`); `format` alone
    ingests its embedded copy (ml-100k). `challenger`: an LLM
    fine-tune (`steps` LoRA steps on `base`; `warm_start`: from the champion's adapter when it
    is a LoRA run on the same base and SID tokens, else from scratch, said in the report) or
    SASRec (`sasrec_steps`)."""
    if challenger not in CHALLENGERS:
        raise ValueError(f"--challenger must be one of {CHALLENGERS}, got {challenger!r}")
    if margin < 0:
        raise ValueError(f"--margin must be >= 0, got {margin}")
    files = landing_files(landing) if landing else []
    if landing and not format:
        raise ValueError("--landing needs --format (what the landing files are)")
    wh = str(resolve(warehouse))
    ws: dict[str, Any] = {"dataset": dataset, "warehouse": warehouse}
    st: dict[str, dict[str, Any]] = {}
    source: dict[str, Any] = {
        "mapping": mapping,
        "ts_unit": ts_unit,
        "delim": delim,
        "encoding": encoding,
    }

    def ingest() -> dict[str, Any]:
        out = ingest_flow(format=str(format), paths=files or None, **source, **ws)
        return {"report": out["report"], "failed": out.get("failed") or []}

    if format:
        st["ingest"] = cached_stage(
            wh, dataset, "ingest", {"files": files, "format": format}, ingest
        )
    loaded = batches_fingerprint(wh, dataset)
    if loaded == "none":
        raise ValueError(
            f"dataset {dataset!r} has no loaded data: pass --landing DIR --format FMT "
            "(or --format ml-100k for the embedded copy)"
        )

    def prepare() -> dict[str, Any]:
        out = prepare_flow(**ws)
        return {"report": out["report"], "fingerprint": out["stats"].get("fingerprint")}

    st["prepare"] = cached_stage(wh, dataset, "prepare", {"batches": loaded}, prepare)
    data = st["prepare"]["fingerprint"]

    def relations() -> dict[str, Any]:
        out = relations_flow(strict=True, **ws)  # as of now, no validation event
        return {"report": out["report"], "ids": out["ids"]}

    st["relations"] = cached_stage(wh, dataset, "relations", {"data": data}, relations)
    snaps = st["relations"]["ids"]
    st["sids"] = cached_stage(wh, dataset, "sids", {"data": data}, lambda: _sids(dataset, ws))
    sid_version = st["sids"]["sid_version"]

    if challenger == "llm":
        knobs: dict[str, Any] = {"history": history, "titles": titles, "seed": seed}

        def instructions() -> dict[str, Any]:
            out = instructions_flow(
                audit="validation",
                sid_version=sid_version,
                cooccurrence_snapshot=snaps["cooccurrence"],
                semantic_snapshot=snaps["semantic"],
                token_stats=False,
                **knobs,
                **ws,
            )
            return {"report": out["report"], "build_id": out["build_id"]}

        inputs = {"sids": sid_version, "snapshots": snaps, **knobs}
        st["instructions"] = cached_stage(wh, dataset, "instructions", inputs, instructions)
        build_id = st["instructions"]["build_id"]
        with connect(wh) as con:
            champion = find_model(con, dataset, champion=True)
        init = _warm_from(champion) if warm_start else None

        def train(init: str | None = init) -> dict[str, Any]:
            params = train_params(
                base, "lora", [], steps, batch_size, seed=seed, device=device, init_from=init,
                save_every=max(10, steps // 4), log_every=max(1, steps // 10),
            )  # fmt: skip
            try:
                out = train_llm_task(wh, dataset, build_id, params)
            except ValueError as exc:
                if init is None or "cannot warm-start" not in str(exc):
                    raise
                log.warning("%s; training from scratch", exc)
                return {**train(None), "warm_start": f"not used: {exc}"}
            keep = ("model_id", "kind", "path", "history", "seconds")
            return {**{k: out[k] for k in keep}, "warm_start": init}

        inputs = {"build": build_id, "steps": steps, "batch": batch_size, "base": base,
                  "seed": seed, "warm": init}  # fmt: skip
        st["train"] = cached_stage(wh, dataset, "train", inputs, train)
    else:
        sparams = SASRecParams(max_steps=sasrec_steps, seed=seed, device=device)

        def train_sasrec() -> dict[str, Any]:
            out = registered_sasrec_task(wh, dataset, sparams)
            return {k: out[k] for k in ("model_id", "kind", "path", "seconds")}

        st["train"] = cached_stage(
            wh, dataset, "train", {"data": data, "sasrec": repr(sparams)}, train_sasrec
        )
    new = ModelRef(st["train"]["model_id"], st["train"]["kind"], st["train"]["path"])
    with connect(wh) as con:
        champion = find_model(con, dataset, champion=True)
    llm = {"decode": defaults.DECODE, "num_beams": defaults.NUM_BEAMS, "device": device}

    def judge() -> dict[str, Any]:
        return judge_task(
            wh, dataset, new, champion, snaps, eval_users, margin, history, sid_version, llm
        )

    inputs = {
        "challenger": new.model_id,
        "champion": champion.model_id if champion else None,
        "users": eval_users,
        "margin": margin,
        "data": data,
    }
    st["judge"] = cached_stage(wh, dataset, "judge", inputs, judge)
    if recommend:
        with connect(wh) as con:
            now = find_model(con, dataset, champion=True)
        if now is not None:

            def recs() -> dict[str, Any]:
                out = recommend_flow(model=now.model_id, k=k, device=device, **ws)
                return {key: out[key] for key in ("report", "users", "rows", "users_per_s")}

            inputs = {"model": now.model_id, "k": k, "data": data}
            st["recommend"] = cached_stage(wh, dataset, "recommend", inputs, recs)
    out: dict[str, Any] = {"dataset": dataset, "stages": st, "challenger": challenger}
    out["decision"] = st["judge"]["decision"]
    out["pngs"] = {
        "training": training_plot(dataset, st["train"]),
        "groups": plot_groups([{"eval": st["judge"]["eval"]}], f"{dataset} validation: NDCG@10"),
    }
    out["report"] = retrain_report(out)
    publish("retrain-report", out["report"], f"retrain of {dataset}")
    for name, png in out["pngs"].items():
        if png:
            publish_plot(f"retrain-{name}-plot", png, f"retrain of {dataset}: {name}")
    return out


def _warm_from(champion: ModelRef | None) -> str | None:
    """The champion's run folder when it is an LLM run (LoRA compatibility is checked when
    training starts)."""
    if champion is None or champion.kind != "llm-lora" or champion.path is None:
        return None
    return str(Path(champion.path).parent)


def _sids(dataset: str, ws: dict[str, Any]) -> dict[str, Any]:
    """The current SID version with new items given codes, or a first version."""
    with connect(str(resolve(ws["warehouse"]))) as con:
        row = fetch_first(run(con, "instructions/latest_sid_version", {"dataset": dataset}))
    if row is None:
        out = sids_flow(**ws)
        return {"report": out["report"], "sid_version": out["sid_version"], "assigned": None}
    out = assign_flow(sid_version=row[0], **ws)
    return {"report": out["report"], "sid_version": row[0], "assigned": out["assigned"]}
