"""SID-Llama: a small decoder-only Llama trained from scratch on semantic IDs (kind 'sid-llama').

hoprec's first "TIGER-like" model, kept next to TIGER (tiger.py, a T5) because at the same CPU
budget it wins on ml-100k validation (NDCG@10 .060 vs .009 at 47 s of training CPU): the same
SIDs and trie-constrained beam search (llm/decoding.py) as the LLM recommenders, but a tiny
random-init decoder whose vocabulary is the SID codes (token = offset[level] + code) plus
pad/bos/eos.
Training is a causal LM over each user's train sequence cut into windows of <= history + 1
items (BOS, then 4 tokens per item), so every transition of a window is in one loss: the SID
tokens of items 2..end (never BOS, pad or item 1). Windows overlap by one item, so an epoch sees
each transition once. Scoring prompts with BOS + the last `history` SIDs (positions from 0, as
in training) and turns the beam's top-K into a full score matrix.
IIRG's (item -> neighbour, weight) pairs, when given, are two-item windows (BOS, SID(item),
SID(neighbour); loss on the neighbour, times its weight) spread evenly over each epoch in a
second small batch per step, so the next-item windows and their order stay those of the
next-item-only run with the same seed.
"""

from __future__ import annotations

import itertools
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

from ..data.warehouse import connect
from ..devices import resolve_device
from ..llm.decoding import beam_scores, constrained_beam_search
from ..settings import stage_dir
from ..sids.trie import SidTrie
from .tiger_data import (
    beam_recall_ndcg,
    check_codes,
    sid_tokens,
    torch_threads,
    warehouse_codes,
)

log = logging.getLogger("hoprec.sid_llama")

PAD, BOS, EOS = 0, 1, 2  # special tokens; SID tokens start at 3
L = 4  # SID length (a, b, c, d)


@dataclass(frozen=True)
class TigerParams:
    """Model and training settings (defaults: ~80 s for ml-100k on one CPU core)."""

    hidden: int = 64  # small on purpose: CPU time is spent on epochs, not width
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    dropout: float = 0.0  # attention dropout (Llama has no other)
    history: int = 20  # items in the prompt; training windows hold history + 1
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: int = 100  # linear warmup steps, then cosine decay to 0 at max_steps
    batch_size: int = 16  # windows per step (small batches, more updates: better per FLOP)
    max_steps: int = 2000
    seed: int = 0
    device: str = "auto"  # auto = cuda, else mps, else cpu
    threads: int = 1  # torch CPU threads while training/scoring; 0 = leave as is
    eval_every: int = 500  # steps between valid evaluations; 0 = never (keep last weights)
    eval_users: int = 300  # valid users sampled (fixed) for model selection
    eval_beams: int = 20

    def __post_init__(self) -> None:
        for name in (
            "hidden",
            "layers",
            "heads",
            "intermediate",
            "history",
            "batch_size",
            "max_steps",
            "eval_users",
            "eval_beams",
            "warmup",
            "eval_every",
            "threads",
        ):
            low = 0 if name in ("warmup", "eval_every", "threads") else 1
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ValueError(f"{name} must be an int >= {low}, got {getattr(self, name)!r}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(
                f"hidden ({self.hidden}) / heads ({self.heads}) must be an even "
                "integer (rotary embeddings)"
            )
        for name, ok in (
            ("dropout", 0 <= self.dropout < 1),
            ("lr", self.lr > 0),
            ("weight_decay", self.weight_decay >= 0),
        ):
            if not ok:
                raise ValueError(f"{name} out of range: {getattr(self, name)!r}")


@dataclass
class TigerModel:
    """A trained net with its codes. `valid` lists (step, valid NDCG@10); when it is not empty
    the weights are those of `best_step`."""

    net: Any  # transformers.LlamaForCausalLM
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
    """A randomly initialised LlamaForCausalLM (seed set by the caller), sdpa attention."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=params.hidden,
        intermediate_size=params.intermediate,
        num_hidden_layers=params.layers,
        num_attention_heads=params.heads,
        num_key_value_heads=params.heads,
        max_position_embeddings=1 + L * (params.history + 1) + 8,
        attention_dropout=params.dropout,
        tie_word_embeddings=True,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg)


def windows(
    sequences: Sequence[np.ndarray], history: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each sequence cut into windows of <= history + 1 items overlapping by one item, so every
    transition appears once; cut points are shifted by a random phase (per sequence)."""
    out: list[np.ndarray] = []
    for s in (s for s in sequences if len(s) >= 2):
        cuts = sorted({0, len(s) - 1, *range(len(s) - 1 - int(rng.integers(history)), 0, -history)})
        out.extend(s[a : b + 1] for a, b in itertools.pairwise(cuts))
    return out


def batch_tensors(
    wins: Sequence[np.ndarray], tokens: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, targets) [b, 1 + 4 * max items]: right-padded BOS + SIDs; targets[t] is the token
    to predict from position t (ids[t + 1]) on items 2..end, else -100 (BOS, item 1, pad)."""
    width = 1 + L * max(len(w) for w in wins)
    ids = np.full((len(wins), width), PAD, np.int64)
    ids[:, 0] = BOS
    for i, w in enumerate(wins):
        ids[i, 1 : 1 + L * len(w)] = tokens[w].reshape(-1)
    tgt = np.full_like(ids, -100)
    tgt[:, :-1] = ids[:, 1:]
    tgt[:, :L] = -100  # predicting item 1's tokens (from BOS and its prefix)
    tgt[tgt == PAD] = -100
    return torch.from_numpy(ids), torch.from_numpy(tgt)


def prompts(model: TigerModel, histories: Sequence[np.ndarray]) -> list[list[int]]:
    """BOS + the SID tokens of each history's last `history` items."""
    tok, h = sid_tokens(model.codes), model.params.history
    for bad in (x for x in histories if len(x) and (np.min(x) < 1 or np.max(x) > model.n_items)):
        raise ValueError(f"history item ids must lie in 1..{model.n_items}, got {list(bad)}")
    return [[BOS, *tok[np.asarray(x, np.int64)[-h:]].reshape(-1).tolist()] for x in histories]


def score(
    model: TigerModel, histories: Sequence[np.ndarray], num_beams: int = 20, batch_size: int = 64
) -> np.ndarray:
    """[n, n_items + 1] float32: log P(SID | prompt) of the beam's top-`num_beams` items, -inf
    for every other item, padding and the user's history items (excluded inside the search)."""
    device = next(model.net.parameters()).device
    with torch_threads(model.params.threads, device):
        items, sc = constrained_beam_search(
            model.net,
            prompts(model, histories),
            model.trie,
            num_beams=num_beams,
            top_k=num_beams,
            exclude=[set(np.asarray(x).tolist()) for x in histories],
            batch_size=batch_size,
            device=device,
        )
    return beam_scores(items, sc, model.n_items)


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
            log.info(
                "step %d loss %.4f valid R@10 %.4f NDCG@10 %.4f",
                model.steps,
                model.losses[-1],
                recall,
                ndcg,
            )
            if best is None or ndcg > max(v for _, v in model.valid):
                best = {k: v.detach().clone() for k, v in net.state_dict().items()}
                model.best_step = model.steps
            model.valid.append((model.steps, ndcg))
    if best is not None:
        net.load_state_dict(best)
    model.seconds = time.perf_counter() - start
    net.eval()
    return model


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


def save(model: TigerModel, path: str | Path) -> Path:
    """torch.save of weights (CPU), Llama config (JSON), codes, params and training record."""
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
    from transformers import LlamaConfig, LlamaForCausalLM

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    cfg = LlamaConfig.from_dict(json.loads(ckpt["config"]))
    cfg._attn_implementation = "sdpa"
    net = LlamaForCausalLM(cfg)
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
