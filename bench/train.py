"""Training benchmark: hoprec's fine-tuning loop vs a plain transformers loop, tokens/s.

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
from hoprec.tasks.llm.prompts import PROMPTS  # noqa: E402
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
    ref, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "train.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
        for r in range(args.repeat):
            ref.append(plain_loop(params, messages, args.steps))
            ours.append(hoprec_loop(params, path, args.steps, str(Path(tmp) / f"run{r}")))
            print(
                f"run {r + 1}: plain transformers loop {ref[-1]:,.0f} tokens/s, "
                f"hoprec train_llm {ours[-1]:,.0f} tokens/s",
                flush=True,
            )
    a, b = statistics.median(ref), statistics.median(ours)
    print(
        f"\nmodel {args.model}, batch {args.batch_size}, {args.steps} timed steps after "
        f"{args.steps} warm-up, device {resolve_device(args.device)}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"plain transformers loop: {a:,.0f} tokens/s (median of {len(ref)})")
    print(f"hoprec train_llm:        {b:,.0f} tokens/s (median of {len(ours)})")
    print(f"ratio hoprec / plain:    {b / a:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
