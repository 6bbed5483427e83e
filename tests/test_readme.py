"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"


def test_two_commands_install_then_run_demo_and_tests():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert blocks == [
        f"{INSTALL} && .venv/bin/hoprec demo",
        f"{INSTALL} && .venv/bin/python -m pytest -q",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-q -e '.[test]'" in ci and ".venv/bin/python -m pytest -q" in ci
