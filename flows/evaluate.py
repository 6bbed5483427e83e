"""The baselines flow: popularity, one-hop Markov, co-occurrence kNN and SASRec, evaluated on
the same split with full-catalogue metrics per IIRG memorization group and MemGen category."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.relations import relations_flow
from tasks.config import state_dir
from tasks.evaluation import (MODELS, EvalResult, evaluate_task, gain_table, metric_table,
                              train_sasrec_task)
from tasks.reports import md_table, png_data_uri, publish
from tasks.warehouse import resolve


@flow(name="baselines", flow_run_name="baselines {dataset} on {split}")
def baselines_flow(dataset: str, warehouse: str | None = None, split: str = "test",
                   models: list[str] | None = None, sasrec_steps: int = 2000, seed: int = 0,
                   history: int = 20) -> dict[str, Any]:
    """Train and evaluate the baselines; the report shows where each model's hits come from."""
    from tasks.sasrec import SASRecParams

    models = list(models or MODELS)
    bad = sorted(set(models) - set(MODELS))
    if bad or split not in ("valid", "test"):
        raise ValueError(f"unknown model(s) {bad} or split {split!r}; models: {', '.join(MODELS)}")
    wh = str(resolve(warehouse))
    # validation is scored with relations that never saw a validation target (strict)
    snaps = relations_flow(dataset=dataset, warehouse=warehouse, strict=split == "valid")
    ids = {r["kind"]: r["snapshot_id"] for r in snaps}
    sasrec = None
    if "sasrec" in models:
        out = state_dir() / "models" / dataset / f"sasrec-seed{seed}-{sasrec_steps}.pt"
        out.parent.mkdir(parents=True, exist_ok=True)
        sasrec = train_sasrec_task(wh, dataset, SASRecParams(max_steps=sasrec_steps, seed=seed),
                                   str(out))
    result = evaluate_task(wh, dataset, split, models, ids, sasrec and sasrec["path"], history)
    result |= {"sasrec": sasrec, "png": plot_groups(result)}
    publish("baselines-report", baselines_report(result), f"baselines on {dataset} ({split})")
    return result


def plot_groups(result: dict[str, Any], k: int = 10) -> str:
    """NDCG@k per model for all / memorization / non-memorization users, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ("all", "memorization", "non-memorization")
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    cell = {(r["model"], r["group"]): r["value"] for r in result["rows"]
            if r["metric"] == "ndcg" and r["k"] == k}
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(groups)
    for i, g in enumerate(groups):
        ax.bar([m + i * width for m in range(len(models))],
               [cell.get((m, g), 0) for m in models], width, label=f"{g} ({result['group_sizes'][g]})")
    ax.set_xticks([m + width for m in range(len(models))], models)
    ax.set_ylabel(f"NDCG@{k}")
    ax.legend(fontsize=8)
    ax.set_title(f"{result['dataset']} {result['split']}: NDCG@{k} by one-hop memorization group")
    path = state_dir() / "eval" / result["eval_id"] / "groups.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def baselines_report(result: dict[str, Any], embed_png: bool = True) -> str:
    """Metrics per model and group, gains over the reference, MemGen categories, plot."""
    sasrec = result.get("sasrec")
    res = EvalResult(**{k: result[k] for k in EvalResult.__dataclass_fields__})
    reference = "sasrec" if sasrec else "popularity"
    memgen = [{"category": g.split(":", 1)[1], "users": n} for g, n in res.group_sizes.items()
              if g.startswith("memgen:")]
    recall = {(r["model"], r["group"]): r["value"] for r in res.rows
              if r["metric"] == "recall" and r["k"] == 10 and r["group"].startswith("memgen:")}
    for row in memgen:
        for m in dict.fromkeys(r["model"] for r in res.rows):
            row[f"{m} R@10"] = recall.get((m, f"memgen:{row['category']}"))
    png = result["png"]
    uri = png_data_uri(png) if embed_png else None
    lines = [f"# Baselines on `{res.dataset}` ({res.split}, {res.users:,} users)",
             f"Evaluation `{res.eval_id}`; full-catalogue ranking, history items excluded; "
             "groups: IIRG one-hop memorization (target among the top-50 training successors "
             "of the last 20 input items).", "", md_table(metric_table(res)), "",
             f"## NDCG@10 gain over {reference}, and the share each group carries",
             md_table(gain_table(res, reference)), "",
             "## MemGen instance categories (Recall@10)", md_table(memgen), ""]
    if sasrec:
        lines.append(f"SASRec: {sasrec['steps']} steps, best step {sasrec['best_step']}, "
                     f"final loss {sasrec['final_loss']:.3f}.")
    if uri:
        lines += ["", f"![NDCG by group]({uri})"]
    lines.append(f"\nPlot: `{png}`")
    return "\n".join(lines)
