"""What the `hoprec` command prints after each subcommand: the flow's report, as markdown."""
from __future__ import annotations

import argparse
from typing import Any


def render(args: argparse.Namespace, result: Any) -> str:
    """The report a person reads in the terminal after a command."""
    if isinstance(result, str):
        return result
    if args.command == "ingest":
        from flows.ingest import ingest_report
        from tasks.warehouse import resolve

        return ingest_report(args.dataset, args.format, str(resolve(args.warehouse)), result, [])
    if args.command == "prepare":
        from flows.prepare import prepare_report

        return prepare_report(result)
    if args.command == "relations":
        from flows.relations import relations_report

        return relations_report(args.dataset, result)
    if args.command == "backfill":
        from flows.backfill import backfill_report

        dates = sorted({r["as_of"] for r in result if r["as_of"]})
        return backfill_report(args.dataset, dates, args.every, result)
    if args.command == "baselines":
        from flows.evaluate import baselines_report

        return baselines_report(result, embed_png=False)
    if args.command == "sids":
        from tasks.sids import sids_report

        return result["report"] if "assigned" in result else sids_report(result, embed_png=False)
    if args.command == "instructions":
        from flows.instructions import instructions_report

        return instructions_report(result)
    return result["report"]
