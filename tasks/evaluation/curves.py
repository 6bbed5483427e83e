"""Learning curves: where an LLM stands while it trains. Each LLM's validation NDCG@10 checks
(taken every `--select-every` steps, with the training seconds and tokens fed at each) drawn
against training time and tokens, with the non-LLM models' validation NDCG@10 as horizontal
references, so a reader sees how far the curve is from SASRec and how fast it is closing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..reports import md_table
from ..settings import state_dir

Checks = Sequence[Mapping[str, float]]  # {"step", "ndcg@10", "seconds", "tokens"} each


def run_checks(run_dir: str | Path) -> list[dict[str, float]]:
    """A finished training run's validation checks (its meta file), [] without selection."""
    meta = Path(run_dir) / "hoprec_model.json"
    return list(json.loads(meta.read_text()).get("validation", [])) if meta.exists() else []


def plot_curves(
    curves: Mapping[str, Sequence[Checks]], refs: Mapping[str, float], title: str, name: str
) -> str:
    """A PNG of two panels (x = training seconds, x = tokens fed): one line per LLM and seed,
    one dashed horizontal line per reference model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, label in zip(axes, ("seconds", "tokens"), ("training seconds", "tokens fed")):
        for i, (model, runs) in enumerate(curves.items()):
            for j, checks in enumerate(runs):
                pts = [(c[key], c["ndcg@10"]) for c in checks if key in c]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, "o-", color=colors[i % len(colors)], ms=3,
                            label=model if j == 0 else None)  # fmt: skip
        for i, (model, value) in enumerate(refs.items()):
            ax.axhline(value, ls="--", lw=1, color=colors[(len(curves) + i) % len(colors)],
                       label=f"{model} (final)")  # fmt: skip
        ax.set_xlabel(label)
    axes[0].set_ylabel("validation NDCG@10")
    axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    path = Path(state_dir()) / "eval" / "curves" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def curve_rows(curves: Mapping[str, Sequence[Checks]], refs: Mapping[str, float]) -> list[dict]:
    """Per LLM (mean over seeds): its first, best and last check, and the gap of the last to the
    best reference; a table next to the figure."""
    rows: list[dict[str, Any]] = []
    best_ref = max(refs.values()) if refs else None
    for model, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        last = float(np.mean([r[-1]["ndcg@10"] for r in runs]))
        rows.append(
            {
                "model": model,
                "checks": len(runs[0]),
                "first NDCG@10": round(float(np.mean([r[0]["ndcg@10"] for r in runs])), 4),
                "best NDCG@10": round(
                    float(np.mean([max(c["ndcg@10"] for c in r) for r in runs])), 4
                ),  # fmt: skip
                "last NDCG@10": round(last, 4),
                "last at s": round(float(np.mean([r[-1].get("seconds", np.nan) for r in runs]))),
                "gap to best reference": "" if best_ref is None else round(last - best_ref, 4),
            }
        )
    return rows


def _best(checks: Checks) -> float:
    return max(c["ndcg@10"] for c in checks)


def curve_section(
    curves: Mapping[str, Sequence[Checks]], refs: Mapping[str, float], png: str, every: int
) -> list[str]:
    """The report's learning-curve section."""
    return [
        f"## Learning curves: validation NDCG@10 every {every} steps",
        "Each LLM's checks run on its `--select-users` sampled validation users; the dashed "
        "lines are the other models' final validation NDCG@10 on the compare's validation "
        f"users. Seconds count training only (not the checks). Figure: `{png}`.",
        "",
        md_table(curve_rows(curves, refs)),
        "",
    ]
