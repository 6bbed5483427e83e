"""What a person sees in the Prefect UI: a retraining run started through its deployment and
done by a process worker leaves flow runs, task runs and its report artifact on the server of
`hoprec ui`, and the UI's flow-run and artifact pages render them (headless chromium).

Set HOPREC_UI_SCREENSHOTS to a folder to keep the screenshots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_ops import api, hoprec, ui_server  # noqa: F401  (ui_server is a fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# a short retraining: the embedded ml-100k, a SASRec challenger of a few steps, few users
RETRAIN = {
    "dataset": "ml100k",
    "format": "ml-100k",
    "challenger": "sasrec",
    "sasrec_steps": 30,
    "eval_users": 20,
    "recommend": False,
}


def chromium(url: str, *args: str) -> str:
    """Run headless chromium on `url` (15 s of page time, so the UI's requests finish)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]
    cmd += ["--virtual-time-budget=15000", "--hide-scrollbars", *args, url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def colours(png: Path) -> int:
    """Distinct colours of a screenshot: a blank or error page has a handful."""
    from PIL import Image

    found = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 24)
    return len(found or [])


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium")
def test_a_deployed_retraining_shows_in_the_ui(ui_server, tmp_path):  # noqa: F811
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    home, url = ui_server
    ui = url.removesuffix("/api")
    res = hoprec(home, "deploy")
    assert res.returncode == 0, res.stderr
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "retrain/retrain"]
        + ["--params", json.dumps(RETRAIN)],
        env={**os.environ, "PREFECT_API_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    res = hoprec(home, "worker", "--pool", "gpu", "--run-once", timeout=1200)
    assert res.returncode == 0, res.stderr

    async def read(client):
        runs = await client.read_flow_runs()
        top = next(r for r in runs if r.deployment_id is not None)
        ids = [r.id for r in runs]
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
        )
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[top.id]))
        )
        return top, runs, tasks, arts

    top, runs, tasks, arts = api(url, read)
    assert top.state.is_completed(), (top.name, top.state)
    assert len(runs) > 1 and len(tasks) > 1  # the stages ran as subflows with tasks
    assert all(t.state.is_completed() for t in tasks if t.state), [
        (t.name, t.state.name) for t in tasks if t.state and not t.state.is_completed()
    ]
    report = next(a for a in arts if a.key == "retrain-report")
    assert "retrain" in str(report.data).lower()

    keep = os.environ.get("HOPREC_UI_SCREENSHOTS")
    pages = {
        "flowrun": f"{ui}/runs/flow-run/{top.id}",
        "artifact": f"{ui}/artifacts/artifact/{report.id}",
    }
    for name, page in pages.items():
        png = tmp_path / f"ui_screenshot_{name}.png"
        chromium(page, f"--screenshot={png}")
        assert png.exists() and colours(png) > 200, name
        if keep:
            shutil.copy(png, Path(keep) / png.name)
    dom = chromium(pages["flowrun"], "--dump-dom")
    assert top.name in dom and "Completed" in dom
