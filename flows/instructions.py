"""The instructions flow: IIRG training data from SIDs and relation snapshots, then the leakage
audit (which fails the flow on any violation), then token-length statistics."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow

from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.llm.instructions import (
    InstructionParams,
    instructions_task,
    leakage_audit_task,
    sources_task,
    token_lengths_task,
)
from hoprec.tasks.llm.train import find_build
from hoprec.tasks.relations.snapshot_tasks import relation_snapshot_task
from hoprec.tasks.relations.snapshots import snapshot_params
from hoprec.tasks.reports import md_table, publish


@flow(name="instructions", flow_run_name="instructions {dataset}")
def instructions_flow(
    dataset: str,
    warehouse: str | None = None,
    history: int = defaults.HISTORY,
    next_item: str = defaults.NEXT_ITEM,
    neighbors: int = defaults.NEIGHBORS,
    alignment: bool = False,
    weight_next: float = 1.0,
    weight_collaborative: float = 1.0,
    weight_semantic: float = 1.0,
    weight_alignment: float = 1.0,
    max_samples: int = 0,
    seed: int = 0,
    audit: str = "test",
    titles: bool = True,
    cooccurrence_snapshot: int | None = None,
    semantic_snapshot: int | None = None,
    sid_version: str | None = None,
    base_model: str = defaults.BASE_MODEL,
    token_stats: bool = True,
) -> dict[str, Any]:
    """Build, audit and describe the IIRG instruction data of `dataset`."""
    params = InstructionParams(
        history=history,
        next_item=next_item,  # type: ignore[arg-type]
        neighbors=neighbors,
        alignment=alignment,
        weight_next=weight_next,
        weight_collaborative=weight_collaborative,
        weight_semantic=weight_semantic,
        weight_alignment=weight_alignment,
        max_samples=max_samples,
        seed=seed,
        titles=titles,
    )
    if audit not in ("test", "validation"):
        raise ValueError(f"--audit must be 'test' or 'validation', got {audit!r}")
    wh = str(resolve(warehouse))
    sources = sources_task(wh, dataset, cooccurrence_snapshot, semantic_snapshot, sid_version)
    build = instructions_task(wh, dataset, params, sources)
    build["audit"] = leakage_audit_task(wh, build, audit)
    if token_stats:
        build["token_lengths"] = token_lengths_task(wh, build, base_model)
    build["report"] = instructions_report(build)
    publish("instructions-report", build["report"], f"instruction data of {dataset}")
    return build


def instructions_report(build: dict[str, Any]) -> str:
    """The markdown a person reads after an instruction build."""
    p, s = build["params"], build["sources"]
    rows = [
        {
            "task": t,
            "samples": n,
            "available": build["available"][t],
            "loss weight": InstructionParams(**p).weight(t),
        }
        for t, n in build["counts"].items()
    ]
    lines = [
        f"# Instruction data `{build['build_id']}`",
        f"SIDs `{s['sid_version']}`, co-occurrence snapshot #{s['cooccurrence_snapshot']}, "
        f"semantic snapshot #{s['semantic_snapshot']}; history {p['history']}, next item "
        f"`{p['next_item']}`, {p['neighbors']} neighbours, cap "
        f"{p['max_samples'] or 'none'}, seed {p['seed']}, "
        f"{'titles' if p.get('titles', True) else 'SIDs only (no titles)'}.",
        "",
        md_table(rows),
    ]
    if build.get("token_lengths"):
        lines += [
            "",
            "## Token lengths (base tokenizer + SID tokens, chat template)",
            md_table([{"task": t, **q} for t, q in build["token_lengths"].items()]),
        ]
    audit = build.get("audit")
    if audit:
        lines += [
            "",
            f"Leakage audit (`{audit['mode']}` mode): "
            f"{'passed' if audit['passed'] else 'FAILED'}, "
            f"{len(audit['checks'])} checks (artifact `leakage-audit`).",
        ]
    lines += ["", f"Parquet: `{build['path']}`"]
    return "\n".join(lines)


def validation_clean_build(
    dataset: str, warehouse: str | None, build: dict[str, Any]
) -> dict[str, Any]:
    """The build a model may be judged on validation with: the same parameters over the strict
    twin of its co-occurrence snapshot (no validation event; next-item samples read train
    events only anyway), audited in validation mode. Made when missing; a build that already
    is one comes back as it is."""
    if build["audit"]["mode"] == "validation":
        return build
    wh = str(resolve(warehouse))
    with connect(wh) as con:
        _, as_of, params = snapshot_params(con, dataset, build["cooccurrence_snapshot"])
    strict = relation_snapshot_task(
        wh, dataset, "cooccurrence", as_of, replace(params, strict=True), build["semantic_snapshot"]
    )
    knobs = {
        k: v for k, v in build["params"].items() if k in InstructionParams.__dataclass_fields__
    }
    clean = instructions_flow(
        dataset=dataset,
        warehouse=warehouse,
        audit="validation",
        sid_version=build["sid_version"],
        cooccurrence_snapshot=strict["snapshot_id"],
        semantic_snapshot=build["semantic_snapshot"],
        token_stats=False,
        **knobs,
    )
    with connect(wh) as con:
        return find_build(con, dataset, clean["build_id"])
