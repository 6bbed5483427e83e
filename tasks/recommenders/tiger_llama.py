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
in training) and turns the beam's top-K into a full score matrix. Training is
tiger_llama_train.py.
IIRG's (item -> neighbour, weight) pairs, when given, are two-item windows (BOS, SID(item),
SID(neighbour); loss on the neighbour, times its weight) spread evenly over each epoch in a
second small batch per step, so the next-item windows and their order stay those of the
next-item-only run with the same seed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..devices import resolve_device
from ..llm.decoding import beam_scores, constrained_beam_search
from ..sids.trie import SidTrie
from .tiger_data import (
    sid_tokens,
    torch_threads,
)

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
