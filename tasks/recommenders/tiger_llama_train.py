"""SID-Llama's training (kind 'sid-llama'; the model, its scoring and files are tiger_llama.py):
from scratch, AdamW with warmup + cosine, a causal LM loss over each user's train windows, and
IIRG's (item -> neighbour, weight) pairs as a second small batch a step, spread evenly over each
epoch so the next-item windows and their order stay those of the next-item-only run."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from prefect import task
from prefect.cache_policies import NO_CACHE

from ..data.warehouse import connect
from ..devices import resolve_device
from ..settings import stage_dir
from .tiger_data import (
    beam_recall_ndcg,
    check_codes,
    finish,
    keep_best,
    sid_tokens,
    torch_threads,
    warehouse_codes,
)
from .tiger_llama import L, TigerModel, TigerParams, batch_tensors, build_net, save, score, windows

log = logging.getLogger("hoprec.sid_llama")


def _valid_metrics(
    model: TigerModel, histories: Sequence[np.ndarray], targets: np.ndarray
) -> tuple[float, float]:
    """(Recall@10, NDCG@10) from the beam's ranking (a target outside the beam is a miss)."""
    s = score(model, histories, num_beams=max(10, model.params.eval_beams))
    return beam_recall_ndcg(s, targets)


def train_tiger(
    sequences: Sequence[np.ndarray],
    codes: np.ndarray,
    params: TigerParams = TigerParams(),
    valid: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    pairs: Sequence[tuple[int, int, float]] = (),
) -> TigerModel:
    """Train from scratch for `max_steps` steps (AdamW, warmup + cosine), full-softmax CE on the
    SID tokens of items 2..end of each window (+ IIRG `pairs` (item, neighbour, weight): the
    neighbour's tokens, weighted). With `valid` = (histories, targets) and eval_every > 0,
    valid NDCG@10 on a fixed user sample picks the best weights. Same seed on CPU -> the same
    losses."""
    codes = check_codes(codes)
    for a, b, w in pairs:
        if not (1 <= a < len(codes) and 1 <= b < len(codes) and w >= 0):
            raise ValueError(f"pair item ids must lie in 1..{len(codes) - 1}: {(a, b, w)}")
    seqs = [s for s in (np.asarray(s, np.int64) for s in sequences) if len(s) >= 2]
    if not seqs:
        raise ValueError("need at least one training sequence of 2+ items")
    for bad in (s for s in seqs if s.min() < 1 or s.max() >= len(codes)):
        raise ValueError(f"sequence item ids must lie in 1..{len(codes) - 1}, got {bad.tolist()}")
    device = resolve_device(params.device)
    with torch_threads(params.threads, device):
        return _train(seqs, codes, params, valid, progress, device, pairs)


def _train(
    seqs: list[np.ndarray],
    codes: np.ndarray,
    params: TigerParams,
    valid: tuple[Sequence[np.ndarray], np.ndarray] | None,
    progress: Callable[[int, int, float], None] | None,
    device: torch.device,
    pairs: Sequence[tuple[int, int, float]] = (),
) -> TigerModel:
    torch.manual_seed(params.seed)
    p_win = np.array([(a, b) for a, b, _ in pairs], np.int64).reshape(-1, 2)
    p_w = np.array([w for *_, w in pairs], np.float32)
    p_rng, p_queue, p_step = np.random.default_rng(params.seed + 2), np.zeros(0, np.int64), 0
    rng = np.random.default_rng(params.seed)
    net = build_net(params, int(3 + (codes[1:].max(0) + 1).sum())).to(device).train()
    model, tokens = TigerModel(net, codes, params), sid_tokens(codes)
    v_hist: list[np.ndarray] = []
    v_tgt: np.ndarray | None = None
    if valid is not None and params.eval_every and len(valid[1]):
        pick = np.sort(
            np.random.default_rng(params.seed + 1).permutation(len(valid[1]))[: params.eval_users]
        )
        v_hist, v_tgt = [valid[0][i] for i in pick], np.asarray(valid[1], np.int64)[pick]
    opt = torch.optim.AdamW(
        net.parameters(), lr=params.lr, weight_decay=params.weight_decay, betas=(0.9, 0.98)
    )
    total, warm = params.max_steps, params.warmup
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else 0.5 + 0.5 * math.cos(math.pi * (s - warm) / max(1, total - warm))
        ),
    )
    best: dict[str, torch.Tensor] | None = None
    queue: list[np.ndarray] = []
    start = time.perf_counter()
    while model.steps < total:
        if len(queue) < params.batch_size:  # a new epoch: fresh cuts, fresh order
            wins = windows(seqs, params.history, rng)
            queue.extend(wins[i] for i in rng.permutation(len(wins)))
            p_step = math.ceil(len(p_win) * params.batch_size / max(1, len(wins)))
        batch, queue = queue[: params.batch_size], queue[params.batch_size :]
        ids, tgt = (t.to(device) for t in batch_tensors(batch, tokens))
        logits = net(input_ids=ids, use_cache=False).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=-100)
        if p_step:  # IIRG pairs: token-weighted into the same mean
            if len(p_queue) < p_step:
                p_queue = np.concatenate([p_queue, p_rng.permutation(len(p_win))])
            pick, p_queue = p_queue[:p_step], p_queue[p_step:]
            loss = _with_pairs(net, loss, tgt, p_win[pick], p_w[pick], tokens, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        model.steps += 1
        model.losses.append(loss.item())
        if progress is not None:
            progress(model.steps, total, model.losses[-1])
        if v_tgt is not None and (model.steps % params.eval_every == 0 or model.steps == total):
            recall, ndcg = _valid_metrics(model, v_hist, v_tgt)
            net.train()
            best = keep_best(log, model, net, best, recall, ndcg)
    return finish(model, net, best, start)


def _with_pairs(
    net: Any,
    loss: torch.Tensor,
    tgt: torch.Tensor,
    wins: np.ndarray,
    weights: np.ndarray,
    tokens: np.ndarray,
    device: torch.device,
) -> torch.Tensor:
    """The step's loss as one mean over the window tokens and the pairs' neighbour tokens,
    each pair token counting its weight (the share IIRG's samples have in an epoch)."""
    ids, ptgt = (t.to(device) for t in batch_tensors(list(wins), tokens))
    logits = net(input_ids=ids, use_cache=False).logits
    ce = F.cross_entropy(
        logits.flatten(0, 1).float(), ptgt.flatten(), ignore_index=-100, reduction="none"
    ).view(ptgt.shape)
    w = torch.from_numpy(weights).to(device)[:, None]
    n_win = int((tgt != -100).sum())
    return (loss * n_win + (ce * w).sum()) / (n_win + float(w.sum()) * L)


def train_tiger_on(
    con: Any, dataset: str, sid_version: str, params: TigerParams = TigerParams()
) -> TigerModel:
    """Train on the warehouse's train split (valid split for model selection when eval_every)."""
    from ..data.sequences import train_sequences, user_histories

    codes = warehouse_codes(con, dataset, sid_version)
    seqs = train_sequences(con, dataset)
    valid = user_histories(con, dataset, "valid")[1:] if params.eval_every else None
    return train_tiger(seqs, codes, params, valid)


@task(name="train-sid-llama", tags=["gpu"], cache_policy=NO_CACHE)
def train_sid_llama_task(
    warehouse: str, dataset: str, sid_version: str, params: TigerParams
) -> dict[str, Any]:
    """Train the TIGER-like SID transformer on the train split; the weights go to the state dir."""
    name = f"sid-llama-{sid_version}-seed{params.seed}-{params.max_steps}.pt"
    out = stage_dir("models", dataset) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    with connect(warehouse) as con:
        model = train_tiger_on(con, dataset, sid_version, params)
    save(model, out)
    return {
        "path": str(out),
        "steps": model.steps,
        "best_step": model.best_step,
        "final_loss": model.losses[-1] if model.losses else None,
        "seconds": model.seconds,
    }
