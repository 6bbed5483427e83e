"""The report of `hoprec compare`: every model's figures as mean +- std over seeds, per IIRG
one-hop group, MemGen category and SID-prefix memorization, the gain over SASRec split by
group, the fusion parameters, and a plot."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from tasks.config import state_dir
from tasks.reports import md_table, png_data_uri

GROUPS = ("all", "memorization", "non-memorization")
COLUMNS = (("recall", 10), ("ndcg", 10), ("recall", 20), ("mrr", 0), ("coverage", 10),
           ("memorization_rate", 5))


def cells(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], list[float]]:
    """(model, group, metric, k) -> one value per seed."""
    out: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for r in runs:
        for row in r["eval"]["rows"]:
            out[(row["model"], row["group"], row["metric"], row["k"])].append(row["value"])
    return out


def mean_std(values: list[float] | None, digits: int = 4) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _models(runs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["model"] for row in runs[0]["eval"]["rows"]))


def metric_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    label = {"recall": "R", "ndcg": "NDCG", "mrr": "MRR", "coverage": "cov",
             "memorization_rate": "mem. rate"}
    return [{"model": m, "group": g, "users": sizes[g],
             **{f"{label[met]}{'@' + str(k) if k else ''}": mean_std(c.get((m, g, met, k)))
                for met, k in COLUMNS}}
            for g in GROUPS for m in _models(runs)]


def gain_rows(runs: list[dict[str, Any]], reference: str = "sasrec") -> list[dict[str, Any]]:
    """NDCG@10 gain over `reference` per group (mean +- std over seeds) and the share of the
    total gain each group carries (users x gain / all users x gain)."""
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    out = []
    for m in _models(runs):
        if m == reference:
            continue
        gains = {g: np.array(c[(m, g, "ndcg", 10)]) - np.array(c[(reference, g, "ndcg", 10)])
                 for g in GROUPS}
        total = gains["all"].mean() * sizes["all"]
        row: dict[str, Any] = {"model": m}
        row.update({f"gain {g}": mean_std(list(gains[g])) for g in GROUPS})
        row.update({f"share {g}": f"{gains[g].mean() * sizes[g] / total:.0%}" if total else ""
                    for g in GROUPS[1:]})
        out.append(row)
    return out


def category_rows(runs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Recall@10 (mean over seeds) of each model on each category of a kind."""
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    groups = [g for g in sizes if g.startswith(f"{kind}:")]
    return [{"category": g.split(":", 1)[1], "users": sizes[g],
             **{f"{m} R@10": mean_std(c.get((m, g, "recall", 10)), 3) for m in _models(runs)}}
            for g in groups]


def plot_compare(report: dict[str, Any]) -> str:
    """NDCG@10 (mean, std error bars over seeds) per model for the three one-hop groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    c, models = cells(runs), _models(runs)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(GROUPS)
    for i, g in enumerate(GROUPS):
        vals = [c[(m, g, "ndcg", 10)] for m in models]
        ax.bar([x + i * width for x in range(len(models))], [np.mean(v) for v in vals], width,
               yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
               label=f"{g} ({runs[0]['eval']['group_sizes'][g]})", capsize=2)
    ax.set_xticks([x + width for x in range(len(models))], models, rotation=15, fontsize=8)
    ax.set_ylabel("NDCG@10")
    ax.legend(fontsize=8)
    ax.set_title(f"{report['dataset']} test: NDCG@10 by one-hop memorization group "
                 f"({len(runs)} seed{'s' * (len(runs) > 1)})")
    path = state_dir() / "eval" / runs[-1]["eval"]["eval_id"] / "compare.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _variants(models: list[str]) -> str:
    desc = {"llm-next-item": "**llm-next-item** = next-item samples only",
            "llm-iirg": "**llm-iirg** = every task of the build (IIRG: next-item + "
                        "collaborative + semantic)"}
    shown = [desc[m] for m in models if m in desc]
    return ", ".join(shown) + (". Same steps, batch and seed." if len(shown) > 1 else ".")


def compare_report(report: dict[str, Any], embed_png: bool = True) -> str:
    runs, build = report["runs"], report["build"]
    seeds = [r["seed"] for r in runs]
    ev = runs[0]["eval"]
    fusion = [{"seed": r["seed"], "k": r["fusion"]["k"], "tau": r["fusion"]["tau"],
               "valid NDCG@10": r["fusion"]["ndcg@10"]} for r in runs if r.get("fusion")]
    lines = [f"# Compare on `{report['dataset']}` (test, {ev['users']:,} users, seeds {seeds})",
             f"Base `{report['base']}` fine-tuned with LoRA for {report['steps']} steps of "
             f"{report['batch_size']} samples on instruction build `{build['build_id']}` "
             f"(SIDs `{build['sid_version']}`): " + _variants(_models(runs))
             + f" SASRec {report['sasrec_steps']} steps, TIGER-like SID transformer "
             f"{report['tiger_steps']} steps. LLM decoding: `{report['decode']}`"
             + (" (20-beam trie-constrained; items beyond the beams tie, so MRR is a lower "
                "bound)" if report["decode"] == "beam" else " (exact item-level scoring)")
             + ". Full-catalogue ranking, history items excluded. Figures are mean ± std over "
             "seeds.", "",
             "Groups: IIRG one-hop memorization (target among the top-50 training successors "
             "of the input history) vs the rest.", "", md_table(metric_rows(runs)), "",
             "## NDCG@10 gain over SASRec, and the share of it each group carries",
             md_table(gain_rows(runs)), "",
             "## MemGen instance categories (Recall@10)", md_table(category_rows(runs, "memgen")),
             "", "## SID-prefix memorization (Recall@10): instances whose (last item, target) "
             "n-code prefixes follow a training transition", md_table(category_rows(runs, "prefix")),
             ""]
    if fusion:
        lines += ["## Adaptive fusion (SASRec + llm-iirg), grid on validation NDCG@10",
                  md_table(fusion), ""]
    promo = report.get("promoted")
    if promo:
        lines.append(f"Promotion: {'`' + promo['promoted'] + '` promoted' if promo['promoted'] else 'none'}"
                     f" — {promo['reason']}.")
    uri = png_data_uri(report["png"]) if embed_png else None
    if uri:
        lines += ["", f"![NDCG@10 by group]({uri})"]
    lines.append(f"\nPlot: `{report['png']}`; rows in `eval_results` "
                 f"(eval ids {', '.join(r['eval']['eval_id'] for r in runs)}).")
    return "\n".join(lines)
