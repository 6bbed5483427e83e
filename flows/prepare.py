"""The prepare flow: k-core, ordering, dense item index and splits, then a stats report."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hoprec.tasks import defaults
from hoprec.tasks.data.prepare import PrepareParams, prepare_task
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.reports import md_table, publish


@flow(name="prepare", flow_run_name="prepare {dataset}")
def prepare_flow(
    dataset: str,
    warehouse: str | None = None,
    k_core: int = defaults.K_CORE,
    split: str = defaults.SPLIT,
    max_history: int = 0,
    valid_start: str | None = None,
    test_start: str | None = None,
    tie_break: str = defaults.TIE_BREAK,
    tie_seed: int = 0,
    min_rating: float | None = defaults.MIN_RATING,
) -> dict[str, Any]:
    """Turn a dataset's interactions into ordered, split user sequences (tables + Parquet)."""
    params = PrepareParams(
        k_core=k_core,
        split=split,  # type: ignore[arg-type]  # PrepareParams checks it
        max_history=max_history,
        valid_start=valid_start,
        test_start=test_start,
        tie_break=tie_break,  # type: ignore[arg-type]  # PrepareParams checks it
        tie_seed=tie_seed,
        min_rating=min_rating,
    )
    result = prepare_task(str(resolve(warehouse)), dataset, params)
    result["report"] = prepare_report(result)
    publish("prepare-report", result["report"], f"prepared sequences of {dataset}")
    return result


def prepare_report(result: dict[str, Any]) -> str:
    """The markdown a person reads after prepare."""
    s = result["stats"]
    overview = [
        {
            "users": s["users"],
            "items": s["items"],
            "interactions": s["interactions"],
            "density": s["density"],
            "k-core passes": result["kcore_passes"],
        }
    ]
    lengths = [{"min": s["len_min"], **s["len_quantiles"], "max": s["len_max"]}]
    splits = [{"train": s["train_events"], "valid": s["valid_events"], "test": s["test_events"]}]
    p = result["params"]
    return "\n".join(
        [
            f"# Prepared `{result['dataset']}`",
            f"{p['k_core']}-core, split `{p['split']}`, history cap {p['max_history'] or 'none'}, "
            f"timestamp ties broken by `{p.get('tie_break', 'item')}`"
            + (
                f", ratings >= {p['min_rating']:g} only."
                if p.get("min_rating") is not None
                else "."
            ),
            "",
            md_table(overview),
            "",
            "## Sequence length",
            md_table(lengths),
            "",
            "## Events per split",
            md_table(splits),
            "",
            *tie_lines(s),
            f"Parquet: `{result['files']['sequences']}`, `{result['files']['items']}`",
        ]
    )


TIE_WARNING_SHARE = 0.1


def tie_lines(stats: dict[str, Any]) -> list[str]:
    """How many targets sit in a timestamp tie, with a warning when it is a large share: those
    targets are chosen by the tie-break rule, not by time."""
    users = max(int(stats["users"]), 1)
    rows = [
        {
            "split": s,
            "users with a tied target": stats.get(f"{s}_ties", 0),
            "share": f"{stats.get(f'{s}_ties', 0) / users:.0%}",
        }
        for s in ("valid", "test")
    ]
    lines = ["## Targets in a timestamp tie", md_table(rows), ""]
    if max(stats.get("test_ties", 0), stats.get("valid_ties", 0)) / users > TIE_WARNING_SHARE:
        lines += [
            "**Warning**: many targets share their timestamp with another event of the user, so "
            "`--tie-break` decides them (and published numbers are comparable only under the "
            "same rule; RecBole keeps the source order).",
            "",
        ]
    return lines
