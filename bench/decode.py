"""Decoding benchmark: users/s of trie-constrained beam search and of exact item scoring.

    python bench/decode.py [--users 16] [--exact-users 8] [--items 1349] [--prompt-len 300]
                           [--beams 20] [--top-k 10] [--batch-size 8] [--exact-batch-size 4]
                           [--beam-methods tree,batch] [--exact-methods tree] [--max-tokens 4096]
                           [--model PATH_OR_ASSET]
                           [--threads N] [--seed 0]

By default the model is a randomly initialised Llama of SmolLM2-135M's shape (hidden 576, 30
layers, 9 heads, 3 kv heads, intermediate 1536, tied embeddings, vocab 49,152 + the SID tokens):
decoding speed does not depend on the weights. `--model` loads real weights instead (an asset name
such as smollm2-135m-instruct-gguf, a local path or an HF id, through
hoprec.tasks.llm.base.resolve_base;
nothing is downloaded by this script itself) and appends the SID tokens to its vocabulary.

Catalogue: `--items` random 4-level SIDs, 3 levels of 48 codes plus a 4th level d that tells
apart items whose first three codes collide (ml-100k has 1,349 items). Prompts: random ordinary
tokens, lengths uniform in [0.9, 1.1] x `--prompt-len` (so batches are left-padded). The defaults
keep the whole run to a few minutes on 2 otherwise idle CPU cores (several times that when
the cores are shared); exact scoring is run on the first `--exact-users` of the same prompts,
because it evaluates every trie node (~2,400 here) per user. The last lines print exact users/s
next to beam users/s (the fastest beam method) and their cost ratio, all from this one run.

The ratio has a floor set by arithmetic, not by code: both pay the prompt (~300 tokens through
the body), but a 20-beam search then feeds 3 x 20 beam tokens per user while exact scoring feeds
every internal trie node (~2,400 tokens, each with a full-vocabulary lm_head for the
normalizer). `flop_ratio` prints that floor for the catalogue and prompts at hand.

Beam search is timed for both methods of
`hoprec.tasks.llm.decoding.constrained_beam_search` ("tree": one
cache row per user, beam tokens packed with a 4D mask; "batch": beams flattened into the batch,
cache reordered every step), and next to the prompt forwards alone, which every method pays.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hoprec.tasks.llm.decoding import constrained_beam_search  # noqa: E402
from hoprec.tasks.llm.exact import exact_item_scores  # noqa: E402
from hoprec.tasks.sids.trie import SidTrie  # noqa: E402

SMOL_VOCAB = 49152


def random_sids(n_items: int, codes: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 4] codes: three random levels of `codes`, then a per-collision counter."""
    abc = rng.integers(0, codes, (n_items, 3))
    order = np.lexsort(abc.T[::-1])
    d = np.zeros(n_items, np.int64)
    s = abc[order]
    same = np.r_[False, (s[1:] == s[:-1]).all(1)]
    run = 0
    for i in range(n_items):  # running count within each group of equal (a, b, c)
        run = run + 1 if same[i] else 0
        d[order[i]] = run
    return np.concatenate([abc, d[:, None]], 1)


def sid_token_ids(sids: np.ndarray, base: int, codes: int) -> tuple[np.ndarray, int]:
    """Token ids: a block of `codes` ids per level (the last level as wide as its largest code)."""
    widths = [codes, codes, codes, int(sids[:, 3].max()) + 1]
    offsets = base + np.cumsum([0] + widths[:-1])
    return sids + offsets, base + sum(widths)


def build_model(args: argparse.Namespace, sids: np.ndarray):
    """(model, SID token ids [n, 4], description); the SID tokens are appended to the vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if args.model:
        from transformers import AutoModelForCausalLM

        from hoprec.tasks.llm.base import resolve_base

        path, kwargs = resolve_base(args.model)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
        base = model.get_input_embeddings().weight.shape[0]
        tok, end = sid_token_ids(sids, base, args.codes)
        model.resize_token_embeddings(end)
        return model.eval(), base, tok, f"{args.model} (+{end - base} SID tokens)"
    tok, end = sid_token_ids(sids, SMOL_VOCAB, args.codes)
    torch.manual_seed(args.seed)
    cfg = LlamaConfig(
        vocab_size=end,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        rope_theta=100000.0,
    )
    model = LlamaForCausalLM(cfg).eval()
    return model, SMOL_VOCAB, tok, f"random Llama, SmolLM2-135M shape, vocab {end}"


def flop_ratio(model, trie: SidTrie, prompt_len: float, beams: int) -> float:
    """Exact / beam multiply-adds per user from weight sizes alone (attention left out).

    Both run the prompt through the body (lm_head for its last token only); beam search then
    feeds L-1 steps of `beams` tokens, exact scoring every internal trie node (depths 1..L-1),
    each through the body and the full lm_head.
    """
    head = model.get_output_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        body -= head
    prompt = prompt_len * body + head
    nodes = sum(trie.num_nodes(d) for d in range(1, trie.depth))
    beam_fed = sum(min(beams, trie.num_nodes(d)) for d in range(1, trie.depth))
    return (prompt + nodes * (body + head)) / (prompt + beam_fed * (body + head))


def _split(methods: str) -> list[str]:
    return [m.strip() for m in methods.split(",") if m.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=16, help="users for beam search")
    ap.add_argument("--exact-users", type=int, default=8, help="users for exact scoring")
    ap.add_argument("--items", type=int, default=1349)
    ap.add_argument("--codes", type=int, default=48, help="codes per level for levels a, b, c")
    ap.add_argument("--prompt-len", type=int, default=300)
    ap.add_argument("--beams", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8, help="users per beam-search batch")
    ap.add_argument("--exact-batch-size", type=int, default=4, help="users per exact-scoring batch")
    ap.add_argument("--beam-methods", default="tree,batch", help="beam-search methods: tree, batch")
    ap.add_argument("--exact-methods", default="tree", help="exact-scoring methods: tree, expand")
    ap.add_argument(
        "--max-tokens", type=int, default=4096, help="exact scoring: rows x tokens per forward"
    )
    ap.add_argument("--model", default=None, help="real weights: asset name, local path or HF id")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    sids = random_sids(args.items, args.codes, rng)
    t0 = time.perf_counter()
    model, base, tok, desc = build_model(args, sids)
    build_s = time.perf_counter() - t0
    trie = SidTrie.from_token_ids(np.arange(args.items), tok)
    n_users = max(args.users, args.exact_users)
    lo, hi = int(0.9 * args.prompt_len), int(1.1 * args.prompt_len)
    prompts = [
        rng.integers(0, base, int(rng.integers(lo, hi + 1))).tolist() for _ in range(n_users)
    ]
    history = [set(rng.choice(args.items, 20, replace=False).tolist()) for _ in range(n_users)]
    fed = sum(trie.num_nodes(d) for d in range(1, trie.depth))
    print(
        f"model: {desc} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
        f"built in {build_s:.1f}s)"
    )
    print(f"catalogue: {args.items} items, {trie}; exact scoring feeds {fed} trie nodes per user")
    print(f"prompts: {lo}-{hi} tokens; torch threads {torch.get_num_threads()}; device cpu")

    # warm-up (first-call allocations), not timed
    constrained_beam_search(model, prompts[:1], trie, num_beams=args.beams, top_k=args.top_k)

    # reference: the prompt forwards alone (last-position logits), which every method pays
    from hoprec.tasks.llm.decoding import left_pad, run_prompt

    t = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, args.users, args.batch_size):
            run_prompt(model, *left_pad(prompts[a : a + args.batch_size]))
    prompt_s = time.perf_counter() - t
    print(
        f"prompt forwards alone (batch {args.batch_size}): {args.users} users in {prompt_s:.1f}s "
        f"= {args.users / prompt_s:.2f} users/s"
    )

    items = None
    beam_rate: dict[str, float] = {}
    for method in _split(args.beam_methods):
        t = time.perf_counter()
        got, _ = constrained_beam_search(
            model,
            prompts[: args.users],
            trie,
            num_beams=args.beams,
            top_k=args.top_k,
            exclude=history[: args.users],
            batch_size=args.batch_size,
            method=method,
        )
        beam_s = time.perf_counter() - t
        beam_rate[method] = args.users / beam_s
        assert (got >= 0).all()
        print(
            f"beam search, method {method} ({args.beams} beams, top-{args.top_k}, batch "
            f"{args.batch_size}): {args.users} users in {beam_s:.1f}s = "
            f"{args.users / beam_s:.2f} users/s"
        )
        if items is not None:
            print(f"  same items as the previous method: {(got == items).mean():.3f}")
        items = got

    exact = None
    exact_rate: dict[str, float] = {}
    for method in _split(args.exact_methods):
        users = prompts[: args.exact_users]
        t = time.perf_counter()
        scores = exact_item_scores(
            model,
            users,
            trie,
            batch_size=args.exact_batch_size,
            method=method,
            max_tokens=args.max_tokens,
        )
        ex_s = time.perf_counter() - t
        exact_rate[method] = args.exact_users / ex_s
        print(
            f"exact scoring, method {method} (batch {args.exact_batch_size}, max_tokens "
            f"{args.max_tokens}): {args.exact_users} users x {args.items} items in {ex_s:.1f}s = "
            f"{args.exact_users / ex_s:.3f} users/s"
        )
        if exact is not None:
            print(f"  max |{method} - previous| = {np.abs(scores - exact).max():.2e}")
        exact = scores
    if exact is not None and items is not None:
        # how often the beam search's top-k equals the exact top-k (history removed)
        k = args.top_k
        agree = []
        for u in range(min(args.users, args.exact_users)):
            s = exact[u].copy()
            s[list(history[u])] = -np.inf
            agree.append(len(set(np.argsort(-s)[:k].tolist()) & set(items[u].tolist())) / k)
        print(
            f"beam top-{k} overlap with exact top-{k}: {np.mean(agree):.2f} "
            f"(over {len(agree)} users; random weights, so only a sanity figure)"
        )
    if beam_rate and exact_rate:
        bm = max(beam_rate, key=beam_rate.__getitem__)
        floor = flop_ratio(model, trie, float(np.mean([len(p) for p in prompts])), args.beams)
        print(f"arithmetic floor of the ratio (multiply-adds, exact / beam): {floor:.1f}x")
        for em, rate in exact_rate.items():
            print(
                f"exact ({em}) {rate:.3f} users/s vs beam ({bm}, {args.beams} beams) "
                f"{beam_rate[bm]:.3f} users/s: exact costs {beam_rate[bm] / rate:.2f}x the beam "
                f"search per user (same model and prompts; target <= 2x)"
            )


if __name__ == "__main__":
    main()
