"""TIGER (Rajput et al. 2023): a T5 encoder-decoder trained from scratch on semantic IDs.

The non-LLM comparison point for "LLMs memorize more than non-LLM GR models": the same SIDs
and trie-constrained beam search (llm/decoding.py, which runs an encoder-decoder's encoder once
and its decoder on each beam's prefix) as the LLM recommenders. METHODS.md's sizes: 4 encoder
+ 4 decoder layers, 6 heads of 64, d_model 128, MLP 1024, dropout 0.1, a hashed user token.
The encoder reads the user token + the SID tokens of the last `history` items, the decoder
writes the next item's SID + EOS (data layout: tiger_data.py). Optional IIRG samples add
(item -> co-occurrence / semantic neighbour) pairs, weighted per task (`iirg_pairs`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from prefect import task
from prefect.cache_policies import NO_CACHE

from .. import defaults
from ..data.warehouse import connect
from ..devices import resolve_device
from ..llm.decoding import beam_scores, constrained_beam_search
from ..settings import stage_dir
from ..sids.trie import SidTrie
from .tiger_data import (
    EOS,
    NO_USER,
    PAD,
    Examples,
    batch_tensors,
    beam_recall_ndcg,
    check_codes,
    encoder_inputs,
    finish,
    first_user_token,
    iirg_pairs,
    keep_best,
    next_item_examples,
    pair_examples,
    sid_tokens,
    torch_threads,
    user_token,
    warehouse_codes,
    warehouse_sequences,
)

log = logging.getLogger("hoprec.tiger")


@dataclass(frozen=True)
class TigerParams:
    """Model and training settings: TIGER's architecture; the steps fit a CPU."""

    d_model: int = 128
    d_kv: int = 64
    heads: int = 6
    d_ff: int = 1024
    layers: int = 4  # encoder layers, and as many decoder layers
    dropout: float = 0.1
    user_buckets: int = 2000  # hashed user tokens
    user_dropout: float = 0.1  # share of examples shown NO_USER, so scoring without users works
    history: int = defaults.TIGER_HISTORY  # items in the encoder input
    lr: float = defaults.TIGER_LR
    weight_decay: float = 0.01
    warmup: int = 100  # linear warmup steps, then cosine decay to 0 at max_steps
    batch_size: int = defaults.TIGER_BATCH
    max_steps: int = defaults.TIGER_STEPS
    seed: int = 0
    device: str = "auto"  # auto = cuda, else mps, else cpu
    threads: int = 1  # torch CPU threads while training/scoring; 0 = leave as is
    eval_every: int = 500  # steps between valid evaluations; 0 = never (keep last weights)
    eval_users: int = 300  # valid users sampled (fixed) for model selection
    eval_beams: int = 20

    def __post_init__(self) -> None:
        ints = ("d_model", "d_kv", "heads", "d_ff", "layers", "user_buckets", "history")
        for name in (*ints, "batch_size", "max_steps", "eval_users", "eval_beams"):
            self._int(name, 1)
        for name in ("warmup", "eval_every", "threads"):
            self._int(name, 0)
        for name, ok in (
            ("dropout", 0 <= self.dropout < 1),
            ("user_dropout", 0 <= self.user_dropout <= 1),
            ("lr", self.lr > 0),
            ("weight_decay", self.weight_decay >= 0),
        ):
            if not ok:
                raise ValueError(f"{name} out of range: {getattr(self, name)!r}")

    def _int(self, name: str, low: int) -> None:
        if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
            raise ValueError(f"{name} must be an int >= {low}, got {getattr(self, name)!r}")


@dataclass
class TigerModel:
    """A trained net with its codes. `valid` lists (step, valid NDCG@10); when it is not empty
    the weights are those of `best_step`."""

    net: Any  # transformers.T5ForConditionalGeneration
    codes: np.ndarray  # [n_items + 1, 4], row 0 unused
    params: TigerParams
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    seconds: float = 0.0
    _trie: SidTrie | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.codes) - 1

    @property
    def trie(self) -> SidTrie:
        if self._trie is None:
            tok = sid_tokens(self.codes)[1:]
            self._trie = SidTrie.from_token_ids(np.arange(1, self.n_items + 1), tok)
        return self._trie


def build_net(params: TigerParams, vocab: int) -> Any:
    """A randomly initialised T5ForConditionalGeneration (seed set by the caller)."""
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(
        vocab_size=vocab,
        d_model=params.d_model,
        d_kv=params.d_kv,
        d_ff=params.d_ff,
        num_layers=params.layers,
        num_decoder_layers=params.layers,
        num_heads=params.heads,
        dropout_rate=params.dropout,
        feed_forward_proj="relu",
        pad_token_id=PAD,
        eos_token_id=EOS,
    )
    return T5ForConditionalGeneration(cfg)  # decoder start: PAD (decoding.decoder_start)


def score(
    model: TigerModel,
    histories: Sequence[np.ndarray],
    num_beams: int = 20,
    batch_size: int = 64,
    users: np.ndarray | None = None,
) -> np.ndarray:
    """[n, n_items + 1] float32: log P(SID | user, history) of the beam's top-`num_beams` items,
    -inf for every other item, padding and the history items (excluded inside the search).
    Without `users` every row gets the NO_USER token (trained with `user_dropout`)."""
    for bad in (x for x in histories if len(x) and (np.min(x) < 1 or np.max(x) > model.n_items)):
        raise ValueError(f"history item ids must lie in 1..{model.n_items}, got {list(bad)}")
    p = model.params
    utok = user_token(users, len(histories), model.codes, p.user_buckets)
    prompts = encoder_inputs(histories, utok, sid_tokens(model.codes), p.history)
    device = next(model.net.parameters()).device
    with torch_threads(p.threads, device):
        items, sc = constrained_beam_search(
            model.net,
            prompts,
            model.trie,
            num_beams=num_beams,
            top_k=num_beams,
            exclude=[set(np.asarray(x).tolist()) for x in histories],
            batch_size=batch_size,
            device=device,
        )
    return beam_scores(items, sc, model.n_items)


def _valid_metrics(
    model: TigerModel, histories: Sequence[np.ndarray], targets: np.ndarray, users: Any
) -> tuple[float, float]:
    """(Recall@10, NDCG@10) from the beam's ranking (a target outside the beam is a miss)."""
    s = score(model, histories, num_beams=max(10, model.params.eval_beams), users=users)
    return beam_recall_ndcg(s, targets)


Valid = tuple[Sequence[np.ndarray], np.ndarray] | tuple[Sequence[np.ndarray], np.ndarray, Any]


def train_tiger(
    sequences: Sequence[np.ndarray],
    codes: np.ndarray,
    params: TigerParams = TigerParams(),
    valid: Valid | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    users: np.ndarray | None = None,
    pairs: Sequence[tuple[int, int, float]] = (),
) -> TigerModel:
    """Train from scratch for `max_steps` steps (AdamW, warmup + cosine) on next-item examples
    (+ IIRG `pairs` (item, neighbour, weight)), drawn in a fresh random order each epoch; loss:
    weighted token CE over the target's SID + EOS. `users` (one id per sequence) feed the hashed
    user token. With `valid` = (histories, targets[, users]) and eval_every > 0, valid NDCG@10
    on a fixed user sample picks the best weights. Same seed on CPU -> the same losses."""
    codes = check_codes(codes)
    seqs = [np.asarray(s, np.int64) for s in sequences]
    for bad in (s for s in seqs if len(s) and (s.min() < 1 or s.max() >= len(codes))):
        raise ValueError(f"sequence item ids must lie in 1..{len(codes) - 1}, got {bad.tolist()}")
    for a, b, w in pairs:
        if not (1 <= a < len(codes) and 1 <= b < len(codes) and w >= 0):
            raise ValueError(f"pair item ids must lie in 1..{len(codes) - 1}: {(a, b, w)}")
    p = params
    ex = next_item_examples(seqs, user_token(users, len(seqs), codes, p.user_buckets), p.history)
    if pairs:
        ex = Examples.concat([ex, pair_examples(pairs, p.history)])
    if not len(ex):
        raise ValueError("need at least one training sequence of 2+ items")
    device = resolve_device(p.device)
    with torch_threads(p.threads, device):
        return _train(ex, codes, p, valid, progress, device)


def _valid_sample(params: TigerParams, valid: Valid | None) -> tuple[list[np.ndarray], Any, Any]:
    if valid is None or not params.eval_every or not len(valid[1]):
        return [], None, None
    rng = np.random.default_rng(params.seed + 1)
    pick = np.sort(rng.permutation(len(valid[1]))[: params.eval_users])
    users = valid[2] if len(valid) == 3 else None
    return (
        [valid[0][i] for i in pick],
        np.asarray(valid[1], np.int64)[pick],
        None if users is None else np.asarray(users)[pick],
    )


def _train(
    ex: Examples,
    codes: np.ndarray,
    params: TigerParams,
    valid: Valid | None,
    progress: Callable[[int, int, float], None] | None,
    device: torch.device,
) -> TigerModel:
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    net = build_net(params, first_user_token(codes) + params.user_buckets).to(device).train()
    model, tokens = TigerModel(net, codes, params), sid_tokens(codes)
    v_hist, v_tgt, v_users = _valid_sample(params, valid)
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
    order = np.zeros(0, np.int64)
    start = time.perf_counter()
    while model.steps < total:
        if len(order) < params.batch_size:  # a new epoch: fresh order
            order = np.concatenate([order, rng.permutation(len(ex))])
        batch = ex.take(order[: params.batch_size])
        order = order[params.batch_size :]
        drop = rng.random(len(batch)) < params.user_dropout
        batch.user = np.where(drop, NO_USER, batch.user)
        ids, mask, dec, labels, w = (t.to(device) for t in batch_tensors(batch, tokens))
        logits = net(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        ce = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="none")
        loss = (ce.view(labels.shape) * w[:, None]).sum() / labels.numel()
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
            recall, ndcg = _valid_metrics(model, v_hist, v_tgt, v_users)
            net.train()
            best = keep_best(log, model, net, best, recall, ndcg)
    return finish(model, net, best, start)


def train_tiger_on(
    con: Any,
    dataset: str,
    sid_version: str,
    params: TigerParams = TigerParams(),
    build_path: str | None = None,
) -> TigerModel:
    """Train on the warehouse's train split (valid split for model selection when eval_every);
    with `build_path` (an instruction build's Parquet) IIRG's collaborative and semantic
    samples join as weighted item pairs."""
    from ..data.sequences import user_histories

    codes = warehouse_codes(con, dataset, sid_version)
    users, seqs = warehouse_sequences(con, dataset)
    valid = user_histories(con, dataset, "valid") if params.eval_every else None
    v = None if valid is None else (valid[1], valid[2], valid[0])
    pairs = iirg_pairs(build_path) if build_path else []
    return train_tiger(seqs, codes, params, v, users=users, pairs=pairs)


def save(model: TigerModel, path: str | Path) -> Path:
    """torch.save of weights (CPU), T5 config (JSON), codes, params and training record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in model.net.state_dict().items()},
            "config": json.dumps(model.net.config.to_diff_dict()),
            "codes": torch.from_numpy(model.codes),
            "params": asdict(model.params),
            "steps": model.steps,
            "losses": list(model.losses),
            "valid": [list(v) for v in model.valid],
            "best_step": model.best_step,
            "seconds": model.seconds,
        },
        path,
    )
    return path


def load(path: str | Path, device: str = "auto") -> TigerModel:
    """A saved model in eval mode on `device` (weights_only load: no pickled code runs)."""
    from transformers import T5Config, T5ForConditionalGeneration

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    net = T5ForConditionalGeneration(T5Config.from_dict(json.loads(ckpt["config"])))
    net.load_state_dict(ckpt["state_dict"])
    net.to(resolve_device(device)).eval()
    return TigerModel(
        net,
        ckpt["codes"].numpy().astype(np.int64),
        TigerParams(**ckpt["params"]),
        ckpt["steps"],
        ckpt["losses"],
        [(int(s), float(v)) for s, v in ckpt["valid"]],
        ckpt["best_step"],
        ckpt["seconds"],
    )


@task(name="train-tiger", tags=["gpu"], cache_policy=NO_CACHE)
def train_tiger_task(
    warehouse: str,
    dataset: str,
    sid_version: str,
    params: TigerParams,
    build_path: str | None = None,
) -> dict[str, Any]:
    """Train TIGER on the train split (+ IIRG pairs from `build_path`); weights to the state
    dir."""
    tag = "-iirg" if build_path else ""
    name = f"tiger{tag}-{sid_version}-seed{params.seed}-{params.max_steps}.pt"
    out = stage_dir("models", dataset) / name
    with connect(warehouse) as con:
        model = train_tiger_on(con, dataset, sid_version, params, build_path)
    save(model, out)
    return {
        "path": str(out),
        "steps": model.steps,
        "best_step": model.best_step,
        "final_loss": model.losses[-1] if model.losses else None,
        "seconds": model.seconds,
    }
