"""The leakage audit every instruction build runs: no held-out target in any sample, relation
or SID statistic. It checks the Parquet as written (not the code that wrote it), recounts the
relation pairs the samples use from the allowed events only, and fails loudly with a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import pyarrow.parquet as pq

from ..data.warehouse import run
from ..reports import md_table

HELD_OUT = {"test": ["test"], "validation": ["test", "valid"]}


class LeakageError(RuntimeError):
    """An instruction build uses a held-out target; the message is the audit report."""


@dataclass
class AuditResult:
    mode: str
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c["violations"] == 0 for c in self.checks)


def _one(cur: duckdb.DuckDBPyConnection) -> tuple:
    """The single row of a check (fetched whole: an open result blocks `unregister`)."""
    return cur.fetchall()[0]


def _check(result: AuditResult, name: str, what: str, row: tuple) -> None:
    checked, violations, example = row
    result.checks.append(
        {
            "check": name,
            "verifies": what,
            "checked": int(checked or 0),
            "violations": int(violations or 0),
            "example": example or "",
            "status": "pass" if not violations else "FAIL",
        }
    )


def audit_build(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    samples_path: str,
    sources: dict[str, Any],
    neighbors: int,
    mode: Literal["test", "validation"] = "test",
) -> AuditResult:
    """Run every check; the caller decides to raise (see `enforce`)."""
    if mode not in HELD_OUT:
        raise ValueError(f"audit mode must be 'test' or 'validation', got {mode!r}")
    held = HELD_OUT[mode]
    result = AuditResult(mode)
    con.register("audit_samples", pq.read_table(samples_path))
    try:
        _check(
            result,
            "next-item events",
            f"every (user, position, item) in a next-item sample is a real event that is "
            f"not a {' or '.join(held)} target",
            _one(run(con, "audit/sample_events", {"dataset": dataset, "held_out": held})),
        )
        for task, table, key in (
            ("collaborative", "cooccurrence", "cooccurrence_snapshot"),
            ("semantic", "semantic_neighbors", "semantic_snapshot"),
        ):
            _check(
                result,
                f"{task} samples = snapshot",
                f"each {task} sample is exactly its item's top-{neighbors} in snapshot "
                f"#{sources[key]}",
                _one(
                    run(
                        con,
                        "audit/samples_match_snapshot",
                        {"task": task, "snapshot_id": sources[key], "n": neighbors},
                        table=table,
                    )
                ),
            )
        _relation_checks(con, dataset, sources, neighbors, held, result)
        _sid_check(con, dataset, sources["sid_version"], result)
    finally:
        con.unregister("audit_samples")
    return result


def _relation_checks(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    sources: dict[str, Any],
    neighbors: int,
    held: list[str],
    result: AuditResult,
) -> None:
    records = run(
        con,
        "relations/snapshot_record",
        {"snapshot_id": sources["cooccurrence_snapshot"], "dataset": dataset},
    ).fetchall()
    rec = records[0] if records else None
    if rec is None or rec[0] != "cooccurrence":
        _check(
            result,
            "co-occurrence snapshot",
            "the snapshot exists for this dataset",
            (1, 1, f"#{sources['cooccurrence_snapshot']}"),
        )
        return
    _, as_of, params_json = rec
    p = json.loads(params_json)
    _check(
        result,
        "co-occurrence counts",
        f"stored counts of the pairs used equal a recount over events before "
        f"{as_of or 'the end'} without {' or '.join(held)} targets "
        f"(W={p['window']}, {'directed' if p['directed'] else 'symmetric'})",
        _one(
            run(
                con,
                "audit/cooccurrence_recount",
                {
                    "dataset": dataset,
                    "held_out": held,
                    "as_of": str(as_of) if as_of else "infinity",
                    "snapshot_id": sources["cooccurrence_snapshot"],
                    "n": neighbors,
                    "window": p["window"],
                    "directed": p["directed"],
                },
            )
        ),
    )
    sem = run(
        con,
        "relations/snapshot_record",
        {"snapshot_id": sources["semantic_snapshot"], "dataset": dataset},
    ).fetchall()
    ok = bool(sem) and sem[0][0] == "semantic"
    _check(
        result,
        "semantic snapshot",
        "semantic neighbours come from item-text embeddings only (no interaction enters them)",
        (1, 0 if ok else 1, "" if ok else "not semantic"),
    )


def _sid_check(
    con: duckdb.DuckDBPyConnection, dataset: str, sid_version: str, result: AuditResult
) -> None:
    from ..sids.versions import sid_provenance

    text_only, detail = sid_provenance(con, dataset, sid_version)
    _check(
        result,
        "semantic IDs",
        f"SIDs are quantized item-text embeddings only ({detail})",
        (1, 0 if text_only else 1, "" if text_only else detail),
    )


def audit_report(result: AuditResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    return "\n".join(
        [
            f"# Leakage audit: {verdict} (mode `{result.mode}`)",
            "",
            md_table(
                result.checks, ["check", "status", "verifies", "checked", "violations", "example"]
            ),
        ]
    )


def enforce(result: AuditResult) -> None:
    """Raise LeakageError (failing the flow) when any check found a violation."""
    if not result.passed:
        raise LeakageError(audit_report(result))
