"""How the new SID token rows start (`--sid-init`): transformers' `mean` rows are all alike,
`spread` rows are distinct with the vocabulary's own spread; both seeded, and a spread run
trains and reloads like any other."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_SIDS, write_successor_samples

from hoprec.tasks.llm.base import init_new_rows, token_modules
from hoprec.tasks.llm.checkpoints import load_trained
from hoprec.tasks.llm.finetune import TrainParams, prepare_model, train_llm

SID_TOKENS = sorted({t for s in TINY_SIDS.values() for t in s.replace("><", "> <").split()})


def _params(base: str, **kw) -> TrainParams:
    return TrainParams(base=base, max_steps=4, batch_size=4, lr=1e-2, save_every=0, **kw)


def _rows(model, new_ids: list[int]) -> list[torch.Tensor]:
    """The new rows of the input embeddings and, when untied, of the output layer."""
    layers = token_modules(model.get_base_model())
    return [m.weight[min(new_ids) :].detach().clone() for m in layers]


@pytest.mark.parametrize("fixture", ["tiny_base", "tiny_untied_base"])
def test_mean_rows_are_alike_and_spread_rows_are_distinct(fixture, request):
    base = request.getfixturevalue(fixture)
    mean_model, _, new_ids = prepare_model(_params(base), SID_TOKENS)
    spread_model, _, _ = prepare_model(_params(base, sid_init="spread"), SID_TOKENS)
    again, _, _ = prepare_model(_params(base, sid_init="spread"), SID_TOKENS)
    other_seed, _, _ = prepare_model(_params(base, sid_init="spread", seed=1), SID_TOKENS)
    old = spread_model.get_base_model().get_input_embeddings().weight[: min(new_ids)].detach()
    for mean_rows, rows, same, other in zip(
        _rows(mean_model, new_ids),
        _rows(spread_model, new_ids),
        _rows(again, new_ids),
        _rows(other_seed, new_ids),
    ):
        assert len(rows) == len(SID_TOKENS)
        # transformers' rows: the old mean with 1e-9 of the covariance, all but identical
        assert float(mean_rows.std(0).max()) < 1e-3 * float(old.std(0).mean())
        # spread rows: as spread as the vocabulary's (a loose bound: few rows, small model)
        ratio = float(rows.std(0).mean() / old.std(0).mean())
        assert 0.5 < ratio < 1.5, ratio
        torch.testing.assert_close(rows, same)  # seeded
        assert not torch.allclose(rows, other)


def test_spread_rows_train_and_reload(tiny_untied_base, tmp_path, monkeypatch):
    """The logits just before saving equal those after the standard reload: the spread rows
    (input and untied output) travel in the adapter, whatever rows the reloading base draws."""
    import hoprec.tasks.llm.finetune as ft

    samples = write_successor_samples(tmp_path / "s.parquet", TINY_SIDS)
    p = _params(tiny_untied_base, sid_init="spread")
    text = f"After [{TINY_SIDS[1]}]? [{TINY_SIDS[2]}]"
    seen: dict[str, torch.Tensor] = {}
    real_save = ft.save_trained

    def save_and_remember(model, tokenizer, *a, **kw):
        model.eval()
        with torch.no_grad():
            ids = tokenizer(text, return_tensors="pt").input_ids
            seen["before"] = model(input_ids=ids).logits
        return real_save(model, tokenizer, *a, **kw)

    monkeypatch.setattr(ft, "save_trained", save_and_remember)
    res = train_llm(samples, SID_TOKENS, p, tmp_path / "run")
    assert res.steps == 4
    model, tok, meta = load_trained(tmp_path / "run", "cpu")
    assert meta["params"]["sid_init"] == "spread"
    with torch.no_grad():
        after = model(input_ids=tok(text, return_tensors="pt").input_ids).logits
    torch.testing.assert_close(after, seen["before"], atol=1e-5, rtol=1e-5)


def test_sid_init_is_part_of_the_model_id_only_when_not_the_default(tiny_base):
    assert "sid_init" not in _params(tiny_base).identity()
    assert _params(tiny_base, sid_init="spread").identity()["sid_init"] == "spread"
    with pytest.raises(ValueError, match="sid_init must be one of mean, spread"):
        _params(tiny_base, sid_init="zeros")
    with pytest.raises(ValueError, match="sid_init must be one of"):
        init_new_rows(None, 0, "zeros", 0)
