"""The GPU suite (`pytest --run-gpu`, skipped where torch sees no CUDA device): training with
bf16 autocast learns and reloads, the decoders give on CUDA what they give on CPU, and the demo's
fine-tuning (real SmolLM2-135M, the demo's prompt shape) runs and reports its tokens/s.

Nothing in the default run needs a GPU; these prove the device paths where one is lent."""

from __future__ import annotations

import copy

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from test_decoding import prompts_for, random_trie, tiny_model

from hoprec.tasks.llm.checkpoints import load_trained
from hoprec.tasks.llm.decoding import constrained_beam_search
from hoprec.tasks.llm.exact import exact_item_scores
from hoprec.tasks.llm.finetune import TrainParams, train_llm
from hoprec.tasks.llm.instructions import SCHEMA
from hoprec.tasks.llm.prompts import PROMPTS, messages

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abcd" for i in range(8)]


def _sid(i: int) -> str:
    return f"[<a_{i % 8}><b_{i // 8 % 8}><c_{i // 64 % 8}><d_0>]"


def _samples(path, n: int = 64, history: int = 10) -> str:
    """Next-item samples in the demo's shape (last `history` items as SIDs, no titles)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        items = rng.integers(0, 64, history + 1)
        prompt = PROMPTS["next-item"].format(input="\n".join(_sid(int(j)) for j in items[:-1]))
        rows.append(
            {
                "task": "next-item",
                "key": f"n:{i}",
                "user_idx": i,
                "input_items": items[:-1].tolist(),
                "input_pos": list(range(history)),
                "target_items": [int(items[-1])],
                "target_pos": [history],
                "messages": messages(prompt, _sid(int(items[-1]))),
                "loss_weight": 1.0,
            }
        )
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return str(path)


def test_training_on_cuda_learns_and_reloads(tiny_base, tmp_path):
    data = _samples(tmp_path / "train.parquet", n=16, history=2)
    p = TrainParams(base=tiny_base, max_steps=30, batch_size=8, lr=5e-2, device="cuda")
    res = train_llm(data, SID_TOKENS, p, tmp_path / "run")
    losses = [r["loss"] for r in res.history]
    assert losses[-1] < 0.7 * losses[0], losses
    model, tok, _ = load_trained(tmp_path / "run", "cuda", merge=True)
    assert next(model.parameters()).device.type == "cuda"
    cpu_model, _, _ = load_trained(tmp_path / "run", "cpu", merge=True)
    ids = torch.tensor([tok.encode(_sid(3), add_special_tokens=False)])
    with torch.no_grad():
        a = model(input_ids=ids.cuda()).logits.float().cpu()
        b = cpu_model(input_ids=ids).logits
    torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("method", ["tree", "batch"])
def test_decoders_on_cuda_equal_cpu(method):
    rng = np.random.default_rng(1)
    trie, _ = random_trie(rng, 60, 4)
    prompts = prompts_for(rng, rng.integers(3, 12, 5))
    cpu = tiny_model()
    gpu = copy.deepcopy(cpu).to("cuda")  # tiny_model is cached: never move the shared one
    ex_cpu = exact_item_scores(cpu, prompts, trie)
    ex_gpu = exact_item_scores(gpu, prompts, trie, device="cuda")
    np.testing.assert_allclose(ex_gpu, ex_cpu, atol=1e-3, rtol=1e-3)
    it_cpu, sc_cpu = constrained_beam_search(cpu, prompts, trie, num_beams=8, method=method)
    it_gpu, sc_gpu = constrained_beam_search(
        gpu, prompts, trie, num_beams=8, method=method, device="cuda"
    )
    assert (it_gpu[:, :3] == it_cpu[:, :3]).mean() > 0.9  # near-ties may swap on CUDA
    np.testing.assert_allclose(sc_gpu[:, 0], sc_cpu[:, 0], atol=1e-3, rtol=1e-3)


def test_demo_training_on_cuda(tmp_path, capsys):
    """The demo's fine-tuning on the embedded SmolLM2-135M (LoRA, 60 steps of 8, history 10):
    it learns, and its tokens/s is printed for the note."""
    data = _samples(tmp_path / "train.parquet", n=256, history=10)
    p = TrainParams(max_steps=60, batch_size=8, device="cuda", log_every=10, save_every=0)
    res = train_llm(data, SID_TOKENS, p, tmp_path / "run")
    losses = [r["loss"] for r in res.history]
    assert losses[-1] < losses[0], losses
    with capsys.disabled():
        tps = np.mean([r["tokens_per_s"] for r in res.history[1:]])
        print(f"\nSmolLM2-135M LoRA on CUDA: {tps:.0f} tokens/s, {res.seconds:.1f} s for 60 steps")
