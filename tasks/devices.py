"""One device rule for every model hoprec trains or scores: cuda, else mps, else cpu."""

from __future__ import annotations

from typing import Any


def resolve_device(name: str = "auto") -> Any:
    """`auto` -> the best available torch device; any other name is taken as given."""
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
