"""`hoprec batches`: the ingest batches of a dataset, and dropping one (a file loaded wrongly,
e.g. with the wrong unit) with everything it loaded, in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from hoprec.tasks.data.ingest import drop_batch_task, list_batches
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.reports import md_table, publish
from hoprec.tasks.settings import checked_name


@flow(name="drop-batch", flow_run_name="drop batch {batch_id} of {dataset}")
def drop_batch_flow(dataset: str, batch_id: int, warehouse: str | None = None) -> dict[str, Any]:
    """Remove one batch: its events, the items it last wrote, its quarantined rows, its record.
    Prepare again afterwards: prepared sequences and snapshots still hold what it loaded."""
    dropped = drop_batch_task(str(resolve(warehouse)), checked_name(dataset), batch_id)
    report = "\n".join(
        [
            f"# Dropped batch {batch_id} of `{dataset}`",
            f"`{dropped['path']}` ({dropped['kind']}): {dropped['interactions']:,} events, "
            f"{dropped['items']:,} items and {dropped['quarantine']:,} quarantined rows removed.",
            "",
            f"Run `hoprec prepare --dataset {dataset}` again: prepared data still holds them.",
        ]
    )
    publish("drop-batch-report", report, f"batch {batch_id} of {dataset} dropped")
    return {**dropped, "report": report}


def batches_command(
    action: str, dataset: str, batch_id: int | None = None, warehouse: str | None = None
) -> dict[str, Any]:
    """`hoprec batches list` (read-only, no flow run) or `hoprec batches drop BATCH_ID`."""
    if action == "drop":
        if batch_id is None:
            raise ValueError("hoprec batches drop needs a BATCH_ID")
        return drop_batch_flow(dataset=dataset, batch_id=batch_id, warehouse=warehouse)
    with connect(resolve(warehouse), read_only=True) as con:
        rows = list_batches(con, checked_name(dataset))
    for r in rows:
        r["path"] = Path(r["path"]).name
    title = f"# Ingest batches of `{dataset}`"
    return {"batches": rows, "report": f"{title}\n\n{md_table(rows)}"}
