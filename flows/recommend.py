"""The recommend flow: one model's top-K for every user (or the listed ones), written to the
`recommendations` table and a Parquet file, with a report a team can check."""

from __future__ import annotations

from typing import Any

from prefect import flow

from hoprec.flows.relations import relations_flow
from hoprec.tasks import defaults
from hoprec.tasks.data.warehouse import connect, resolve
from hoprec.tasks.recommenders.baselines import MODELS as BASELINES
from hoprec.tasks.recommenders.registry import registered_sasrec_task
from hoprec.tasks.recommenders.sasrec import SASRecParams
from hoprec.tasks.reports import md_table, publish
from hoprec.tasks.serving.recommend import (
    ModelRef,
    read_user_file,
    recommend_task,
    resolve_model,
)


@flow(name="recommend", flow_run_name="recommend {dataset} with {model}")
def recommend_flow(
    dataset: str,
    model: str = defaults.RECOMMEND_MODEL,
    k: int = defaults.RECOMMEND_K,
    users: str = "all",
    warehouse: str | None = None,
    decode: str = defaults.DECODE,
    num_beams: int = defaults.NUM_BEAMS,
    device: str = defaults.DEVICE,
    sasrec_steps: int = defaults.RECOMMEND_SASREC_STEPS,
) -> dict[str, Any]:
    """Top-`k` lists of `model` ('champion', a model id, or popularity | markov | cooc-knn |
    sasrec) for `users` ('all', or a file of user ids, one a line; an id not in the data gets
    the cold-start list). History items are never recommended."""
    wanted = None if users == "all" else read_user_file(users)
    wh = str(resolve(warehouse))
    with connect(wh) as con:
        ref = resolve_model(con, dataset, model)
    trained = None
    if ref is None:  # sasrec asked for and none stored: train one now
        trained = registered_sasrec_task(
            wh, dataset, SASRecParams(max_steps=sasrec_steps, device=device)
        )
        ref = ModelRef(trained["model_id"], "sasrec", trained["path"])
    snaps = None
    if ref.kind in BASELINES:
        snaps = relations_flow(
            dataset=dataset, warehouse=warehouse, kinds=["transitions", "cooccurrence"]
        )["ids"]
    llm = {"decode": decode, "num_beams": num_beams, "device": device}
    result = recommend_task(wh, dataset, ref, k, wanted, snaps, llm)
    result["trained_now"] = trained is not None
    result["report"] = recommend_report(result)
    publish("recommend-report", result["report"], f"recommendations of {ref.model_id}")
    return result


def recommend_report(r: dict[str, Any]) -> str:
    """The markdown a person reads after a batch of recommendations."""
    lines = [
        f"# Recommendations of `{r['model_id']}` on `{r['dataset']}`",
        f"Top-{r['k']} for {r['users']:,} users ({r['kind']}"
        f"{', trained for this run' if r['trained_now'] else ''}); history items excluded.",
        "",
        md_table(
            [
                {
                    "users": r["users"],
                    "rows": r["rows"],
                    "cold-start users": r["cold_start"],
                    "users with < K items": r["short_lists"],
                    f"coverage@{r['k']}": round(r["coverage"], 4),
                    "scoring s": round(r["seconds"], 2),
                    "users/s": round(r["users_per_s"], 1),
                }
            ]
        ),
        "",
        "Table `recommendations` (dataset, model_id, user_id, rank, item_id, score, created_at); "
        f"one row a user in `{r['parquet']}`.",
    ]
    if r["cold_start"]:
        lines += [
            "",
            f"{r['cold_start']} listed user(s) are not in the prepared data: they got the model's "
            "most popular items (train and validation events).",
        ]
    return "\n".join(lines)
