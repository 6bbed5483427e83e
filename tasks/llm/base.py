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


SID_INITS = ("mean", "spread")


def token_modules(model: Any) -> list[Any]:
    """The layers holding a row per token: the input embeddings, and the output layer too when
    it is not tied to them (most 1B+ bases)."""
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    return [inp] if out is None or out.weight is inp.weight else [inp, out]


def init_new_rows(model: Any, first_new: int, how: str, seed: int) -> None:
    """Give the tokens added after `first_new` their starting rows, in the input embeddings and
    an untied head. `mean` keeps transformers' `resize_token_embeddings` rows: the old rows'
    mean with 1e-9 of their covariance (Hewitt's rule, so a new token does not disturb the
    LM). Every SID token then starts as the same vector, so every item (a mean of SID rows) and
    every history of bare SID tokens looks alike, and training must first break that symmetry.
    `spread` draws the rows from the old rows' mean *and full covariance*: each SID token starts
    as distinct as a real word. Seeded, so a run and its DDP ranks draw the same rows."""
    import torch

    if how not in SID_INITS:
        raise ValueError(f"sid_init must be one of {', '.join(SID_INITS)}, got {how!r}")
    if how == "mean":
        return
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in token_modules(model):
            w = layer.weight
            old = w[:first_new].to(torch.float64)
            mean = old.mean(0)
            cov = (old - mean).T @ (old - mean) / len(old)
            vals, vecs = torch.linalg.eigh(cov)  # a square root that tolerates rank deficiency
            root = vecs * vals.clamp_min(0).sqrt()
            z = torch.randn(w.shape[0] - first_new, w.shape[1], generator=gen, dtype=torch.float64)
            w[first_new:] = (mean + z @ root.T).to(w.dtype)
