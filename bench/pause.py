"""PauseRec sweep: k learned <pause> tokens against plain SFT (k = 0), on a real build.

    HOPREC_HOME=... python bench/pause.py [--dataset ml100k] [--pauses 0,1,2,4] [--steps 60]
                                          [--batch-size 8] [--users 200] [--seeds 0]
                                          [--base smollm2-135m-instruct-gguf] [--threads N]

Needs a warehouse with an instruction build (`hoprec demo --llm-steps 0`). Every k trains the
same LoRA run (same base, seed, steps, batches: the next-item samples of the newest build, which
read the train split only) but for the pause tokens, then ranks the same validation users with
trie-constrained 20-beam search after its pauses. Printed, all from this one run:
- training tokens/s and target tokens/s (the loop's own log), and their ratio to k = 0;
- inference users/s of the beam search, and its ratio to k = 0;
- validation NDCG@10 and Recall@10 (mean over seeds), and the paired bootstrap 95% interval of
  NDCG@10 minus k = 0's (per-user values averaged over seeds, users resampled).
Validation only: this is a setting being chosen, so test is never read.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hoprec.tasks.data.sequences import eval_rows, n_items, user_histories  # noqa: E402
from hoprec.tasks.data.warehouse import connect, resolve  # noqa: E402
from hoprec.tasks.evaluation.metrics import paired_bootstrap, per_user, ranked  # noqa: E402
from hoprec.tasks.llm.checkpoints import load_trained  # noqa: E402
from hoprec.tasks.llm.finetune import TrainParams, train_llm  # noqa: E402
from hoprec.tasks.llm.prompts import PromptForm, item_labels  # noqa: E402
from hoprec.tasks.llm.scoring import llm_scorer  # noqa: E402
from hoprec.tasks.llm.train import find_build  # noqa: E402
from hoprec.tasks.sids.store import all_sid_tokens  # noqa: E402


def run_one(
    args: argparse.Namespace, build: dict, data: dict, k: int, seed: int, out: Path
) -> dict:
    """Train with k pauses, then score the validation users; its figures."""
    params = TrainParams(
        base=args.base,
        tasks=("next-item",),
        max_steps=args.steps,
        batch_size=args.batch_size,
        seed=seed,
        device="cpu",
        save_every=0,
        log_every=max(1, args.steps // 5),
        pause_tokens=k,
    )
    res = train_llm(build["path"], data["sid_tokens"], params, out / f"k{k}-s{seed}")
    model, tok, _ = load_trained(out / f"k{k}-s{seed}", "cpu", merge=True)
    timings: dict[str, float] = {}
    scorer = llm_scorer(
        model,
        tok,
        data["sids"],
        data["labels"],
        data["n_items"],
        history=build["params"]["history"],
        num_beams=20,
        timings=timings,
        form=PromptForm(pauses=k),
    )
    with torch.inference_mode():
        scores = scorer(data["histories"])
    ranks, _ = ranked(scores, data["targets"], data["histories"], 10)
    rows = res.history
    return {
        "tokens_s": float(np.mean([r["tokens_per_s"] for r in rows])),
        "target_s": float(np.mean([r["target_tokens_per_s"] for r in rows])),
        "users_s": timings["users"] / timings["seconds"],
        **per_user(ranks),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml100k")
    ap.add_argument("--pauses", default="0,1,2,4")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--base", default="smollm2-135m-instruct-gguf")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = [int(x) for x in args.pauses.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    if 0 not in ks:
        ks = [0, *ks]
    with connect(resolve(None)) as con:
        build = find_build(con, args.dataset, None)
        _, hists, targets = user_histories(con, args.dataset, "valid")
        rows = eval_rows(len(targets), args.users, 0)
        labels, sids, _ = item_labels(
            con, args.dataset, build["sid_version"], build["params"].get("titles", True)
        )
        data = {
            "sid_tokens": all_sid_tokens(con, build["sid_version"]),
            "labels": labels,
            "sids": sids,
            "n_items": n_items(con, args.dataset),
            "histories": [hists[i] for i in rows],
            "targets": targets[rows],
        }
    print(
        f"build {build['build_id']} (history {build['params']['history']}), {len(rows)} "
        f"validation users, {args.steps} steps of {args.batch_size}, seeds {seeds}",
        flush=True,
    )
    res: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for k in ks:
                t0 = time.perf_counter()
                res.setdefault(k, []).append(run_one(args, build, data, k, seed, Path(tmp)))
                print(f"k={k} seed={seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    ref = res[0]
    base_ndcg = np.mean([r["ndcg@10"] for r in ref], axis=0)
    print("| pauses | train tokens/s | x k=0 | target tokens/s | users/s | x k=0 | "
          "valid NDCG@10 | valid R@10 | NDCG@10 - k=0 [95% CI] |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for k in ks:
        r = res[k]
        tok_s, users_s = np.mean([x["tokens_s"] for x in r]), np.mean([x["users_s"] for x in r])
        ndcg = np.mean([x["ndcg@10"] for x in r], axis=0)
        rec = np.mean([x["recall@10"] for x in r], axis=0)
        mean, lo, hi = paired_bootstrap(ndcg - base_ndcg)
        print(
            f"| {k} | {tok_s:.0f} | {tok_s / np.mean([x['tokens_s'] for x in ref]):.2f} | "
            f"{np.mean([x['target_s'] for x in r]):.0f} | {users_s:.2f} | "
            f"{users_s / np.mean([x['users_s'] for x in ref]):.2f} | {ndcg.mean():.4f} | "
            f"{rec.mean():.4f} | {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] |",
            flush=True,
        )


if __name__ == "__main__":
    main()
