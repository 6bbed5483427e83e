"""Readable reports: markdown tables for Prefect artifacts and the terminal."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    """A cell: thousands separators for ints, 4 significant digits for floats."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    """A markdown table of `rows` (dicts), in `columns` order."""
    if not rows:
        return "_(none)_"
    cols = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def png_data_uri(path: str | Path) -> str | None:
    """A PNG as a data: URI, so a markdown artifact shows the plot itself in the UI."""
    p = Path(path)
    if not p.exists():
        return None
    return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()


def _in_flow_run() -> bool:
    from prefect.context import get_run_context

    try:
        get_run_context()
    except Exception:
        return False
    return True


def publish(key: str, markdown: str, description: str) -> None:
    """Attach a markdown artifact to the current flow run (a no-op outside one)."""
    from prefect.artifacts import create_markdown_artifact

    if _in_flow_run():
        create_markdown_artifact(key=key, markdown=markdown, description=description)


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """Attach a table artifact (sortable in the UI) to the current flow run, if any."""
    from prefect.artifacts import create_table_artifact

    if _in_flow_run():
        create_table_artifact(key=key, table=[dict(r) for r in rows], description=description)


def publish_plot(key: str, png: str | Path, description: str) -> None:
    """Attach a PNG to the current flow run, as a markdown artifact that shows the image. The
    report itself stays plain text, so the UI and the terminal read the same words."""
    uri = png_data_uri(png)
    if uri:
        publish(key, f"![{description}]({uri})\n\n`{png}`", description)


def subsection(markdown: str) -> str:
    """A report one heading level down, to stand inside a larger report."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())
