"""What a person reads after a retrain: each stage (run or skipped), the data, relation and SID
reports, the training curve, both models' validation metrics by memorization group, and the
decision with its reason. Plots are PNG files the flow attaches as images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evaluation.report import metric_rows
from ..reports import md_table, subsection
from ..settings import state_dir

STAGE_ORDER = ("ingest", "prepare", "relations", "sids", "instructions", "train", "judge")


def landing_files(landing: str) -> list[str]:
    """The files of a landing folder, sorted (hidden files and sub-folders left out)."""
    folder = Path(landing).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--landing folder {folder} does not exist")
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"--landing folder {folder} holds no file")
    return files


def training_plot(dataset: str, train: dict[str, Any]) -> str | None:
    """Loss against step of an LLM challenger (None when there is no curve)."""
    history = train.get("history") or []
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{train['model_id']}", fontsize=8)
    path = state_dir() / "retrain" / dataset / f"{train['model_id']}-loss.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def stage_rows(stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "stage": name,
            "status": "skipped (finished before)" if s["reused"] else "ran",
            "seconds": round(float(s.get("seconds") or 0.0), 1),
            "key": s["key"],
        }
        for name, s in stages.items()
    ]


def decision_lines(d: dict[str, Any]) -> list[str]:
    verdict = "**promoted**" if d["promoted"] else "**not promoted**"
    row = {
        "challenger": d["challenger_id"],
        "valid NDCG@10": round(d["challenger_ndcg"], 4),
        "champion": d["champion_id"] or "none",
        "champion NDCG@10": "-" if d["champion_ndcg"] is None else round(d["champion_ndcg"], 4),
        "gain 95% CI": ""
        if d["diff_low"] is None
        else f"[{d['diff_low']:+.4f}, {d['diff_high']:+.4f}]",
        "margin": d["margin"],
    }
    return [
        "## Decision (validation only)",
        f"The challenger is {verdict}: {d['reason']}.",
        "",
        md_table([row]),
    ]


def retrain_report(out: dict[str, Any]) -> str:
    """The retrain's markdown report."""
    st = out["stages"]
    train = st["train"]
    lines = [
        f"# Retrain of `{out['dataset']}`",
        f"Challenger: {out['challenger']} `{train['model_id']}`"
        + (f", warm start: {train['warm_start']}." if train.get("warm_start") else "."),
        "",
        "## Stages",
        md_table(stage_rows(st)),
        "",
        *decision_lines(out["decision"]),
        "",
        f"## Validation metrics ({st['judge']['eval']['users']} users, by one-hop memorization "
        "group)",
        md_table(metric_rows([{"eval": st["judge"]["eval"]}])),
    ]
    if out["pngs"].get("training"):
        lines += [
            "",
            f"Training curve: `{out['pngs']['training']}` (artifact retrain-training-plot)",
        ]
    for name in ("recommend", "ingest", "prepare", "relations", "sids", "instructions"):
        if name in st and st[name].get("report"):
            lines += ["", subsection(st[name]["report"])]
            if st[name]["reused"]:
                lines += [
                    "",
                    f"*(stage {name} was skipped: this is the report of the run that did it)*",
                ]
    return "\n".join(lines)
