"""The base LLM: the embedded SmolLM2-135M-Instruct GGUF by default, or any HF id / local path.

transformers reads a GGUF tokenizer slowly (~30 s here), so the converted tokenizer is saved
next to the asset once and loaded from there afterwards.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from tasks.assets import ASSETS, asset_dir, pull

log = logging.getLogger("hoprec.basemodel")

DEFAULT_BASE = "smollm2-135m-instruct-gguf"
GGUF_FILES = {"smollm2-135m-instruct-gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"}


def resolve_base(name: str) -> tuple[str, dict[str, Any]]:
    """(path or id, extra from_pretrained kwargs) for an asset name, a local path or an HF id."""
    if name in ASSETS:
        return str(pull(name)), {"gguf_file": GGUF_FILES[name]} if name in GGUF_FILES else {}
    return name, {}


def load_tokenizer(name: str = DEFAULT_BASE) -> Any:
    """The base model's tokenizer (GGUF assets: converted once, then cached)."""
    from transformers import AutoTokenizer

    if name in GGUF_FILES:
        cached = asset_dir(name) / "tokenizer"
        if (cached / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(str(cached))
        path, kwargs = resolve_base(name)
        log.info("converting the GGUF tokenizer of %s (once)", name)
        tok = AutoTokenizer.from_pretrained(path, **kwargs)
        tmp = cached.with_name("tokenizer.tmp")
        tok.save_pretrained(str(tmp))
        shutil.rmtree(cached, ignore_errors=True)
        Path(tmp).replace(cached)
        return tok
    path, kwargs = resolve_base(name)
    return AutoTokenizer.from_pretrained(path, **kwargs)
