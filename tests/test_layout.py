"""The rules of the house, checked: one `hoprec` namespace, imports that point down, no side
effects at import, every SQL file used, and a CLI that hands options to flows by name."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY_FILES = sorted(
    p for d in ("flows", "tasks", "sql", "tests", "bench") for p in (ROOT / d).rglob("*.py")
)
TOP = ("flows", "tasks", "sql")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file; level > 0 for relative imports."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


def test_no_bare_top_level_package_imports():
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in PY_FILES
        for level, m in _imports(p)
        if level == 0 and m.split(".")[0] in TOP
    ]
    assert not bad, "import hoprec.flows / hoprec.tasks / hoprec.sql instead:\n" + "\n".join(bad)


def test_no_bare_imports_in_code_strings_either():
    """Code run in subprocesses and documented in the README names the namespace too."""
    pattern = re.compile(r"\b(?:from|import) (?:tasks|flows|sql)\b[ .]")
    files = [*PY_FILES, ROOT / "README.md", ROOT / "infra" / "prefect.yaml"]
    bad = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in files
        if p.name != "test_layout.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not bad, bad


def test_tasks_import_each_other_relatively_and_never_flows():
    bad = []
    for p in (ROOT / "tasks").rglob("*.py"):
        for level, m in _imports(p):
            if level == 0 and m.startswith("hoprec."):
                bad.append(f"{p.relative_to(ROOT)}: absolute import {m}")
            if level and m.split(".")[0] == "flows":
                bad.append(f"{p.relative_to(ROOT)}: imports flows")
    assert not bad, "\n".join(bad)


def test_every_package_folder_is_installed():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "hoprec." + ".".join(p.parent.relative_to(ROOT).parts)
        for d in TOP
        for p in (ROOT / d).rglob("__init__.py")
    }
    assert found == listed


def test_sql_files_referenced_and_present():
    code = "\n".join(p.read_text() for d in ("tasks",) for p in (ROOT / d).rglob("*.py"))
    named = set(re.findall(r"\"([a-z_]+/[a-z_0-9]+)\"", code))
    prefixes = tuple(re.findall(r"f\"([a-z_]+/[a-z_0-9]*)\{", code))  # f"ingest/check_{kind}"
    files = {str(p.relative_to(ROOT / "sql"))[:-4] for p in (ROOT / "sql").rglob("*.sql")}
    loaded_by_folder = {"schema"}  # warehouse.ensure_schema reads sql/schema/*
    assert {n for n in named if n.split("/")[0] in {f.split("/")[0] for f in files}} <= files
    unused = {
        f
        for f in files
        if f not in named and not f.startswith(prefixes) and f.split("/")[0] not in loaded_by_folder
    }
    assert not unused, f"SQL files no code runs: {sorted(unused)}"


def _run(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_the_namespace_outside_the_checkout(tmp_path):
    assert _run("import hoprec.flows.cli, hoprec.tasks, hoprec.sql", tmp_path).returncode == 0
    for bare in ("tasks", "flows", "sql"):
        res = _run(f"import {bare}", tmp_path)
        assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


def test_importing_any_module_has_no_side_effects(tmp_path):
    home = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HOPREC_HOME"] = str(home)
    code = """
import importlib, os, pkgutil, sys
before = dict(os.environ)
import hoprec.flows, hoprec.tasks
for pkg in (hoprec.tasks, hoprec.flows):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
changed = sorted(k for k in os.environ
                 if os.environ[k] != before.get(k) and k.startswith(("PREFECT", "HOPREC")))
print(changed)
"""
    res = _run(code, tmp_path, env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]" and not home.exists()


def _signature_defaults(fn) -> dict[str, object]:
    """The parameters a command function takes by name, with their defaults (following a
    wrapper's **kwargs to the flow it runs)."""
    from hoprec.flows import relations, sids

    wrapped = {
        relations.relations_command: relations.relations_flow,
        sids.sids_command: sids.sids_flow,
    }
    out = {}
    for f in (fn, wrapped.get(fn)):
        if f is not None:
            f = getattr(f, "fn", f)
            out |= {
                n: p.default
                for n, p in inspect.signature(f).parameters.items()
                if p.kind is not p.VAR_KEYWORD
            }
    return out


def test_cli_passes_options_by_name_with_the_flows_defaults():
    from hoprec.flows.cli import COMMANDS, build_parser, command_function

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        if name not in COMMANDS:
            continue
        params = _signature_defaults(command_function(name))
        for action in parser._actions:
            if action.dest == "help":
                continue
            assert action.dest in params, f"hoprec {name}: option {action.dest} is no parameter"
            shown = getattr(action, "flow_default", None)
            if shown is not None and params[action.dest] not in (None, inspect.Parameter.empty):
                value = (
                    action.type(shown)
                    if callable(action.type) and isinstance(shown, str)
                    else shown
                )
                assert value == params[action.dest], f"hoprec {name} --{action.dest}"


def test_deployment_entrypoints_resolve():
    import yaml
    from prefect.flows import Flow, load_flow_from_entrypoint

    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    entrypoints = {d["entrypoint"] for d in spec["deployments"]}
    assert entrypoints
    for ep in entrypoints:
        path, name = ep.split(":")
        assert (ROOT / path).exists(), ep
        assert isinstance(load_flow_from_entrypoint(str(ROOT / path) + ":" + name), Flow), ep


@pytest.mark.parametrize(
    "flow_module",
    [
        "ingest",
        "prepare",
        "relations",
        "backfill",
        "sids",
        "instructions",
        "baselines",
        "train",
        "compare",
        "demo",
    ],
)
def test_every_flow_publishes_and_returns_its_report(flow_module):
    """The report contract in the source: a flow publishes a `<name>-report` and returns it."""
    text = (ROOT / "flows" / f"{flow_module}.py").read_text()
    assert re.search(r'publish\("[a-z-]+-report", ', text), flow_module
    assert '"report"' in text, flow_module
