"""IIRG's question at CPU scale: does a SID transformer (TIGER's T5 or the SID-Llama) gain from
IIRG's samples?

Trains the model (--model tiger: T5, tiger.py; sid-llama: decoder-only, tiger_llama.py) on
next-item sequences alone and with IIRG's collaborative + semantic samples as weighted
(item -> neighbour) pairs (the build's SID targets and loss weights), same steps and seeds, and
evaluates both on ALL test users:
NDCG@10 / Recall@10 mean ± std over seeds and the paired bootstrap 95% CI of IIRG minus
next-item (per-user metric averaged over seeds), per group:
- IIRG's one-hop groups (memorization = target among C(u), the top-50 successors of the
  history in the transitions snapshot the test may see; non-memorization = the rest);
- which relation covers the target: one-hop (= memorization), else multi-hop co-occurrence
  (target among the history items' collaborative neighbours), else semantic (among their
  semantic neighbours), else none; neighbour lists as IIRG's samples give them (top-n of the
  build the test may see).
Validation-clean as `hoprec compare`: the models train on the validation-clean build (strict
co-occurrence) and the train split, and validation NDCG@10 picks their checkpoint.

    HOPREC_HOME=... python bench/iirg_question.py --model sid-llama --seeds 0 1 2 3 4 \
        --steps 6000 --evals 12 --history 20 --jobs 1 --build-id ...   (the given build)
(needs a warehouse with the data stages done: `hoprec demo --llm-steps 0`)
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from hoprec.flows.instructions import validation_clean_build
from hoprec.tasks.data.sequences import n_items, user_histories
from hoprec.tasks.data.warehouse import connect, resolve, run
from hoprec.tasks.evaluation.evaluate import evaluate
from hoprec.tasks.evaluation.metrics import paired_bootstrap
from hoprec.tasks.llm.train import find_build
from hoprec.tasks.recommenders import tiger, tiger_llama, tiger_llama_train
from hoprec.tasks.recommenders.baselines import relation_matrix
from hoprec.tasks.recommenders.tiger_data import iirg_pairs, warehouse_codes, warehouse_sequences

CONDITIONS = ("next-item", "iirg")
GROUPS = (
    "all",
    "memorization",
    "non-memorization",
    *(f"cover:{c}" for c in ("one-hop", "co-occurrence", "semantic", "none")),
)


def load_data(wh: str, dataset: str, build_id: str | None) -> dict[str, Any]:
    """Everything the workers need, read once (DuckDB: one process)."""
    with connect(wh) as con:
        given = find_build(con, dataset, build_id)
    if given["audit"]["mode"] == "validation":
        raise SystemExit(
            f"the newest build {given['build_id']} is a validation-clean twin: pass the build "
            "the test may see with --build-id (its co-occurrence lists group the test users)"
        )
    clean = validation_clean_build(dataset, wh, given)
    with connect(wh) as con:
        n = n_items(con, dataset)
        trans_id = run(
            con, "instructions/latest_snapshot", {"dataset": dataset, "kind": "transitions"}
        ).fetchall()[0][0]
        users, seqs = warehouse_sequences(con, dataset)
        return {
            "codes": warehouse_codes(con, dataset, clean["sid_version"]),
            "users": users,
            "seqs": seqs,
            "valid": user_histories(con, dataset, "valid"),
            "test": user_histories(con, dataset, "test"),
            "pairs": iirg_pairs(clean["path"]),
            "test_pairs": {
                t: iirg_pairs(given["path"], (t,)) for t in ("collaborative", "semantic")
            },
            "transitions": relation_matrix(con, "transitions", int(trans_id), n),
            "builds": (clean["build_id"], given["build_id"]),
            "transitions_id": int(trans_id),
        }


def train_and_score(args: tuple[dict[str, Any], str, int, Any]) -> dict[str, Any]:
    """One (condition, seed): train with validation selection, score every test user."""
    data, cond, seed, params = args
    torch.set_num_threads(1)
    c0 = time.process_time()
    vu, vh, vt = data["valid"]
    tu, th, _ = data["test"]
    pairs = data["pairs"] if cond == "iirg" else ()
    if isinstance(params, tiger_llama.TigerParams):  # no user tokens
        model = tiger_llama_train.train_tiger(
            data["seqs"], data["codes"], params, valid=(vh, vt), pairs=pairs
        )
        s = tiger_llama.score(model, th)
    else:
        model = tiger.train_tiger(
            data["seqs"],
            data["codes"],
            params,
            valid=(vh, vt, vu),
            users=data["users"],
            pairs=pairs,
        )
        s = tiger.score(model, th, users=tu)
    print(f"done {cond} seed {seed}: valid {model.valid}, best {model.best_step}", flush=True)
    return {
        "cond": cond,
        "seed": seed,
        "scores": s,
        "valid": model.valid,
        "best": model.best_step,
        "cpu": time.process_time() - c0,
    }


def coverage(data: dict[str, Any], history: int, memo: np.ndarray) -> dict[str, np.ndarray]:
    """Which relation covers each test target: one-hop, else co-occurrence, else semantic."""
    _, hists, targets = data["test"]
    nb = {t: {} for t in data["test_pairs"]}
    for t, pairs in data["test_pairs"].items():
        for a, b, _ in pairs:
            nb[t].setdefault(a, set()).add(b)

    def covered(t: str) -> np.ndarray:
        return np.array(
            [
                any(y in nb[t].get(int(x), ()) for x in np.asarray(h)[-history:])
                for h, y in zip(hists, targets)
            ]
        )

    cooc = covered("collaborative") & ~memo
    sem = covered("semantic") & ~memo & ~cooc
    return {"one-hop": memo, "co-occurrence": cooc, "semantic": sem, "none": ~(memo | cooc | sem)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml100k")
    ap.add_argument("--warehouse", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", choices=("tiger", "sid-llama"), default="tiger")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--evals", type=int, default=2, help="validation checks (evenly spaced)")
    ap.add_argument("--eval-users", type=int, default=300, help="valid users for selection")
    ap.add_argument("--history", type=int, default=None, help="default: the model's")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--build-id", default=None, help="the given (test-visible) build")
    ap.add_argument("--save", default=None, help="write every run's test scores here (.npz)")
    a = ap.parse_args()
    wall, cpu0 = time.perf_counter(), time.process_time()
    wh = str(resolve(a.warehouse))
    data = load_data(wh, a.dataset, a.build_id)
    mod = tiger_llama if a.model == "sid-llama" else tiger
    a.history = a.history or mod.TigerParams().history
    params = {
        s: mod.TigerParams(
            max_steps=a.steps,
            warmup=min(100, a.steps // 5),
            eval_every=max(1, a.steps // a.evals),
            eval_users=a.eval_users,
            history=a.history,
            seed=s,
            device="cpu",
        )
        for s in a.seeds
    }
    jobs = [(data, c, s, params[s]) for s in a.seeds for c in CONDITIONS]
    with ProcessPoolExecutor(a.jobs) as pool:
        results = list(pool.map(train_and_score, jobs))
    if a.save:
        np.savez_compressed(a.save, **{f"{r['cond']}-{r['seed']}": r["scores"] for r in results})
    _, hists, targets = data["test"]
    per: dict[str, dict[str, list[np.ndarray]]] = {
        c: {"ndcg@10": [], "recall@10": []} for c in CONDITIONS
    }
    memo = None
    for r in results:
        ev = evaluate(
            a.dataset, "test", hists, targets, {"m": r["scores"]}, data["transitions"], a.history
        )
        memo = np.array(ev.memorization)
        for m in per[r["cond"]]:
            per[r["cond"]][m].append(np.array(ev.per_user["m"][m]))
    assert memo is not None
    groups = {"all": np.ones(len(targets), bool), "memorization": memo, "non-memorization": ~memo}
    groups |= {f"cover:{k}": v for k, v in coverage(data, a.history, memo).items()}
    lines = [
        f"{'SID-Llama' if a.model == 'sid-llama' else 'TIGER (T5)'} on {a.dataset}, "
        f"{len(targets)} test users, seeds {a.seeds}, {a.steps} "
        f"steps of {params[a.seeds[0]].batch_size}, history {a.history}; IIRG pairs: "
        f"{len(data['pairs'])} "
        f"(clean build {data['builds'][0]}; coverage from {data['builds'][1]}, transitions "
        f"snapshot {data['transitions_id']})",
        "",
        "| group | users | metric | next-item (mean ± std) | IIRG (mean ± std) "
        "| IIRG - next-item [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for g, mask in groups.items():
        for m in ("ndcg@10", "recall@10"):
            cells = []
            for c in CONDITIONS:
                v = [float(x[mask].mean()) for x in per[c][m]]
                cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f}")
            diff = np.mean(per["iirg"][m], 0)[mask] - np.mean(per["next-item"][m], 0)[mask]
            d, lo, hi = paired_bootstrap(diff)
            lines.append(
                f"| {g} | {int(mask.sum())} | {m} | {cells[0]} | {cells[1]} "
                f"| {d:+.4f} [{lo:+.4f}, {hi:+.4f}] |"
            )
    lines.append("")
    for r in sorted(results, key=lambda r: (r["cond"], r["seed"])):
        lines.append(
            f"- {r['cond']} seed {r['seed']}: valid NDCG@10 {r['valid']}, best step "
            f"{r['best']}, worker CPU {r['cpu']:.0f} s"
        )
    lines.append(
        f"- total: wall {time.perf_counter() - wall:.0f} s, main-process CPU "
        f"{time.process_time() - cpu0:.0f} s, workers CPU {sum(r['cpu'] for r in results):.0f} s"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
