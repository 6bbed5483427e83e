"""Data-parallel training: 2 CPU processes (torchrun, gloo, accelerate) give the loss curve and
weights of one process with the same global batch, and a rerun resumes from their checkpoint."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from hoprec.tasks.llm.ddp import launch
from hoprec.tasks.llm.finetune import TrainParams, train_llm
from hoprec.tasks.llm.instructions import SCHEMA

SID_TOKENS = [f"<{lvl}_{i}>" for lvl in "abcd" for i in range(4)]


def _sid(i: int) -> str:
    return f"[<a_{i % 4}><b_{i // 4 % 4}><c_0><d_0>]"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> str:
    """Samples of different lengths and weights, so a rank's share really differs."""
    rows = [
        {
            "task": "next-item" if i % 3 else "collaborative",
            "key": f"k:{i}",
            "user_idx": i,
            "input_items": [i % 16],
            "input_pos": [0],
            "target_items": [(i * 5 + 3) % 16],
            "target_pos": [1],
            "messages": [
                {
                    "role": "user",
                    "content": "After " + " then ".join(_sid(j) for j in range(i % 4 + 1)) + "?",
                },  # fmt: skip
                {
                    "role": "assistant",
                    "content": "\n".join(_sid((i * 5 + 3 + j) % 16) for j in range(i % 2 + 1)),
                },  # fmt: skip
            ],
            "loss_weight": 1.0 if i % 3 else 0.5,
        }
        for i in range(24)
    ]
    path = tmp_path_factory.mktemp("ddp") / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return str(path)


def _params(base: str, **kw) -> TrainParams:
    return TrainParams(
        **{
            "base": base,
            "max_steps": 6,
            "batch_size": 4,
            "grad_accum": 2,
            "lr": 1e-2,
            "save_every": 2,
            "log_every": 1,
            "device": "cpu",
            "lora_dropout": 0.0,  # dropout masks are drawn per process: equal only in expectation
            **kw,
        }
    )


def _adapter(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "adapter_model.safetensors"))


def test_two_processes_equal_one_and_resume(tiny_base, samples, tmp_path):
    one = train_llm(samples, SID_TOKENS, _params(tiny_base), tmp_path / "one")
    meta = launch(samples, SID_TOKENS, _params(tiny_base, devices=2), tmp_path / "two", {})
    a = [r["loss"] for r in one.history]
    b = [r["loss"] for r in meta["history"]]
    assert len(a) == len(b) == 6
    assert a[-1] < a[0]  # it trains
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), atol=1e-5, rtol=1e-4)
    wa, wb = _adapter(tmp_path / "one"), _adapter(tmp_path / "two")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], atol=1e-5, rtol=1e-4)
    # a rerun after a crash between the step-4 checkpoint and the end resumes there
    ckpts = sorted(p.name for p in (tmp_path / "two" / "checkpoints").glob("step-*.pt"))
    assert ckpts[-1] == "step-0000004.pt"
    shutil.rmtree(tmp_path / "two" / "model")
    (tmp_path / "two" / "hoprec_model.json").unlink()
    ckpt = tmp_path / "two" / "checkpoints" / ckpts[-1]
    state = torch.load(ckpt, weights_only=False)
    state["history"][0]["loss"] = 123.0  # a mark only a resumed run carries
    torch.save(state, ckpt)
    again = launch(samples, SID_TOKENS, _params(tiny_base, devices=2), tmp_path / "two", {})
    assert [r["step"] for r in again["history"]] == [1, 2, 3, 4, 5, 6]
    assert again["history"][0]["loss"] == 123.0
    torch.testing.assert_close(
        torch.tensor([r["loss"] for r in again["history"][1:]]),
        torch.tensor(a[1:]),
        atol=1e-5,
        rtol=1e-4,
    )
    assert (
        json.loads((tmp_path / "two" / "hoprec_model.json").read_text())["params"] == meta["params"]
    )


def test_what_ddp_does_not_support_is_named(tiny_base):
    with pytest.raises(ValueError, match="select_every"):
        _params(tiny_base, devices=2, select_every=2)
    with pytest.raises(ValueError, match="generative"):
        _params(tiny_base, devices=2, objective="simgr")
    with pytest.raises(ValueError, match="devices"):
        _params(tiny_base, devices=0)
    with pytest.raises(ValueError, match="idles"):
        _params(tiny_base, devices=8)
    assert "devices" not in _params(tiny_base, devices=2).identity()
