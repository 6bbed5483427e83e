"""Stage 1 of IIRG's training: align the new SID tokens with the LLM before fine-tuning.

IIRG (snap-research/IIRG, `sid_based/train_alignment.py` with `FreezeOldEmbeddingsCallback`)
first trains on title -> SID samples with the whole backbone frozen and a gradient hook that
zeroes every embedding row except the new tokens' (input embeddings, and the LM head when it is
not tied): the SID tokens start stage 2 meaning something instead of a random draw around the
mean. Its settings: AdamW lr 1e-3, betas (0.9, 0.95), cosine with 5% warmup, clip 1.0.

hoprec does the same for a number of steps (`--align-steps`), on every item of the build's SID
version, with the build's own `title-to-sid` wording and answer (`[<sid>]`), so stage 2 sees the
tokens in the form it will train on. For a LoRA run the new rows are peft's trainable-token
deltas: stage 1 trains those alone and leaves the adapters at their initial values; for a full
run it is IIRG's hook on the embedding matrices. A rerun that resumes stage 2 from a checkpoint
skips stage 1 (the checkpoint already holds the aligned rows).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import numpy as np
import torch

from .prompts import PROMPTS, item_labels, messages

log = logging.getLogger("hoprec.training")

LR, BETAS, WARMUP = 1e-3, (0.9, 0.95), 0.05  # IIRG's step4 / alignment settings


def alignment_samples(
    con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str
) -> list[list[dict[str, str]]]:
    """One title -> SID sample per item of the SID version (the build's `title-to-sid` task)."""
    _, sids, titles = item_labels(con, dataset, sid_version)
    return [
        messages(PROMPTS["title-to-sid"].format(title=titles[i]), f"[{sids[i]}]")
        for i in sorted(sids)
    ]


def _row_mask_hook(n_rows: int, new_ids: torch.Tensor) -> Any:
    keep = torch.zeros(n_rows, dtype=torch.bool)
    keep[new_ids] = True

    def hook(grad: torch.Tensor) -> torch.Tensor:  # IIRG: grad[:-n_new] = 0
        return grad * keep.to(grad.device).unsqueeze(-1).to(grad.dtype)

    return hook


@contextlib.contextmanager
def only_new_rows(model: Any, new_ids: Sequence[int]) -> Iterator[list[torch.nn.Parameter]]:
    """Within the block, only the new tokens' rows can change; yields the parameters to optimise.
    Everything else is set back to its previous `requires_grad` on exit."""
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    hooks = []
    try:
        deltas = [p for n, p in model.named_parameters() if "trainable_tokens_delta" in n]
        for p in model.parameters():
            p.requires_grad_(False)
        if deltas:  # LoRA: peft keeps the new rows as separate deltas
            params = deltas
        else:  # full fine-tuning: IIRG's hook on the embedding matrices
            inp, out = model.get_input_embeddings(), model.get_output_embeddings()
            params = [inp.weight]
            if out is not None and out.weight is not inp.weight:
                params.append(out.weight)
            ids = torch.as_tensor(list(new_ids), dtype=torch.long)
            for w in params:
                w.requires_grad_(True)
                hooks.append(w.register_hook(_row_mask_hook(w.shape[0], ids)))
        for p in params:
            p.requires_grad_(True)
        yield params
    finally:
        for h in hooks:
            h.remove()
        for n, p in model.named_parameters():
            p.requires_grad_(before[n])


def align(
    model: Any,
    samples: Sequence[Sequence[dict[str, str]]],
    encode: Any,
    loss_fn: Any,
    new_ids: Sequence[int],
    steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> list[dict[str, float]]:
    """Train the new token rows for `steps` steps on `samples` (each step `batch_size` of them,
    a seeded shuffle); returns the loss of every step. `encode(messages, weights)` -> batch and
    `loss_fn(model, batch, n_target)` are stage 2's, so both stages see one encoding."""
    from transformers import get_cosine_schedule_with_warmup

    history = []
    with only_new_rows(model, new_ids) as params:
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=1e-8, weight_decay=0.0)
        sched = get_cosine_schedule_with_warmup(opt, int(WARMUP * steps), steps)
        rng = np.random.default_rng([seed, 1])
        epochs = -(-steps * batch_size // len(samples))
        order = np.concatenate([rng.permutation(len(samples)) for _ in range(epochs)])
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            batch = encode([samples[i] for i in idx], np.ones(len(idx), np.float32))
            n_target = int((batch["labels"] != -100).sum())
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = loss_fn(model, batch, n_target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            history.append({"step": step + 1, "loss": float(loss.detach())})
            if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
                log.info("alignment step %d/%d loss %.4f", step + 1, steps, history[-1]["loss"])
    return history


def align_stage(
    model: Any,
    tokenizer: Any,
    new_ids: Sequence[int],
    samples: Sequence[Any],
    params: Any,
    device: torch.device,
    loss_fn: Any,
) -> list[dict[str, float]]:
    """Stage 1 of a fine-tuning run (`params.align_steps` steps of stage 2's batch size), with
    stage 2's encoding and its weighted token loss `loss_fn`."""
    from .samples import encode_batch

    if not samples:
        raise ValueError("align_steps needs the title -> SID samples (alignment_samples)")
    pad = tokenizer.pad_token_id

    def encode(msgs: Sequence[Any], w: Any) -> dict[str, torch.Tensor]:
        return encode_batch(tokenizer, msgs, w, params.max_len, pad, params.form)

    per_step = params.batch_size * params.grad_accum
    return align(
        model, samples, encode, loss_fn, new_ids, params.align_steps, per_step,
        params.seed, device,
    )  # fmt: skip
