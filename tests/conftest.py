"""Shared fixtures. The state dir is a fresh temp folder, so Prefect's home is too."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["HOPREC_HOME"] = tempfile.mkdtemp(prefix="hoprec-test-")
os.environ.pop("HOPREC_WAREHOUSE", None)
os.environ.pop("PREFECT_API_URL", None)

from hoprec.tasks.settings import apply_settings  # noqa: E402

apply_settings()  # Prefect reads its settings at import: before any flow is imported


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")
    parser.addoption("--run-gpu", action="store_true", help="run tests marked gpu")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in ("slow", "gpu"):
            if mark in item.keywords and not config.getoption(f"--run-{mark}"):
                item.add_marker(pytest.mark.skip(reason=f"{mark} test: pass --run-{mark}"))


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test API for the whole session (flows need one; plain functions do not)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    from hoprec.tasks.data.assets import ml100k_dir as pull

    return pull()


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    """A fresh warehouse path."""
    return tmp_path / "wh.duckdb"


@pytest.fixture
def con(wh: Path):
    from hoprec.tasks.data.warehouse import connect

    with connect(wh) as c:
        yield c


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random Llama with the SmolLM2 tokenizer, saved as a local path."""
    return _tiny_llama(tmp_path_factory, tied=True)


def _tiny_llama(tmp_path_factory, tied: bool) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from hoprec.tasks.llm.base import load_tokenizer

    tok = load_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=tied,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tiny_untied_base(tmp_path_factory) -> str:
    """The same tiny Llama with an output layer of its own (not tied to the embeddings), as
    most 1B+ bases have."""
    return _tiny_llama(tmp_path_factory, tied=False)


@pytest.fixture(scope="session")
def tiny(tiny_base):
    """(model, tokenizer): the tiny base with helpers.TINY_SIDS' tokens added, in eval mode."""
    from helpers import TINY_SIDS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_base)
    tok.add_tokens(sorted({t for s in TINY_SIDS.values() for t in s.replace(">", "> ").split()}))
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    model.resize_token_embeddings(len(tok))
    return model.eval(), tok
