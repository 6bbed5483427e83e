"""A fine-tuning run on disk: resumable checkpoints while it trains, and the finished run
(adapter or full model + tokenizer + `hoprec_model.json`) as a user loads it.

Checkpoints hold the trainable weights, optimizer, schedule, RNG and the log, written to a
temporary name and renamed; the meta file is written last, so its presence marks a finished run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..devices import resolve_device

log = logging.getLogger("hoprec.training")

META = "hoprec_model.json"


def trainable_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    """The parameters a run trains (LoRA + SID rows, or all): what a checkpoint holds."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*.pt"))


def save_checkpoint(
    out: Path,
    step: int,
    model: Any,
    opt: Any,
    sched: Any,
    history: list[dict[str, float]],
    validation: list[dict[str, float]] | None = None,
    keep: int = 2,
) -> Path:
    """Trainable weights, optimizer, schedule, RNG and the log so far; written to a temporary
    name and renamed, so a kill mid-write leaves the previous checkpoint whole."""
    path = out / "checkpoints" / f"step-{step:07d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "trainable": {n: p.detach().cpu() for n, p in trainable_parameters(model).items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": torch.get_rng_state(),
        "history": history,
        "validation": list(validation or []),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in _checkpoints(out)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(out: Path, model: Any, opt: Any, sched: Any) -> dict[str, Any] | None:
    """Restore the newest readable checkpoint; None when there is none."""
    for path in reversed(_checkpoints(out)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn file: fall back to the one before
            log.warning("checkpoint %s unreadable (%s); trying an older one", path.name, exc)
            continue
        params = trainable_parameters(model)
        missing = set(params) ^ set(state["trainable"])
        if missing:
            raise ValueError(f"checkpoint {path} does not match the model: {sorted(missing)[:3]}")
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(state["trainable"][n])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        return state
    return None


def _best_path(out: Path) -> Path:
    return out / "checkpoints" / "best.pt"


def save_best(out: Path, model: Any, step: int) -> None:
    """The trainable weights of the best validation check so far (tmp + rename)."""
    path = _best_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {n: p.detach().cpu().clone() for n, p in trainable_parameters(model).items()}
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "trainable": weights}, tmp)
    os.replace(tmp, path)


def restore_best(out: Path, model: Any) -> int | None:
    """Load the best validation weights back into the model; their step (None without any)."""
    path = _best_path(out)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    with torch.no_grad():
        for n, p in trainable_parameters(model).items():
            p.copy_(state["trainable"][n])
    return int(state["step"])


def check_validation(
    validate: Callable[[Any, Any], float],
    model: Any,
    tokenizer: Any,
    step: int,
    out: Path,
    checks: list[dict[str, float]],
    patience: int,
    at: dict[str, float] | None = None,
) -> bool:
    """One validation check of checkpoint selection: append it to `checks`, keep the weights
    when they are the best so far; True when `patience` checks have passed without a better one
    (stop early)."""
    score = float(validate(model, tokenizer))
    best = max((v["ndcg@10"] for v in checks), default=float("-inf"))
    checks.append({"step": step, "ndcg@10": score, **(at or {})})  # at: training s, tokens
    log.info("step %d: validation NDCG@10 %.4f (best before %.4f)", step, score, best)
    if score > best:
        save_best(out, model, step)
        return False
    scores = [v["ndcg@10"] for v in checks]
    return bool(patience) and len(scores) - 1 - scores.index(max(scores)) >= patience


def is_trained(out_dir: str | Path) -> bool:
    """A finished run: its meta file exists."""
    return (Path(out_dir) / META).exists()


def load_trained(
    out_dir: str | Path, device: str = "auto", merge: bool = False
) -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, tokenizer, meta) of a finished run: the base resized to the saved
    tokenizer, then `PeftModel.from_pretrained` (LoRA) - the standard way a user loads it.
    `merge` folds the adapter into the weights: a plain model, several times faster to decode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    if not is_trained(out):
        raise FileNotFoundError(f"no finished training run in {out} (missing {META})")
    meta = json.loads((out / META).read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(out / "model"))
    model: Any
    if meta["mode"] == "full":
        model = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    else:
        from peft import PeftModel

        from .base import load_base_model

        base = load_base_model(meta["base"])
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = PeftModel.from_pretrained(base, str(out / "model"))
        if merge:
            model = model.merge_and_unload()
    return model.to(resolve_device(device)).eval(), tokenizer, meta


def warm_start(
    model: Any, params: Any, sid_tokens: list[str], new_ids: list[int], run_dir: str | Path
) -> None:
    """Load a finished LoRA run's adapter and SID rows into a fresh LoRA model (retrain's warm
    start from the champion). It must share the base, the LoRA shape and the SID tokens at the
    same ids, else the weights would mean something else: that is a one-line error."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    out = Path(run_dir)
    if not is_trained(out):
        raise FileNotFoundError(f"cannot warm-start from {out}: no finished training run there")
    meta = json.loads((out / META).read_text())
    theirs = {"pause_tokens": 0, **meta.get("params", {})}
    mine = {
        "mode": params.mode,
        "base": params.base,
        "lora_r": params.lora_r,
        "pause_tokens": params.pause_tokens,
    }
    differ = [k for k, v in mine.items() if theirs.get(k, meta.get(k)) != v]
    if differ:
        raise ValueError(f"cannot warm-start from {out}: it differs in {', '.join(differ)}")
    tok = AutoTokenizer.from_pretrained(str(out / "model"))
    ours = list(new_ids)[: len(sid_tokens)]  # a <pause> row may follow the SID rows
    if len(tok) != max(new_ids) + 1 or tok.convert_tokens_to_ids(sid_tokens) != ours:
        raise ValueError(f"cannot warm-start from {out}: its SID tokens differ")
    weights = load_file(str(out / "model" / "adapter_model.safetensors"))
    result: Any = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys:
        bad = result.unexpected_keys[:3]
        raise ValueError(f"cannot warm-start from {out}: unexpected weights {bad}")
    log.info("warm start from %s (%d tensors)", out, len(weights))


def save_trained(model: Any, tokenizer: Any, out: Path, params: Any, meta: dict[str, Any]) -> None:
    """The adapter (or full model) + tokenizer under out/model, then the meta file, last: its
    presence marks a finished run."""
    from .base import base_source

    target = out / "model"
    if params.mode == "lora":  # new rows live in the token adapter: no 100 MB embedding copy
        model.save_pretrained(str(target), save_embedding_layers=False)
    else:
        model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    info = {
        "params": params.identity(),
        "mode": params.mode,
        "base": params.base,
        "base_source": base_source(params.base),
        "vocab_size": len(tokenizer),
        **meta,
    }
    (out / META).write_text(json.dumps(info, indent=1, default=str))
