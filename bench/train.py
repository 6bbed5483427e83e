"""Training benchmark: hoprec's fine-tuning loop vs a plain transformers loop, tokens/s and
useful targets/s (next-item predictions trained per second).

    python bench/train.py [--model smollm2-135m-instruct-gguf] [--steps 6] [--batch-size 8]
                          [--history 10] [--repeat 2] [--threads N] [--device auto]

Both loops train the same LoRA model (base + SID tokens, `tasks.training.prepare_model`) on
the same batches (`encode_batch` of the same samples in the same order), with AdamW, gradient
clipping and the cosine schedule. The reference is the loop a transformers user writes:
`model(input_ids, attention_mask, labels=labels).loss.backward()` (full-vocabulary logits at
every position, unweighted mean). hoprec's loop is `tasks.training.train_llm` itself, end to end
but for model loading (it reads the Parquet, tokenizes batch by batch, weights the loss,
checkpoints). Tokens = non-padding tokens fed. Each timed run follows `--steps` warm-up steps;
runs alternate (reference, hoprec) `--repeat` times and the medians are compared.

Samples: synthetic next-item prompts like the demo's (the last `--history` items as 4-token
SIDs, no titles), so the benchmark needs no warehouse.

Two ratios against the plain loop, measured in the same run:
- tokens/s of hoprec's generative loop (the same samples, so the same useful targets per token);
- useful targets/s: one next-item prediction per sample for both generative loops, against
  SimGR's all-position form (`--objective simgr`, tasks/llm/simgr.py) on synthetic user sequences
  of the same items, where one causal pass over a `--history`-item window trains every position.
  Target: >= 2x the plain loop's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hoprec.tasks.devices import resolve_device  # noqa: E402
from hoprec.tasks.llm.finetune import (  # noqa: E402
    TrainParams,
    encode_batch,
    prepare_model,
    train_llm,
)
from hoprec.tasks.llm.instructions import SCHEMA  # noqa: E402
from hoprec.tasks.llm.prompts import PROMPTS, encode_sample  # noqa: E402
from hoprec.tasks.llm.samples import sample_order  # noqa: E402

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abc" for i in range(48)] + [f"<d_{i}>" for i in range(6)]


def synthetic_samples(n: int, history: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)

    def sid() -> str:
        a, b, c = rng.integers(0, 48, 3)
        return f"[<a_{a}><b_{b}><c_{c}><d_{rng.integers(0, 6)}>]"

    rows = []
    for i in range(n):
        prompt = PROMPTS["next-item"].format(input="\n".join(sid() for _ in range(history)))
        rows.append(
            {
                "task": "next-item",
                "key": f"b:{i}",
                "user_idx": i,
                "input_items": [1],
                "input_pos": [0],
                "target_items": [2],
                "target_pos": [1],
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": sid()},
                ],
                "loss_weight": 1.0,
            }
        )
    return rows


def plain_loop(params: TrainParams, messages: list, steps: int) -> float:
    """tokens/s of the textbook loop over the same model and batches (after warm-up)."""
    from transformers import get_cosine_schedule_with_warmup

    dev = resolve_device(params.device)
    torch.manual_seed(params.seed)
    model, tok, _ = prepare_model(params, SID_TOKENS)
    model.to(dev).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=params.learning_rate)
    sched = get_cosine_schedule_with_warmup(
        opt, int(params.warmup * params.max_steps), params.max_steps
    )
    tokens, t0 = 0, 0.0
    for step in range(params.max_steps):
        if step == steps:  # the first `steps` steps are warm-up
            tokens, t0 = 0, time.perf_counter()
        idx = sample_order(len(messages), params.seed, step * params.batch_size, params.batch_size)
        b = encode_batch(
            tok, [messages[i] for i in idx], [1.0] * len(idx), params.max_len, tok.pad_token_id
        )
        out = model(
            input_ids=b["input_ids"].to(dev),
            attention_mask=b["attention_mask"].to(dev),
            labels=b["labels"].to(dev),
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(b["attention_mask"].sum())
    return tokens / (time.perf_counter() - t0)


def hoprec_loop(params: TrainParams, path: str, steps: int, out: str) -> float:
    res = train_llm(path, SID_TOKENS, params, out)
    return res.history[-1]["tokens_per_s"]  # the window after the warm-up steps


def simgr_loop(params: TrainParams, path: str, history: int, out: str) -> tuple[float, float]:
    """(tokens/s, targets/s) of SimGR's all-position training on synthetic sequences: 500 items
    with distinct 4-token SIDs, 200 users of 20-60 events."""
    from dataclasses import replace

    from hoprec.tasks.llm.simgr import SimgrInputs

    rng = np.random.default_rng(0)
    codes = {tuple(int(c) for c in rng.integers(0, 48, 3)) for _ in range(2000)}
    items = {
        i + 1: f"<a_{a}><b_{b}><c_{c}><d_0>" for i, (a, b, c) in enumerate(sorted(codes)[:500])
    }
    seqs = [rng.integers(1, len(items) + 1, int(rng.integers(20, 61))) for _ in range(200)]
    p = replace(params, objective="simgr")
    inputs = SimgrInputs(item_sids=items, sequences=seqs, window=history)
    res = train_llm(path, SID_TOKENS, p, out, simgr=inputs)
    last = res.history[-1]
    return last["tokens_per_s"], last["target_tokens_per_s"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="smollm2-135m-instruct-gguf")
    ap.add_argument("--steps", type=int, default=6, help="warm-up steps, then as many timed")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--history", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = TrainParams(
        base=args.model,
        max_steps=2 * args.steps,
        batch_size=args.batch_size,
        save_every=0,
        log_every=args.steps,
        device=args.device,
    )
    rows = synthetic_samples(args.batch_size * 2 * args.steps, args.history)
    messages = [r["messages"] for r in rows]
    ref, ours, simgr = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "train.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
        for r in range(args.repeat):
            ref.append(plain_loop(params, messages, args.steps))
            ours.append(hoprec_loop(params, path, args.steps, str(Path(tmp) / f"run{r}")))
            simgr.append(simgr_loop(params, path, args.history, str(Path(tmp) / f"simgr{r}")))
            print(
                f"run {r + 1}: plain transformers loop {ref[-1]:,.0f} tokens/s, "
                f"hoprec train_llm {ours[-1]:,.0f} tokens/s, SimGR {simgr[-1][0]:,.0f} tokens/s "
                f"({simgr[-1][1]:,.1f} targets/s)",
                flush=True,
            )
        tok = _tokenizer(params)
        lengths = [sum(map(len, encode_sample(tok, m))) for m in messages]
    per_sample = float(np.mean(lengths))  # tokens of one generative sample (one target)
    a, b = statistics.median(ref), statistics.median(ours)
    s_tok, s_tgt = statistics.median(t for t, _ in simgr), statistics.median(g for _, g in simgr)
    print(
        f"\nmodel {args.model}, batch {args.batch_size}, {args.steps} timed steps after "
        f"{args.steps} warm-up, device {resolve_device(args.device)}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"plain transformers loop: {a:,.0f} tokens/s (median of {len(ref)})")
    print(f"hoprec train_llm:        {b:,.0f} tokens/s (median of {len(ours)})")
    print(f"ratio hoprec / plain:    {b / a:.2f}  (target >= 0.9)")
    print(f"SimGR all positions:     {s_tok:,.0f} tokens/s (median of {len(simgr)})")
    print(
        f"useful targets/s (next-item predictions trained): plain {a / per_sample:.2f}, hoprec "
        f"generative {b / per_sample:.2f}, SimGR {s_tgt:.2f} ({per_sample:.0f} tokens a sample)"
    )
    print(
        f"ratio of useful targets/s: generative {b / a:.2f}, SimGR {s_tgt / (a / per_sample):.2f}"
        "  (target >= 2)"
    )


def _tokenizer(params: TrainParams) -> object:
    from hoprec.tasks.llm.base import load_tokenizer

    tok = load_tokenizer(params.base)
    tok.add_tokens(SID_TOKENS)
    return tok


if __name__ == "__main__":
    main()
