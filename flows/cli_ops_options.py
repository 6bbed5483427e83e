"""The options of `hoprec ui`, `hoprec worker` and `hoprec deploy` (the Prefect server side);
defaults come from `hoprec.tasks.ops`, where the commands read them."""

from __future__ import annotations

import argparse

from hoprec.flows.cli_options import opt
from hoprec.tasks import defaults as ops


def ui_options(p: argparse.ArgumentParser) -> None:
    opt(p, "--port", type=int, default=ops.UI_PORT, help=f"port on {ops.UI_HOST}")


def worker_options(p: argparse.ArgumentParser) -> None:
    pools = ", ".join(f"{k}: {v}" for k, v in ops.POOLS.items())
    opt(p, "--pool", choices=tuple(ops.POOLS), default="cpu", help=f"work pool ({pools})")
    opt(p, "--name", help="worker name (default: Prefect picks one)")
    opt(p, "--limit", type=int, help="flow runs at once (default: no limit)")
    opt(
        p,
        "--run-once",
        action="store_true",
        help="poll once, run what is due, and stop when those runs end",
    )


def deploy_options(p: argparse.ArgumentParser) -> None:
    opt(
        p,
        "--prefect-file",
        metavar="PATH",
        help="deployment file (default: infra/prefect.yaml of the checkout, or $HOPREC_REPO)",
    )
