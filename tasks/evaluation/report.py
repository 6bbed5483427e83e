"""The evaluation report that `hoprec baselines` and `hoprec compare` share: every model's
figures as mean ± std over the runs (seeds; one run prints plain values), per IIRG one-hop
group, MemGen category and SID-prefix memorization, the gain over a reference model split by
group, and a plot of NDCG@10 by group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..reports import md_table
from ..settings import state_dir
from .evaluate import GROUPS
from .metrics import paired_bootstrap

COLUMNS = (
    ("recall", 10),
    ("ndcg", 10),
    ("recall", 20),
    ("mrr", 0),
    ("coverage", 10),
    ("memorization_rate", 5),
)
LABELS = {
    "recall": "R",
    "ndcg": "NDCG",
    "mrr": "MRR",
    "coverage": "cov",
    "memorization_rate": "mem. rate",
}
Runs = Sequence[dict[str, Any]]  # each {"eval": evaluate_scores_task's record, ...}


def cells(runs: Runs) -> dict[tuple[str, str, str, int], list[float]]:
    """(model, group, metric, k) -> one value per run."""
    out: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for r in runs:
        for row in r["eval"]["rows"]:
            out[(row["model"], row["group"], row["metric"], row["k"])].append(row["value"])
    return out


def mean_std(values: list[float] | None, digits: int = 4) -> str:
    """'mean ± std' over runs (sample std); a single run is its value."""
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def models(runs: Runs) -> list[str]:
    return list(dict.fromkeys(row["model"] for row in runs[0]["eval"]["rows"]))


def metric_rows(runs: Runs) -> list[dict[str, Any]]:
    """One row a (group, model): the figures a person compares first."""
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    return [
        {
            "model": m,
            "group": g,
            "users": sizes[g],
            **{
                f"{LABELS[met]}{'@' + str(k) if k else ''}": mean_std(c.get((m, g, met, k)))
                for met, k in COLUMNS
            },
        }
        for g in GROUPS
        for m in models(runs)
    ]


def gain_rows(runs: Runs, reference: str = "sasrec") -> list[dict[str, Any]]:
    """NDCG@10 gain over `reference` per group (mean ± std over runs) and the share of the
    total gain each group carries (users x gain / all users x gain)."""
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    out = []
    for m in models(runs):
        if m == reference:
            continue
        gains = {
            g: np.array(c[(m, g, "ndcg", 10)]) - np.array(c[(reference, g, "ndcg", 10)])
            for g in GROUPS
        }
        total = gains["all"].mean() * sizes["all"]
        row: dict[str, Any] = {"model": m}
        row.update({f"gain {g}": mean_std(list(gains[g])) for g in GROUPS})
        row.update(
            {
                f"share {g}": f"{gains[g].mean() * sizes[g] / total:.0%}" if total else ""
                for g in GROUPS[1:]
            }
        )
        out.append(row)
    return out


def bootstrap_rows(runs: Runs, reference: str, draws: int = 1000) -> list[dict[str, Any]]:
    """Per model and one-hop group, the paired bootstrap 95% interval of the NDCG@10 and
    Recall@10 difference to `reference` over the same users (each user's value averaged over
    the runs first); "not significant" where the NDCG interval covers 0."""
    ev = runs[0]["eval"]
    if reference not in ev.get("per_user", {}):
        return []
    memo = np.asarray(ev["memorization"], dtype=bool)
    masks = {"all": np.ones(len(memo), bool), "memorization": memo, "non-memorization": ~memo}

    def values(model: str, metric: str) -> np.ndarray:
        return np.mean([r["eval"]["per_user"][model][metric] for r in runs], axis=0)

    out = []
    for m in models(runs):
        if m == reference:
            continue
        diffs = {k: values(m, k) - values(reference, k) for k in ("ndcg@10", "recall@10")}
        for g in GROUPS:
            ci = {k: paired_bootstrap(d[masks[g]], draws) for k, d in diffs.items()}
            lo, hi = ci["ndcg@10"][1:]
            out.append(
                {
                    "model": m,
                    "group": g,
                    "users": int(masks[g].sum()),
                    "ΔNDCG@10 [95% CI]": _interval(ci["ndcg@10"]),
                    "ΔR@10 [95% CI]": _interval(ci["recall@10"]),
                    "NDCG@10": "not significant" if lo <= 0 <= hi else "significant",
                }
            )
    return out


def _interval(mean_lo_hi: tuple[float, float, float]) -> str:
    mean, lo, hi = mean_lo_hi
    return f"{mean:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def category_rows(runs: Runs, kind: str) -> list[dict[str, Any]]:
    """Recall@10 (mean over runs) of each model on each category of a kind."""
    c, sizes = cells(runs), runs[0]["eval"]["group_sizes"]
    groups = [g for g in sizes if g.startswith(f"{kind}:")]
    return [
        {
            "category": g.split(":", 1)[1],
            "users": sizes[g],
            **{f"{m} R@10": mean_std(c.get((m, g, "recall", 10)), 3) for m in models(runs)},
        }
        for g in groups
    ]


def plot_groups(runs: Runs, title: str) -> str:
    """NDCG@10 (mean, std error bars over runs) per model for the three one-hop groups, as a
    PNG next to the last run's evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c, names = cells(runs), models(runs)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(GROUPS)
    for i, g in enumerate(GROUPS):
        vals = [c[(m, g, "ndcg", 10)] for m in names]
        ax.bar(
            [x + i * width for x in range(len(names))],
            [np.mean(v) for v in vals],
            width,
            yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
            label=f"{g} ({runs[0]['eval']['group_sizes'][g]})",
            capsize=2,
        )
    ax.set_xticks([x + width for x in range(len(names))], names, rotation=15, fontsize=8)
    ax.set_ylabel("NDCG@10")
    ax.legend(fontsize=8)
    ax.set_title(title)
    path = Path(state_dir()) / "eval" / runs[-1]["eval"]["eval_id"] / "groups.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def evaluation_sections(runs: Runs, reference: str) -> list[str]:
    """The markdown both reports share: metrics by group, gains, MemGen and prefix tables."""
    lines = [
        "Groups: IIRG one-hop memorization (target among the top-50 training successors "
        "of the input history) vs the rest.",
        "",
        md_table(metric_rows(runs)),
        "",
        f"## NDCG@10 gain over {reference}, and the share of it each group carries",
        md_table(gain_rows(runs, reference)),
        "",
        f"## Paired bootstrap 95% intervals of the difference to {reference} (users resampled, "
        "1,000 draws; per-user values averaged over seeds)",
        md_table(bootstrap_rows(runs, reference)),
        "",
        "## MemGen instance categories (Recall@10), primary label",
        "Memorization, else the pattern at the smallest hop (ties: substitutability, symmetry, "
        "transitivity, second-order symmetry), else uncategorized.",
        "",
        md_table(category_rows(runs, "memgen")),
        "",
        "## MemGen labels (Recall@10): every pattern at its own smallest hop, an instance may "
        "carry several",
        md_table(category_rows(runs, "memgen-label")),
    ]
    prefix = category_rows(runs, "prefix")
    if prefix:
        lines += [
            "",
            "## SID-prefix memorization (Recall@10): instances whose (last item, "
            "target) n-code prefixes follow a training transition",
            md_table(prefix),
        ]
    return lines


def footer(runs: Runs, png: str) -> str:
    return (
        f"Plot: `{png}` (artifact with the image attached to this run); rows in "
        f"`eval_results` (eval ids {', '.join(r['eval']['eval_id'] for r in runs)})."
    )


def baselines_report(result: dict[str, Any]) -> str:
    """The markdown of `hoprec baselines`: one run, gains over SASRec (else popularity)."""
    runs, sasrec = result["runs"], result.get("sasrec")
    ev = runs[0]["eval"]
    lines = [
        f"# Baselines on `{ev['dataset']}` ({ev['split']}, {ev['users']:,} users)",
        f"Evaluation `{ev['eval_id']}`; full-catalogue ranking, history items excluded.",
        "",
        *evaluation_sections(runs, "sasrec" if sasrec else "popularity"),
        "",
    ]
    if sasrec:
        lines.append(
            f"SASRec: {sasrec['steps']} steps, best step {sasrec['best_step']}, "
            f"final loss {sasrec['final_loss']:.3f}."
        )
    lines.append(footer(runs, result["png"]))
    return "\n".join(lines)


def _variants(names: list[str]) -> str:
    desc = {
        "llm-iirg-full": "**llm-iirg-full** = IIRG on the build as given (its co-occurrence "
        "counts validation events; reported on test, never decides)",
        "llm-next-item": "**llm-next-item** = next-item samples only",
        "llm-iirg": "**llm-iirg** = every task of the build (IIRG: next-item + "
        "collaborative + semantic)",
    }
    shown = [desc[m] for m in names if m in desc]
    return ", ".join(shown) + (". Same steps, batch and seed." if len(shown) > 1 else ".")


def decision_rows(runs: Runs) -> list[dict[str, Any]]:
    """Each model's validation figures (mean ± std over seeds): what every decision reads."""
    valid = [{"eval": r["valid"]} for r in runs if r.get("valid")]
    if not valid:
        return []
    c = cells(valid)
    return [
        {
            "model": m,
            "valid NDCG@10": mean_std(c.get((m, "all", "ndcg", 10))),
            "valid R@10": mean_std(c.get((m, "all", "recall", 10))),
        }
        for m in models(valid)
    ]


def generation_rows(runs: Runs, decode: str) -> list[dict[str, Any]]:
    """IIRG's evaluation next to hoprec's (mean ± std over seeds), per split and LLM: NDCG@10 by
    free generation and by `decode`, the invalid-SID rate and the users left short of K items."""
    out = []
    for split, ev in (("valid", "valid"), ("test", "eval")):
        c = cells([{"eval": r[ev]} for r in runs])
        names = dict.fromkeys(n for r in runs for n in (r.get("generation") or {}).get(split, {}))
        for n in names:
            stats = [r["generation"][split][n] for r in runs]
            out.append(
                {
                    "split": split,
                    "model": n,
                    f"NDCG@10 {decode}": mean_std(c.get((n, "all", "ndcg", 10))),
                    "NDCG@10 free": mean_std(c.get((n + "@free", "all", "ndcg", 10))),
                    "R@10 free": mean_std(c.get((n + "@free", "all", "recall", 10))),
                    **{
                        label: mean_std([st[key] for st in stats], 3)
                        for label, key in (
                            ("invalid SID rate", "invalid_rate"),
                            ("users < 10 items", "short@10"),
                            ("users < 20 items", "short@20"),
                        )
                    },
                }
            )
    return out


def _builds(report: dict[str, Any]) -> str:
    clean, given = report["build"], report.get("given_build") or report["build"]
    text = (
        f"LLMs train on instruction build `{clean['build_id']}` (co-occurrence snapshot "
        f"#{clean['cooccurrence_snapshot']}, audited in `{clean['audit']['mode']}` mode: no "
        "validation event in any sample)"
    )
    if given["build_id"] != clean["build_id"]:
        text += (
            f", the validation-clean twin of `{given['build_id']}` (co-occurrence snapshot "
            f"#{given['cooccurrence_snapshot']}, which counts validation events)"
        )
    return text + "."


def compare_report(report: dict[str, Any]) -> str:
    """The markdown of `hoprec compare`: several runs (seeds), fusion, decisions on validation
    and the promotion."""
    runs, build = report["runs"], report["build"]
    seeds = [r["seed"] for r in runs]
    ev = runs[0]["eval"]
    fusion = [
        {
            "seed": r["seed"],
            "fusion": name,
            "k": p["k"],
            "tau": p["tau"],
            "valid NDCG@10": p["ndcg@10"],
        }
        for r in runs
        for name, p in (r.get("fusion") or {}).items()
    ]
    lines = [
        f"# Compare on `{report['dataset']}` (test, {ev['users']:,} users, seeds {seeds})",
        f"Base `{report['base']}` fine-tuned with LoRA for {report['steps']} steps of "
        f"{report['batch_size']} samples (SIDs `{build['sid_version']}`): "
        + _variants(models(runs))
        + f" SASRec {report['sasrec_steps']} steps, TIGER (T5 SID transformer) "
        f"{report['tiger_steps']} steps. LLM decoding: `{report['decode']}`"
        + {
            "beam": " (20-beam trie-constrained; items beyond the beams tie, so MRR is a lower "
            "bound)",
            "exact": " (exact item-level scoring)",
        }[report["decode"]]
        + (" ignored: the LLMs train SimGR, ranked by cosine over every item" * report["simgr"])
        + ". Full-catalogue ranking, history items excluded. Figures are mean ± std over "
        "seeds.",
        "",
        _builds(report),
        "",
        *evaluation_sections(runs, "sasrec"),
        "",
    ]
    if fusion:
        floor = (
            "literal min-max (unlisted = last listed = 0)"
            if report.get("fusion_minmax") == "literal"
            else "min-max onto [1/m, 1], unlisted 0"
        )
        lines += [
            f"## Adaptive fusion (MemGen), grid on validation NDCG@10; {floor}",
            md_table(fusion),
            "",
        ]
    generation = generation_rows(runs, report["decode"])
    if generation:
        lines += [
            "## IIRG's evaluation: unconstrained generation (rows `<llm>@free` above)",
            "20 beams, 20 sequences after the answer's `[`, SIDs parsed by IIRG's rule (a SID "
            "shared by several items names the most popular unseen one, the list is topped up "
            "with the rest). An invalid sequence names no real item; constrained decoding cannot.",
            "",
            md_table(generation),
            "",
        ]
    lines += [
        "## Decisions, on validation only",
        "The fusion grids, the promotion and its seed, and SASRec's and the SID transformer's "
        "model selection read validation; test is for reporting. Validation NDCG@10:",
        "",
        md_table(decision_rows(runs)),
        "",
    ]
    promo = report.get("promoted")
    if promo:
        lines.append(
            f"Promotion: {'`' + promo['promoted'] + '` promoted' if promo['promoted'] else 'none'}"
            f" — {promo['reason']}."
        )
    lines.append(footer(runs, report["png"]))
    return "\n".join(lines)
