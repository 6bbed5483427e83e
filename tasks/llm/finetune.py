"""LLM fine-tuning on IIRG instruction data: LoRA (peft) with trainable SID-token rows by
default, full fine-tuning as an option.

A plain PyTorch loop rather than `transformers.Trainer`, for three things Trainer does not do as
such: per-sample loss weights with the loss divided by the number of target tokens of the whole
accumulated step (METHODS.md), a data order that is a pure function of (seed, step) so that a
resumed run sees exactly the batches the killed one would have, and logits computed only where
there is a target (the 49k-word LM head is a fifth of the model's compute; the prompt needs
none). Samples are tokenized batch by batch, so a short run on a large build encodes only what
it uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .. import defaults
from ..devices import resolve_device
from .base import DEFAULT_BASE, SID_INITS, init_new_rows, token_modules
from .checkpoints import (
    check_validation,
    load_checkpoint,
    restore_best,
    save_checkpoint,
    save_trained,
    trainable_parameters,
    warm_start,
)
from .ddp import Parallel
from .prompts import PAUSE, PromptForm
from .samples import encode_batch, load_samples, sample_order

log = logging.getLogger("hoprec.training")

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


NON_NEGATIVE = (
    "save_every",
    "select_every",
    "select_users",
    "patience",
    "align_steps",
    "pause_tokens",
)


@dataclass(frozen=True)
class TrainParams:
    """What a fine-tuning run depends on (besides its instruction build and SID tokens)."""

    base: str = DEFAULT_BASE  # asset name, local path or HF id
    mode: Literal["lora", "full"] = "lora"
    tasks: tuple[str, ...] = ()  # instruction tasks trained on; () = all of the build
    max_steps: int = defaults.TRAIN_STEPS  # optimizer steps
    batch_size: int = defaults.BATCH_SIZE  # samples per micro-batch
    grad_accum: int = defaults.GRAD_ACCUM  # micro-batches per optimizer step
    lr: float | None = None  # None: 1e-3 for LoRA, 1e-4 for full fine-tuning
    warmup: float = 0.1  # share of the steps with linear warmup, then cosine
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_len: int = 1024  # longer samples lose prompt tokens from the left
    seed: int = 0
    device: str = defaults.DEVICE  # auto = cuda, else mps, else cpu
    save_every: int = defaults.SAVE_EVERY  # checkpoint every N steps (0 = only at the end)
    log_every: int = defaults.LOG_EVERY
    select_every: int = 0  # validation NDCG@10 every N steps, keep the best weights (0 = off)
    select_users: int = defaults.SELECT_USERS  # validation users it is measured on
    patience: int = 0  # stop after this many checks without a better one (0 = never)
    init_from: str | None = None  # a finished LoRA run to start from (retrain's warm start)
    objective: Literal["generative", "simgr"] = defaults.OBJECTIVE  # type: ignore[assignment]
    temperature: float = defaults.SIMGR_TEMPERATURE  # SimGR (simgr.py); positions: its history
    positions: Literal["all", "prompt"] = defaults.SIMGR_POSITIONS  # type: ignore[assignment]
    align_steps: int = 0  # IIRG's stage 1 first: only the SID rows, on title -> SID (align.py)
    pause_tokens: int = 0  # PauseRec: k learned <pause> tokens before the answer, no loss
    system_prompt: bool = True  # False: an empty system message (prompts.PromptForm)
    devices: int = 1  # data-parallel processes (ddp.py); the trained weights do not depend on it
    sid_init: str = defaults.SID_INIT  # new SID rows: mean (transformers') | spread (base.py)
    simgr_center: bool = False  # SimGR: items centred on the catalogue mean (simgr.item_vectors)

    def __post_init__(self) -> None:
        if self.mode not in ("lora", "full"):
            raise ValueError(f"mode must be 'lora' or 'full', got {self.mode!r}")
        for name in ("max_steps", "batch_size", "grad_accum", "lora_r", "max_len", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.objective not in ("generative", "simgr") or self.positions not in ("all", "prompt"):
            raise ValueError(f"bad objective {self.objective!r} or positions {self.positions!r}")
        from .ddp import check

        check(self)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.sid_init not in SID_INITS:
            raise ValueError(
                f"sid_init must be one of {', '.join(SID_INITS)}, got {self.sid_init!r}"
            )

    @property
    def form(self) -> PromptForm:
        return PromptForm(self.pause_tokens, self.system_prompt)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.mode == "lora" else 1e-4)

    def identity(self) -> dict[str, Any]:
        """The settings that change the trained weights (not where or how it is logged)."""
        d = asdict(self)
        for k in ("device", "devices", "save_every", "log_every"):
            d.pop(k)
        d["lr"] = self.learning_rate
        offs = (
            ("align_steps", 0),
            ("pause_tokens", 0),
            ("system_prompt", True),
            ("sid_init", "mean"),
            ("simgr_center", False),
        )
        for k, off in offs:
            if d[k] == off:  # nor those of runs without a stage 1, pauses or a new prompt
                d.pop(k)
        if self.objective == "generative":  # the ids of runs from before SimGR stay the same
            for k in ("objective", "temperature", "positions", "simgr_center"):
                d.pop(k, None)
        return d


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    resumed_from: int | None
    history: list[dict[str, float]] = field(default_factory=list)  # one row per logged step
    seconds: float = 0.0
    samples: int = 0
    validation: list[dict[str, float]] = field(default_factory=list)  # (step, NDCG@10) checks
    best_step: int | None = None  # the step whose weights were kept (checkpoint selection)
    alignment: list[dict[str, float]] = field(default_factory=list)  # stage 1's loss a step

    @property
    def final_loss(self) -> float | None:
        return self.history[-1]["loss"] if self.history else None


# ------------------------------------------------------------------------------------- loss
def weighted_loss(model: Any, batch: dict[str, torch.Tensor], n_target: int) -> torch.Tensor:
    """Sum of the weighted token cross-entropy of this micro-batch / target tokens of the step.
    Logits are computed only at positions whose next token is a target (`logits_to_keep`)."""
    labels = batch["labels"]
    nxt = labels[:, 1:] != -100  # position t predicts token t + 1
    keep = torch.nonzero(nxt.any(0)).view(-1)  # union over the batch
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        logits_to_keep=keep,
        use_cache=False,
    )
    logits = out.logits.float()  # [B, len(keep), V]
    target = labels[:, keep + 1]
    ce = F.cross_entropy(logits.transpose(1, 2), target.clamp_min(0), reduction="none")
    w = batch["weights"][:, keep + 1] * (target != -100)
    return (ce * w).sum() / max(n_target, 1)


# ----------------------------------------------------------------------------------- models
def token_layers(model: Any) -> list[str]:
    """Names of the layers whose new-token rows must train: the input embeddings, and the output
    layer too when it is not tied to them (most 1B+ bases): otherwise its new rows stay random
    and differ after a reload."""
    names = {id(m): name.rsplit(".", 1)[-1] for name, m in model.named_modules()}
    return [names[id(m)] for m in token_modules(model)]


def prepare_model(params: TrainParams, sid_tokens: Sequence[str]) -> tuple[Any, Any, list[int]]:
    """(model, tokenizer, ids of the SID tokens): the base with the SID tokens added and, for
    LoRA, adapters on every projection plus trainable rows for exactly the new tokens."""
    from .base import load_base_model, load_tokenizer

    tokenizer = load_tokenizer(params.base)
    tokens = list(sid_tokens) + ([PAUSE] if params.pause_tokens else [])  # pause row trains too
    tokenizer.add_tokens(tokens)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    new_ids = tokenizer.convert_tokens_to_ids(tokens)
    torch.manual_seed(params.seed)  # new rows are drawn around the old mean
    model = load_base_model(params.base)
    model.resize_token_embeddings(len(tokenizer))
    init_new_rows(model, min(new_ids), params.sid_init, params.seed)
    if params.mode == "full":
        return model, tokenizer, new_ids
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=list(LORA_TARGETS),
        trainable_token_indices={name: list(new_ids) for name in token_layers(model)},
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg), tokenizer, new_ids


# ---------------------------------------------------------------------------------- training
def train_llm(
    samples_path: str | Path,
    sid_tokens: Sequence[str],
    params: TrainParams,
    out_dir: str | Path,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    validate: Callable[[Any, Any], float] | None = None,
    simgr: Any = None,  # simgr.SimgrInputs: the items' SIDs (+ sequences) of a SimGR run
    alignment: Sequence[Any] = (),  # stage 1's title -> SID messages (align.py)
) -> TrainResult:
    """Fine-tune, checkpointing every `save_every` steps; a rerun on the same `out_dir` resumes
    from its newest checkpoint with the same data order. With `select_every` and a `validate`
    callable ((model, tokenizer) -> validation NDCG@10), the best weights seen are kept and
    saved, and `patience` checks without improvement stop early. The result is saved as a PEFT
    adapter (or a full model) with its tokenizer, and `hoprec_model.json` describing it."""
    from transformers import get_cosine_schedule_with_warmup

    out = Path(out_dir)
    messages, weights, names = load_samples(samples_path, params.tasks)
    if not messages:
        raise ValueError(f"no training samples in {samples_path}")
    par = Parallel.from_env()  # one process, or one rank of `hoprec train --devices N`
    dev = par.device or resolve_device(params.device)
    torch.manual_seed(params.seed)
    model, tokenizer, new_ids = prepare_model(params, sid_tokens)
    if params.init_from:
        warm_start(model, params, list(sid_tokens), new_ids, params.init_from)
    model.to(dev).train()

    def encode_messages(idx: np.ndarray) -> dict[str, torch.Tensor]:
        pad = tokenizer.pad_token_id
        return encode_batch(
            tokenizer,
            [messages[i] for i in idx],
            weights[idx],
            params.max_len,
            pad,
            params.form,
        )

    encode: Callable[[np.ndarray], dict[str, torch.Tensor]] = encode_messages
    step_loss: Callable[..., torch.Tensor] = weighted_loss
    if params.objective == "simgr":  # units replace the messages; one target is one item
        from .simgr import simgr_training

        messages, encode, step_loss = simgr_training(samples_path, params, tokenizer, simgr)
    bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    trained = list(trainable_parameters(model).values())
    opt = torch.optim.AdamW(trained, lr=params.learning_rate, weight_decay=params.weight_decay)
    sched = get_cosine_schedule_with_warmup(
        opt, int(params.warmup * params.max_steps), params.max_steps
    )
    state = load_checkpoint(out, model, opt, sched)
    start = state["step"] if state else 0
    result = TrainResult(
        str(out),
        start,
        start or None,
        list(state["history"]) if state else [],
        samples=len(messages),
        validation=list(state.get("validation", [])) if state else [],
    )
    if params.align_steps and state is None:  # a resumed stage 2 holds the aligned rows
        from .align import align_stage

        result.alignment = align_stage(
            model, tokenizer, new_ids, alignment, params, dev, weighted_loss
        )
    forward = par.wrap(model)  # DDP under several processes; checkpoints use `model`
    select = params.select_every if validate is not None else 0
    per_step = params.batch_size * params.grad_accum
    log.info(
        "training %s (%s) on %d samples for %d steps (%d samples a step) on %s%s%s",
        params.base,
        params.mode,
        len(messages),
        params.max_steps,
        per_step,
        dev,
        " bf16" if bf16 else "",
        f", resuming at step {start}" if start else "",
    )
    started = t0 = time.perf_counter()
    tokens, targets, window = 0, 0, []
    fed, checking = 0, 0.0  # tokens fed and seconds spent validating (the learning curve's axes)
    for step in range(start, params.max_steps):
        order = sample_order(len(messages), params.seed, step * per_step, per_step)
        micro = [encode(par.shard(i)) for i in np.array_split(order, params.grad_accum)]
        n_target = int(par.total(sum(int((b["labels"] != -100).sum()) for b in micro)))
        loss_sum, n_fed = 0.0, 0
        for i, b in enumerate(micro):
            b = {k: v.to(dev) for k, v in b.items()}
            with par.accumulating(forward, last=i == len(micro) - 1):
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = step_loss(forward, b, n_target)
                (loss * par.world).backward()  # DDP averages over ranks: make it the sum
            loss_sum += float(loss.detach())
            n_fed += int(b["attention_mask"].sum())
        loss_sum, n_fed = par.total(loss_sum), int(par.total(n_fed))
        tokens, fed, targets = tokens + n_fed, fed + n_fed, targets + n_target
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        window.append(loss_sum)
        done = step + 1
        if done % params.log_every == 0 or done == params.max_steps:
            secs = time.perf_counter() - t0
            row = {
                "step": done,
                "loss": float(np.mean(window)),
                "lr": sched.get_last_lr()[0],
                "tokens_per_s": tokens / secs,
                "target_tokens_per_s": targets / secs,
            }
            result.history.append(row)
            log.info(
                "step %d/%d loss %.4f lr %.2e %.0f tokens/s (%.0f target tokens/s)",
                done,
                params.max_steps,
                row["loss"],
                row["lr"],
                row["tokens_per_s"],
                row["target_tokens_per_s"],
            )
            if progress is not None:
                progress(done, params.max_steps, row)
            t0, tokens, targets, window = time.perf_counter(), 0, 0, []
        stop = False
        if select and (done % select == 0 or done == params.max_steps):
            assert validate is not None
            v0 = time.perf_counter()
            at = {"seconds": v0 - started - checking, "tokens": fed}  # since this process began
            stop = check_validation(
                validate, model, tokenizer, done, out, result.validation, params.patience, at
            )
            checking += time.perf_counter() - v0
            t0 += time.perf_counter() - v0  # tokens/s counts training time only
        if (
            par.main
            and params.save_every
            and done % params.save_every == 0
            and done < params.max_steps
        ):
            save_checkpoint(out, done, model, opt, sched, result.history, result.validation)
        if stop:
            log.info("no better validation NDCG@10 in %d checks: stopping", params.patience)
            break
    result.steps = done if start < params.max_steps else start
    if result.validation:
        result.best_step = restore_best(out, model)
    result.seconds = time.perf_counter() - started
    if not par.main:  # rank 0 writes the finished run
        par.barrier()
        return result
    save_trained(
        model,
        tokenizer,
        out,
        params,
        {
            **(meta or {}),
            "history": result.history,
            "seconds": result.seconds,
            "samples": len(messages),
            "objective": params.objective,
            "validation": result.validation,
            "best_step": result.best_step,
            "alignment": result.alignment,
        },
    )
    par.barrier()
    return result
