"""MemGen's instance labels: hoprec's vectorized rules against the literal port of MemGen's own
code (tests/memgen_port.py), on a prepared dataset, timed in the same run.

    python bench/memgen.py --dataset ml100k [--warehouse PATH]

Prints, per split, how many instances differ from the port (the target is 0), MemGen's
multi-label counts, hoprec's primary-label counts and the time ratio hoprec / port.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from memgen_port import FineGrainedEvaluator  # noqa: E402

from hoprec.tasks.data.sequences import n_items, split_events, user_histories  # noqa: E402
from hoprec.tasks.data.warehouse import connect  # noqa: E402
from hoprec.tasks.evaluation.memorization import memgen_labels, primary  # noqa: E402
from hoprec.tasks.settings import apply_settings  # noqa: E402

NAMES = {"second-order symmetry": "2nd-symmetry"}


def memgen_format(labels: dict[str, int]) -> set[str]:
    """hoprec's labels in MemGen's spelling."""
    if not labels or "memorization" in labels or "uncategorized" in labels:
        return set(labels)
    return {f"{NAMES.get(p, p)}_{h}" for p, h in labels.items()} | {"generalization"}


def main() -> None:
    apply_settings()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="ml100k")
    ap.add_argument("--warehouse", help="DuckDB file (default: the state dir's)")
    args = ap.parse_args()
    with connect(args.warehouse, read_only=True) as con:
        users, items = split_events(con, args.dataset, "valid")  # the train split
        n = n_items(con, args.dataset)
        splits = {s: user_histories(con, args.dataset, s)[1:] for s in ("valid", "test")}
    seqs = [s.tolist() for s in np.split(items, np.flatnonzero(np.diff(users)) + 1)]
    for split, (hists, targets) in splits.items():
        t = time.perf_counter()
        ours = memgen_labels(hists, targets, users, items, n)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        port = FineGrainedEvaluator(seqs)
        theirs = [port.get_case_labels([*h.tolist(), int(v)]) for h, v in zip(hists, targets)]
        t_port = time.perf_counter() - t
        differ = sum(memgen_format(o) != p for o, p in zip(ours, theirs))
        print(
            f"{split}: {len(targets):,} instances, {differ} differ from MemGen's code; "
            f"hoprec {t_ours:.2f} s, port {t_port:.2f} s (ratio {t_ours / t_port:.2f})"
        )
        print("  multi-label:", dict(sorted(Counter(x for p in theirs for x in p).items())))
        print("  primary:", dict(Counter(primary(o)[0] for o in ours).most_common()))


if __name__ == "__main__":
    main()
