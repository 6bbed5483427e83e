"""SASRec (Kang & McAuley, 2018), the ID-based baseline, trained with full-softmax cross-entropy.

METHODS.md settings: 2 layers, 2 heads, d = 64, the last 50 items, lr 3e-3, and cross-entropy
over the whole catalogue rather than BCE with one sampled negative (BCE roughly halves SASRec's
score, which would make every generative model look better than it is). The output layer is the
item embedding itself (logits = h @ E^T), as in the paper.

Sequences are left-padded with item 0 and positions are counted from the right, so the last item
always sits at position max_len - 1: a history encodes the same whether or not it is padded, and
padding keys are masked out of attention (each query may always see itself, so a padding query
never has an empty row and no NaN appears).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import torch
import torch.nn.functional as F
from prefect import task
from prefect.cache_policies import NO_CACHE
from torch import nn

from ..data.sequences import n_items as catalogue_size
from ..data.sequences import train_sequences, user_histories
from ..data.warehouse import connect
from ..devices import resolve_device
from ..settings import stage_dir

log = logging.getLogger("hoprec.sasrec")


@dataclass(frozen=True)
class SASRecParams:
    """Model and training settings; the defaults are METHODS.md's."""

    layers: int = 2
    heads: int = 2
    dim: int = 64
    max_len: int = 50
    dropout: float = 0.2
    lr: float = 3e-3
    batch_size: int = 128  # users per step
    epochs: int = 200
    max_steps: int = 0  # 0 = no cap; else stop after this many optimizer steps
    seed: int = 0
    device: str = "auto"  # auto = cuda, else mps, else cpu
    patience: int = 0  # 0 = no early stop; else stop after N evals without improvement
    eval_every: int = 5  # epochs between validation NDCG@10 evals; 0 = never evaluate

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        for name in ("layers", "heads", "dim", "max_len", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "patience", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class SASRecModel:
    """A trained network and what it was trained with. `valid` lists (step, valid NDCG@10);
    when it is not empty the weights are those of `best_step` (model selection on valid)."""

    model: SASRecNet
    n_items: int
    params: SASRecParams
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None


class _Block(nn.Module):
    """Pre-LayerNorm self-attention + point-wise feed-forward block (SASRec's d -> d FFN)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.p = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, L, d / heads]
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.p if self.training else 0.0
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SASRecNet(nn.Module):
    """Item ids [B, L] (left-padded with 0, L <= max_len) -> hidden states [B, L, dim]."""

    def __init__(self, n_items: int, p: SASRecParams) -> None:
        super().__init__()
        self.max_len = p.max_len
        self.items = nn.Embedding(n_items + 1, p.dim, padding_idx=0)
        self.pos = nn.Embedding(p.max_len, p.dim)
        nn.init.normal_(self.items.weight, std=p.dim**-0.5)
        nn.init.normal_(self.pos.weight, std=p.dim**-0.5)
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.drop = nn.Dropout(p.dropout)
        self.blocks = nn.ModuleList(_Block(p.dim, p.heads, p.dropout) for _ in range(p.layers))
        self.ln = nn.LayerNorm(p.dim)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        n = seq.shape[1]
        if n > self.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len {self.max_len}")
        x = self.drop(self.items(seq) + self.pos.weight[self.max_len - n :])
        eye = torch.eye(n, dtype=torch.bool, device=seq.device)
        # causal, padding keys hidden, each position sees itself: [B, 1, L, L]
        allowed = eye.logical_or((seq > 0)[:, None, None, :]) & torch.ones_like(eye).tril()
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln(x)

    def item_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of items 1..n_items (no padding column): the shared item embedding."""
        return h @ self.items.weight[1:].T


def _left_pad(seqs: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """The last max_len items of each sequence, right-aligned in a zero matrix."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = np.asarray(s, dtype=np.int64)[-max_len:]
        if len(s):
            out[i, -len(s) :] = s
    return out


def _batched_logits(
    net: SASRecNet, histories: Sequence[np.ndarray], n_items: int, batch_size: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """(start row, [b, n_items+1] scores with column 0 at -inf), in eval mode without grad."""
    device = next(net.parameters()).device
    for bad in (h for h in histories if len(h) and (np.min(h) < 1 or np.max(h) > n_items)):
        raise ValueError(f"history item ids must lie in 1..{n_items}, got {bad.tolist()}")
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(histories), batch_size):
                x = torch.from_numpy(_left_pad(histories[i : i + batch_size], net.max_len)).to(
                    device
                )
                logits = net.item_logits(net(x)[:, -1]).float()
                yield i, F.pad(logits, (1, 0), value=-math.inf)
    finally:
        net.train(was_training)


def score(model: SASRecModel, histories: list[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """[n_users, n_items+1] float32 scores (column 0, padding, is -inf); the last max_len items
    of each history are the input. History items are NOT masked here: the evaluation does it."""
    out = np.empty((len(histories), model.n_items + 1), dtype=np.float32)
    for i, logits in _batched_logits(model.model, histories, model.n_items, batch_size):
        out[i : i + len(logits)] = logits.cpu().numpy()
    return out


def _valid_ndcg10(
    net: SASRecNet, histories: list[np.ndarray], targets: np.ndarray, n_items: int
) -> float:
    """Mean NDCG@10 with each user's whole history removed from the ranking, computed on the
    device batch by batch (a float64 users x items copy would not fit for large catalogues)."""
    total = 0.0
    for i, logits in _batched_logits(net, histories, n_items, 512):
        hs = histories[i : i + len(logits)]
        rows = np.repeat(np.arange(len(hs)), [len(h) for h in hs])
        if len(rows):
            cols = torch.from_numpy(np.concatenate(hs)).to(logits.device)
            logits[torch.from_numpy(rows).to(logits.device), cols] = -math.inf
        t = torch.from_numpy(targets[i : i + len(hs)]).to(logits.device)
        ts = logits.gather(1, t[:, None])
        idx = torch.arange(logits.shape[1], device=logits.device)[None, :]
        rank = ((logits > ts) | ((logits == ts) & (idx < t[:, None]))).sum(1) + 1
        total += torch.where(rank <= 10, 1.0 / torch.log2(rank.float() + 1), 0.0).sum().item()
    return total / max(len(histories), 1)


def train_sasrec(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    params: SASRecParams = SASRecParams(),
    *,
    log_every: int = 50,
    progress: Callable[[int, int, float], None] | None = None,
) -> SASRecModel:
    """Train on the train split: every position predicts the next item (padding ignored),
    full-softmax cross-entropy over all items, on each user's last max_len + 1 train items.

    Validation NDCG@10 (history items removed) is computed every `eval_every` epochs and after
    the last step; the best weights are kept, and `patience` evals without improvement stop
    training early. Same seed on CPU -> the same model, bit for bit.
    """
    n_items = catalogue_size(con, dataset)
    seqs = [s for s in train_sequences(con, dataset) if len(s) >= 2]
    if not seqs:
        raise ValueError(
            f"dataset {dataset!r} has no train sequence of 2+ items; run prepare first"
        )
    inputs = torch.from_numpy(_left_pad([s[:-1] for s in seqs], params.max_len))
    labels = torch.from_numpy(_left_pad([s[1:] for s in seqs], params.max_len))
    v_hist: list[np.ndarray] = []
    v_tgt = np.zeros(0, np.int64)
    if params.eval_every:
        _, v_hist, v_tgt = user_histories(con, dataset, "valid")
    per_epoch = math.ceil(len(seqs) / params.batch_size)
    total = params.epochs * per_epoch
    total = min(total, params.max_steps) if params.max_steps else total
    device = resolve_device(params.device)
    log.info(
        "SASRec on %s: %d users, %d items, %d steps (%d per epoch) on %s",
        dataset,
        len(seqs),
        n_items,
        total,
        per_epoch,
        device,
    )

    # Seeding is what makes CPU runs repeatable: every op here has a deterministic CPU kernel.
    # torch.use_deterministic_algorithms would add nothing on CPU but a 3 s first import of
    # torch._inductor and a process-wide switch (on CUDA it also needs CUBLAS_WORKSPACE_CONFIG).
    torch.manual_seed(params.seed)
    order = torch.Generator().manual_seed(params.seed)
    net = SASRecNet(n_items, params).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=params.lr, betas=(0.9, 0.98))
    result = SASRecModel(net, n_items, params)
    best_state: dict[str, torch.Tensor] | None = None
    pending: list[torch.Tensor] = []  # losses not yet copied off the device
    for epoch in range(1, params.epochs + 1):
        for batch in torch.randperm(len(seqs), generator=order).split(params.batch_size):
            x, y = inputs[batch].to(device), labels[batch].to(device)
            keep = y > 0
            loss = F.cross_entropy(net.item_logits(net(x)[keep]), y[keep] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            result.steps += 1
            pending.append(loss.detach())
            if result.steps % log_every == 0 or result.steps == total:
                result.losses.extend(torch.stack(pending).cpu().tolist())
                pending = []
                log.info("step %d/%d loss %.4f", result.steps, total, result.losses[-1])
                if progress is not None:
                    progress(result.steps, total, result.losses[-1])
            if result.steps >= total:
                break
        done = result.steps >= total
        if len(v_tgt) and (epoch % params.eval_every == 0 or done):
            ndcg = _valid_ndcg10(net, v_hist, v_tgt, n_items)
            log.info("step %d valid NDCG@10 %.4f", result.steps, ndcg)
            if best_state is None or ndcg > max(v for _, v in result.valid):
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                result.best_step = result.steps
            result.valid.append((result.steps, ndcg))
            best = result.best_step or 0
            stale = sum(1 for s, _ in result.valid if s > best)
            if params.patience and stale >= params.patience:
                log.info("early stop: no valid improvement in %d evals", stale)
                done = True
        if done:
            break
    result.losses.extend(torch.stack(pending).cpu().tolist() if pending else [])
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return result


def save(model: SASRecModel, path: str | Path) -> Path:
    """torch.save of the weights (on CPU), the params, n_items and the training record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in model.model.state_dict().items()},
            "params": asdict(model.params),
            "n_items": model.n_items,
            "steps": model.steps,
            "losses": list(model.losses),
            "valid": [list(v) for v in model.valid],
            "best_step": model.best_step,
        },
        path,
    )
    return path


def load(path: str | Path, device: str = "auto") -> SASRecModel:
    """A saved model, in eval mode, on `device` (auto = cuda, else mps, else cpu)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    params = SASRecParams(**ckpt["params"])
    net = SASRecNet(ckpt["n_items"], params)
    net.load_state_dict(ckpt["state_dict"])
    net.to(resolve_device(device)).eval()
    return SASRecModel(
        net,
        ckpt["n_items"],
        params,
        ckpt["steps"],
        ckpt["losses"],
        [(int(s), float(v)) for s, v in ckpt["valid"]],
        ckpt["best_step"],
    )


@task(name="train-sasrec", tags=["gpu"], cache_policy=NO_CACHE)
def train_sasrec_task(warehouse: str, dataset: str, params: SASRecParams) -> dict[str, Any]:
    """Train SASRec (full-softmax CE) on the train split; the weights go to the state dir."""
    out = stage_dir("models", dataset) / f"sasrec-seed{params.seed}-{params.max_steps}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if resolve_device(params.device).type == "cpu":
        torch.set_num_threads(1)  # small model: one thread is as fast, and far faster on busy cores
    try:
        with connect(warehouse) as con:
            model = train_sasrec(con, dataset, params)
    finally:
        torch.set_num_threads(threads)
    save(model, out)
    return {
        "path": str(out),
        "steps": model.steps,
        "best_step": model.best_step,
        "final_loss": model.losses[-1] if model.losses else None,
    }
