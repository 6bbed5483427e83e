"""One worker of `hoprec train --devices N` (started by ddp.launch through torchrun): read the
launcher's arguments, then run `train_llm`, which finds its rank in torchrun's environment."""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

from .finetune import train_llm


def main(spec: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rank %(process)d %(message)s")
    samples, sid_tokens, params, out, meta, alignment = pickle.loads(Path(spec).read_bytes())
    train_llm(samples, sid_tokens, params, out, meta=meta, alignment=alignment)


if __name__ == "__main__":
    main(sys.argv[1])
