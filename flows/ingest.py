"""The ingest flow: plan the files, load each as one batch, report what loaded and what did not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from hoprec.tasks import defaults
from hoprec.tasks.data.assets import EMBEDDED_FORMATS, embedded_dir
from hoprec.tasks.data.formats import TS_UNITS, generic_source
from hoprec.tasks.data.ingest import (
    IngestError,
    get_format,
    ingest_file_task,
    plan_files,
    quarantine_summary,
)
from hoprec.tasks.data.warehouse import resolve
from hoprec.tasks.reports import md_table, publish
from hoprec.tasks.settings import checked_name


def _parse_mapping(mapping: dict[str, str] | list[str] | None) -> dict[str, str]:
    if not mapping:
        return {}
    if isinstance(mapping, dict):
        return dict(mapping)
    out = {}
    for pair in mapping:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise IngestError(f"--map expects FIELD=COLUMN, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_time(value: str, option: str) -> str:
    """An ISO date or timestamp, or an error that names the option."""
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise IngestError(f"{option} {value!r} is not an ISO date or timestamp") from None
    return value


@flow(name="ingest", flow_run_name="ingest {dataset}")
def ingest_flow(
    dataset: str,
    format: str,
    paths: list[str] | None = None,
    warehouse: str | None = None,
    kind: str = "interactions",
    mapping: dict[str, str] | list[str] | None = None,
    ts_unit: str | None = None,
    delim: str | None = None,
    encoding: str | None = None,
    ts_min: str = defaults.TS_MIN,
    ts_max: str = defaults.TS_MAX,
    force: bool = False,
) -> dict[str, Any]:
    """Load interaction logs and item metadata of one dataset into the warehouse.

    Every file is one batch: good rows append (exact duplicates dropped), bad rows go to
    `quarantine` with file, line and reason, and a file already ingested is skipped. A file that
    cannot be read at all fails alone (recorded in `ingest_batches.error`); the others load.
    Returns {"files": one record a file, "quarantine": bad rows by reason, "failed": the failed
    files, "report": markdown}.
    """
    checked_name(dataset)
    fmt = get_format(format)
    window = (check_time(ts_min, "--ts-min"), check_time(ts_max, "--ts-max"))
    if encoding:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise IngestError(
                f"--encoding {encoding!r} is not a text encoding Python knows "
                "(e.g. utf-8, latin-1, cp1252, utf-16)"
            ) from None
    if ts_unit is not None and ts_unit not in TS_UNITS:
        raise IngestError(f"--ts-unit must be one of {TS_UNITS}, got {ts_unit!r}")
    if kind not in ("interactions", "items"):
        raise IngestError(f"--kind must be interactions or items, got {kind!r}")
    if not paths:
        if format not in EMBEDDED_FORMATS:
            raise IngestError(
                f"format {format} needs input paths; only {', '.join(EMBEDDED_FORMATS)} "
                "have an embedded copy"
            )
        paths = [str(embedded_dir(format))]
    override = None
    if fmt.generic:
        override = generic_source(
            fmt,
            kind,  # type: ignore[arg-type]  # checked above
            _parse_mapping(mapping),
            ts_unit or "s",
            delim,
            encoding,
        )
    elif mapping or delim:
        raise IngestError(
            f"--map and --delim are for the generic formats (csv, jsonl, parquet), not {format}"
        )
    plan = plan_files(fmt, [Path(p).expanduser() for p in paths], override)
    db = str(resolve(warehouse))
    results = [
        ingest_file_task(
            db, dataset, format, src, path, ts_unit=ts_unit, ts_window=window, force=force
        )
        for path, src in plan
    ]
    loaded = [r["batch_id"] for r in results if r["status"] == "loaded"]
    bad = quarantine_summary(db, loaded)
    report = ingest_report(dataset, format, db, results, bad)
    publish("ingest-report", report, f"ingest of {dataset} ({format})")
    failed = [r for r in results if r["status"] == "failed"]
    return {"files": results, "quarantine": bad, "failed": failed, "report": report}


def ingest_report(
    dataset: str, format: str, db: str, results: list[dict[str, Any]], bad: list[dict[str, Any]]
) -> str:
    """The markdown a person reads after an ingest."""
    total = {
        k: sum(r[k] for r in results)
        for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")
    }
    rows = [
        {
            "file": Path(r["path"]).name,
            "kind": r["kind"],
            "status": r["status"],
            "batch": r["batch_id"],
            "read": r["rows_read"],
            "loaded": r["rows_loaded"],
            "quarantined": r["rows_quarantined"],
            "duplicates": r["rows_duplicate"],
            "seconds": round(r["seconds"], 2),
            "note": r["note"],
        }
        for r in results
    ]
    parts = [
        f"# Ingest of `{dataset}` ({format})",
        f"Warehouse: `{db}`",
        "",
        f"**{total['rows_loaded']:,}** rows loaded, **{total['rows_quarantined']:,}** "
        f"quarantined, {total['rows_duplicate']:,} duplicates dropped, from "
        f"{sum(r['status'] == 'loaded' for r in results)} new and "
        f"{sum(r['status'] == 'skipped' for r in results)} skipped file(s).",
        "",
        md_table(rows),
    ]
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        parts += [
            "",
            f"**{len(failed)} file(s) failed** and loaded nothing; the others loaded. Rerun "
            "after fixing them (a failed file is not marked as ingested):",
            "",
            *(f"- `{r['path']}`: {r['note']}" for r in failed),
        ]
    if bad:
        parts += [
            "",
            "## Quarantined rows by reason",
            "Inspect with `SELECT * FROM quarantine WHERE batch_id = ...`.",
            "",
            md_table(bad),
        ]
    return "\n".join(parts)
