"""The train flow: fine-tune the base LLM on an audited instruction build (LoRA by default)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow

from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.llm.finetune import TrainParams
from hoprec.tasks.llm.train import train_llm_task
from hoprec.tasks.reports import md_table, publish


def train_params(
    base: str = defaults.BASE_MODEL,
    mode: str = "lora",
    tasks: list[str] | None = None,
    steps: int = defaults.TRAIN_STEPS,
    batch_size: int = defaults.BATCH_SIZE,
    grad_accum: int = defaults.GRAD_ACCUM,
    lr: float | None = None,
    seed: int = 0,
    device: str = defaults.DEVICE,
    save_every: int = defaults.SAVE_EVERY,
    log_every: int = defaults.LOG_EVERY,
    **extra: Any,
) -> TrainParams:
    """TrainParams from flow/CLI arguments (one place, so `train` and `compare` agree)."""
    return TrainParams(
        base=base,
        mode=mode,  # type: ignore[arg-type]  # TrainParams checks it
        tasks=tuple(tasks or ()),
        max_steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lr=lr,
        seed=seed,
        device=device,
        save_every=save_every,
        log_every=log_every,
        **extra,
    )


@flow(name="train", flow_run_name="train {dataset}")
def train_flow(
    dataset: str,
    warehouse: str | None = None,
    build_id: str | None = None,
    base: str = defaults.BASE_MODEL,
    mode: str = "lora",
    tasks: list[str] | None = None,
    steps: int = defaults.TRAIN_STEPS,
    batch_size: int = defaults.BATCH_SIZE,
    grad_accum: int = defaults.GRAD_ACCUM,
    lr: float | None = None,
    seed: int = 0,
    device: str = defaults.DEVICE,
    save_every: int = defaults.SAVE_EVERY,
    log_every: int = defaults.LOG_EVERY,
    select_every: int = 0,
    select_users: int = defaults.SELECT_USERS,
    patience: int = 0,
    objective: str = defaults.OBJECTIVE,
    temperature: float = defaults.SIMGR_TEMPERATURE,
    simgr_positions: str = defaults.SIMGR_POSITIONS,
    temperature_grid: list[float] | None = None,
    align_steps: int = 0,
    pause_tokens: int = 0,
    devices: int = 1,
    system_prompt: bool = True,
    sid_init: str = defaults.SID_INIT,
    simgr_center: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Fine-tune (or resume, or reuse) a model on an instruction build and register it."""
    params = train_params(
        base,
        mode,
        tasks,
        steps,
        batch_size,
        grad_accum,
        lr,
        seed,
        device,
        save_every,
        log_every,
        select_every=select_every,
        select_users=select_users,
        patience=patience,
        objective=objective,
        temperature=temperature,
        positions=simgr_positions,
        align_steps=align_steps,
        pause_tokens=pause_tokens,
        devices=devices,
        system_prompt=system_prompt,
        sid_init=sid_init,
        simgr_center=simgr_center,
    )
    wh = str(resolve(warehouse))
    if temperature_grid:
        result = _temperature_grid(wh, dataset, build_id, params, force, temperature_grid)
    else:
        result = train_llm_task(wh, dataset, build_id, params, force)
        result["objective"] = _objective(params)
    result["report"] = train_report(result)
    publish("train-report", result["report"], f"fine-tuning on {dataset}")
    return result


def train_report(result: dict[str, Any]) -> str:
    """What was trained on what, the loss curve (logged steps) and where the adapter is."""
    hist = result["history"]
    shown = hist if len(hist) <= 12 else hist[:: max(1, len(hist) // 10)] + hist[-1:]
    rows = [
        {
            "step": int(r["step"]),
            "loss": r["loss"],
            "lr": f"{r['lr']:.2e}",
            "tokens/s": round(r["tokens_per_s"]),
            "target tokens/s": round(r["target_tokens_per_s"]),
        }
        for r in dict((int(r["step"]), r) for r in shown).values()
    ]
    secs = result.get("seconds")
    resumed = result.get("resumed_from")
    lines = [
        f"# Fine-tuned `{result['model_id']}`",
        f"{result['kind']} on `{result['base']}`, instruction build `{result['build_id']}` "
        f"(SIDs `{result['sid_version']}`), tasks {result['tasks']}; "
        f"objective {result.get('objective', 'generative')}; {result['steps']} steps"
        + (f" in {secs:.0f} s" if secs else "")
        + (" (already trained: reused)" if result.get("reused") else "")
        + (f", resumed from step {resumed}" if resumed else "")
        + ".",
        "",
        md_table(rows),
        "",
        *_alignment_lines(result.get("alignment") or []),
        *_selection_lines(result),
        *_grid_lines(result),
        f"Adapter + tokenizer: `{result['path']}`. Load it with `transformers` + `peft`: "
        "the base model resized to the saved tokenizer, then "
        "`PeftModel.from_pretrained(base, path)` (see README).",
    ]
    return "\n".join(lines)


def _temperature_grid(
    warehouse: str,
    dataset: str,
    build_id: str | None,
    params: TrainParams,
    force: bool,
    grid: list[float],
) -> dict[str, Any]:
    """SimGR's temperature chosen on validation: one run a value, each checked on validation
    (its checkpoint selection, at least after its last step); the best run is the result."""
    if params.objective != "simgr":
        raise ValueError("a temperature grid needs --objective simgr")
    runs = []
    for t in grid:
        p = replace(params, temperature=t, select_every=params.select_every or params.max_steps)
        r = train_llm_task(warehouse, dataset, build_id, p, force)
        best = max((c["ndcg@10"] for c in r["validation"]), default=float("-inf"))
        runs.append((best, t, r))
    _, t, result = max(runs, key=lambda run: run[0])
    result["objective"] = _objective(replace(params, temperature=t)) + ", best of the grid"
    result["grid"] = [
        {"temperature": t, "valid NDCG@10": v, "model": r["model_id"]} for v, t, r in runs
    ]
    return result


def _grid_lines(result: dict[str, Any]) -> list[str]:
    """The temperature grid's validation scores (SimGR)."""
    if not result.get("grid"):
        return []
    return ["## SimGR temperature on validation", md_table(result["grid"]), ""]


def _objective(params: TrainParams) -> str:
    """The objective as the report names it (SimGR: its history form and temperature)."""
    if params.objective != "simgr":
        pauses = params.pause_tokens
        return "generative (SID tokens)" + (
            f", {pauses} learned <pause> token{'s' * (pauses > 1)} before the answer (PauseRec)"
            if pauses
            else ""
        )
    return f"SimGR (cosine softmax, T = {params.temperature}, {params.positions} positions)"


def _alignment_lines(history: list[dict[str, float]]) -> list[str]:
    """Stage 1 (IIRG's alignment of the SID rows), when the run had one."""
    if not history:
        return []
    return [
        f"Stage 1, SID rows alone on title -> SID: {len(history)} steps, loss "
        f"{history[0]['loss']:.3f} -> {history[-1]['loss']:.3f}.",
        "",
    ]


def _selection_lines(result: dict[str, Any]) -> list[str]:
    """The validation checks of checkpoint selection, and which step's weights were kept."""
    checks = result.get("validation") or []
    if not checks:
        return []
    return [
        f"## Checkpoint selection on validation: kept step {result.get('best_step')}",
        md_table([{"step": int(c["step"]), "valid NDCG@10": c["ndcg@10"]} for c in checks]),
        "",
    ]
