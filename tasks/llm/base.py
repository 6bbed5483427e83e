"""The base LLM: the embedded SmolLM2-135M-Instruct GGUF by default, or any HF id / local path.

transformers reads a GGUF tokenizer slowly (~30 s here), so the converted tokenizer is saved
next to the asset once and loaded from there afterwards.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from .. import defaults
from ..data.assets import ASSETS, asset_dir, pull

log = logging.getLogger("hoprec.basemodel")

DEFAULT_BASE = defaults.BASE_MODEL
GGUF_FILES = {defaults.BASE_MODEL: "SmolLM2-135M-Instruct.Q4_1.gguf"}


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


def load_base_model(name: str = DEFAULT_BASE, dtype: Any = None) -> Any:
    """The base causal LM (fp32 unless `dtype`). GGUF assets are dequantized once and saved as
    safetensors next to the asset, since reading the GGUF takes ~20 s and a run loads it often."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    if name in GGUF_FILES:
        cached = asset_dir(name) / "model"
        if not (cached / "config.json").exists():
            path, kwargs = resolve_base(name)
            log.info("dequantizing the GGUF weights of %s (once)", name)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
            # the weights are plain fp32 tensors now; drop the GGUF marker that blocks saving
            model.hf_quantizer = None  # type: ignore[assignment]
            model.config.__dict__.pop("quantization_config", None)
            tmp = cached.with_name("model.tmp")
            model.save_pretrained(str(tmp))
            shutil.rmtree(cached, ignore_errors=True)
            Path(tmp).replace(cached)
        return AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype)
    path, kwargs = resolve_base(name)
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)


def base_source(name: str) -> str:
    """Where `load_base_model(name)` reads weights from (for adapter configs and reports)."""
    if name in GGUF_FILES:
        return str(asset_dir(name) / "model")
    return resolve_base(name)[0]
