"""The flows as a user runs them: through the CLI, with a Prefect API, leaving artifacts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from hoprec.flows.cli import build_parser, main


@pytest.fixture
def cli_wh(tmp_path, prefect_api):
    return str(tmp_path / "cli.duckdb")


def _latest_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert arts, f"no artifact {key}"
    return max(arts, key=lambda a: a.created).data


def test_demo_pipeline_end_to_end(cli_wh, tiny_base, capsys):
    # the real embedded SmolLM2, a token budget: 2 LoRA steps, 20 test users
    assert (
        main(
            [
                "demo",
                "--warehouse",
                cli_wh,
                "--llm-steps",
                "2",
                "--eval-users",
                "20",
                "--sasrec-steps",
                "20",
                "--tiger-steps",
                "20",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "## Compare on `ml100k` (test, 20 users" in out
    assert "| llm-iirg | all | 20 |" in out and "| tiger | non-memorization |" in out
    with duckdb.connect(cli_wh, read_only=True) as con:
        kind, steps, path = con.execute("SELECT kind, steps, path FROM models").fetchone()
        models = {m for (m,) in con.execute("SELECT DISTINCT model FROM eval_results").fetchall()}
    assert (kind, steps) == ("llm-lora", 2)
    assert (Path(path) / "adapter_config.json").exists()
    assert models == {"popularity", "markov", "cooc-knn", "sasrec", "tiger", "llm-iirg"}
    assert "100,000" in out and "943" in out and "1,349" in out
    with duckdb.connect(cli_wh, read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) "
            "FROM interactions WHERE dataset = 'ml100k'"
        ).fetchone() == (100000, 943, 1682)
        assert con.execute("SELECT count(*) FROM sequences WHERE split = 'test'").fetchone() == (
            943,
        )
    report = _latest_artifact("demo-report")
    assert report.strip() == out.strip()  # the UI and the terminal read the same text
    assert "## Prepared `ml100k`" in report and "## Relation snapshots of `ml100k`" in report
    assert "## Semantic IDs of `ml100k`" in report and "## Ingest of `ml100k`" in report
    assert "| next-item | 96,458 |" in report and "Leakage audit (`test` mode): passed" in report
    assert "data:image/png;base64" in _latest_artifact("sids-plot")
    assert "| cooccurrence | all |" in out and "| semantic | all |" in out
    with duckdb.connect(cli_wh, read_only=True) as con:
        kinds = con.execute("SELECT kind, rows FROM relation_snapshots ORDER BY kind").fetchall()
    # all-events snapshots for the data + strict (no validation target) ones for validation
    assert [k for k, _ in kinds] == [
        "cooccurrence",
        "cooccurrence",
        "semantic",
        "transitions",
        "transitions",
    ]
    assert {r for k, r in kinds if k != "transitions"} == {13490}
    assert "Sequence length" in _latest_artifact("prepare-report")
    # the baselines on the same warehouse (relations are cache hits), grouped by memorization
    assert (
        main(
            [
                "baselines",
                "--dataset",
                "ml100k",
                "--models",
                "popularity,markov,cooc-knn",
                "--warehouse",
                cli_wh,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "Baselines on `ml100k` (test, 943 users)" in out and "| markov | non-memorization |" in out
    )
    assert "MemGen instance categories" in out and "data:image" not in out
    assert _latest_artifact("baselines-report").strip() == out.strip()
    assert "data:image/png;base64" in _latest_artifact("baselines-plot")
    with duckdb.connect(cli_wh, read_only=True) as con:
        assert con.execute(
            "SELECT count(DISTINCT model) FROM eval_results WHERE eval_id IN (SELECT eval_id "
            "FROM eval_results WHERE metric = 'users' AND group_name = 'all' AND value = 943)"
        ).fetchone() == (3,)
    _train_and_compare(cli_wh, tiny_base, capsys)
    # a second run ingests nothing new
    assert (
        main(["ingest", "--dataset", "ml100k", "--format", "ml-100k", "--warehouse", cli_wh]) == 0
    )
    assert "2 skipped file(s)" in capsys.readouterr().out
    with duckdb.connect(cli_wh, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM interactions").fetchone() == (100000,)


def _train_and_compare(wh: str, tiny_base: str, capsys) -> None:
    """`hoprec train` (then a rerun reuses it) and `hoprec compare` over two seeds, on a tiny
    local base model, on the demo's warehouse."""
    args = ["--dataset", "ml100k", "--warehouse", wh, "--base", tiny_base, "--steps", "2"]
    select = ["--select-every", "1", "--select-users", "10"]  # checkpoint selection on valid
    assert main(["train", *args, *select, "--tasks", "collaborative", "--log-every", "1"]) == 0
    out = capsys.readouterr().out
    assert "tasks collaborative; objective generative (SID tokens); 2 steps in" in out
    assert "| 2 |" in out
    assert "## Checkpoint selection on validation: kept step" in out
    assert main(["train", *args, *select, "--tasks", "collaborative"]) == 0
    assert "(already trained: reused)" in capsys.readouterr().out
    assert "# Fine-tuned `ml100k-lora-collaborative-s0-" in _latest_artifact("train-report")
    assert (
        main(
            [
                "compare",
                *args,
                "--seeds",
                "0,1",
                "--eval-users",
                "20",
                "--sasrec-steps",
                "5",
                "--tiger-steps",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "# Compare on `ml100k` (test, 20 users, seeds [0, 1])" in out
    assert "| llm-next-item | non-memorization | " in out and " ± " in out
    assert "## Adaptive fusion" in out and "| fusion(sasrec+llm-iirg) | all |" in out
    assert "| 1-gram h1 |" in out and "Promotion:" in out and "validation NDCG@10" in out
    assert "| fusion(sasrec+tiger) | all |" in out and "## Decisions, on validation only" in out
    assert "## Paired bootstrap 95% intervals" in out and "audited in `validation` mode" in out
    assert _latest_artifact("compare-report").strip() == out.strip()
    assert "data:image/png;base64" in _latest_artifact("compare-plot")
    with duckdb.connect(wh, read_only=True) as con:
        runs = con.execute("SELECT count(*) FROM models WHERE base = ?", [tiny_base]).fetchone()
        evals = con.execute(
            "SELECT count(DISTINCT eval_id) FROM eval_results "
            "WHERE model = 'fusion(sasrec+llm-iirg)'"
        ).fetchone()
    assert runs == (5,) and evals == (2,)  # train + 2 seeds x (next-item, iirg)


def test_ingest_report_lists_quarantine(cli_wh, tmp_path, capsys):
    f = tmp_path / "u.data"
    f.write_text("1\t2\t3\t100\n1\t2\t3\tbad\n")
    assert (
        main(["ingest", "--dataset", "q", "--format", "ml-100k", str(f), "--warehouse", cli_wh])
        == 0
    )
    art = _latest_artifact("ingest-report")
    assert "Quarantined rows by reason" in art and "unparseable timestamp" in art


def test_cli_errors_name_the_problem(tmp_path, capsys, prefect_api):
    wh = str(tmp_path / "e.duckdb")
    assert (
        main(
            [
                "ingest",
                "--dataset",
                "x",
                "--format",
                "ml-1m",
                str(tmp_path / "missing.dat"),
                "--warehouse",
                wh,
            ]
        )
        == 2
    )
    assert "missing.dat" in capsys.readouterr().err
    assert main(["ingest", "--dataset", "x", "--format", "csv", "--warehouse", wh]) == 2
    assert "needs input paths" in capsys.readouterr().err
    assert main(["prepare", "--dataset", "nothing", "--warehouse", wh]) == 2
    assert "'nothing' has no interactions" in capsys.readouterr().err
    assert main(["relations", "--dataset", "nothing", "--warehouse", wh]) == 2
    assert "hoprec prepare --dataset nothing" in capsys.readouterr().err
    assert (
        main(
            [
                "backfill",
                "--dataset",
                "x",
                "--start",
                "2020-01-08",
                "--end",
                "2020-01-01",
                "--warehouse",
                wh,
            ]
        )
        == 2
    )
    assert "before --start" in capsys.readouterr().err
    assert (
        main(
            [
                "backfill",
                "--dataset",
                "x",
                "--start",
                "2020-01-01",
                "--end",
                "2020-02-01",
                "--every",
                "weekly",
                "--warehouse",
                wh,
            ]
        )
        == 2
    )
    assert "--every 'weekly'" in capsys.readouterr().err
    assert main(["relations", "--dataset", "x", "--kinds", "friends", "--warehouse", wh]) == 2
    assert "friends" in capsys.readouterr().err
    assert main(["sids", "--dataset", "x", "--assign-new", "nope", "--warehouse", wh]) == 2
    assert "SID version 'nope'" in capsys.readouterr().err
    assert main(["instructions", "--dataset", "x", "--warehouse", wh]) == 2
    assert "hoprec sids --dataset x" in capsys.readouterr().err


def test_help_lists_commands_and_formats(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for word in (
        "demo",
        "ingest",
        "prepare",
        "relations",
        "backfill",
        "sids",
        "instructions",
        "assets",
        "HOPREC_WAREHOUSE",
    ):
        assert word in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest", "--help"])
    assert "amazon-2014" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["relations", "--help"])
    out = capsys.readouterr().out
    assert "--as-of" in out and "--task-runner" in out and "--shards" in out


def test_prefect_home_is_under_state_dir():
    import os

    assert os.environ["PREFECT_HOME"].startswith(os.environ["HOPREC_HOME"])
