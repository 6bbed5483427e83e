"""IIRG's own evaluation: unconstrained generation parsed back into items by IIRG's rule (the
literal port in iirg_port.py is the oracle), malformed outputs, and the invalid-SID counts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY_SIDS
from iirg_port import process_generation_output

from hoprec.tasks.llm.generation import (
    GenerationStats,
    free_scores,
    generate_texts,
    generated_items,
    items_by_sid,
    parse_sids,
)
from hoprec.tasks.llm.prompts import item_label
from hoprec.tasks.llm.scoring import history_prompts, llm_scorer

SIDS = TINY_SIDS  # the `tiny` fixture (conftest) has their tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<a_1><b_2><c_3><d_4>] Title: X", [("a_1", "b_2", "c_3", "d_4")]),
        ("", []),
        ("no sid at all ]", []),
        ("<a_1><b_2><c_3>]", []),  # one level short
        ("<a_1><b_2><d_3><c_4>]", []),  # levels out of order
        ("<b_1><a_2><c_3><d_4>", []),
        (
            "<a_1><b_2><c_3><d_4><a_5><b_6><c_7><d_8>",
            [("a_1", "b_2", "c_3", "d_4"), ("a_5", "b_6", "c_7", "d_8")],
        ),
        ("<a_1><b_2><c_3><d_4><a_5><b_6>", [("a_1", "b_2", "c_3", "d_4")]),  # trailing half
        ("<a_1><e_9><b_2><c_3><d_4>", [("a_1", "b_2", "c_3", "d_4")]),  # other letters: not SIDs
        ("<a_1 ><b_2><c_3><d_4><a_x>", []),  # a broken token shifts the runs
        ("<a_1><b_2><c_3><d_4", []),  # unclosed
        ("<<a_01>>< b_2><c_3><d_4>", []),
    ],
)
def test_parse_sids_on_malformed_outputs(text, expected):
    assert parse_sids(text, 4) == expected


def _random_text(rng: np.random.Generator, sids: list[str], most: int) -> str:
    """A generated continuation: real SIDs, SIDs no item has, broken tokens and prose."""
    pieces = []
    for _ in range(int(rng.integers(0, most))):
        r = rng.random()
        if r < 0.45:
            pieces.append(sids[int(rng.integers(len(sids)))])
        elif r < 0.65:
            codes = rng.integers(0, 4, 4)
            pieces.append("".join(f"<{'abcd'[j]}_{c}>" for j, c in enumerate(codes)))
        elif r < 0.75:
            pieces.append(f"<{'abcde'[int(rng.integers(5))]}_{int(rng.integers(4))}>")
        elif r < 0.85:
            pieces.append("] Title: Something (1995)\n")
        else:
            pieces.append("<a_1><b_")
    return "".join(pieces)


def test_generated_items_equal_iirg_rule_on_random_outputs():
    rng = np.random.default_rng(0)
    lengths = []
    for trial in range(300):
        n = int(rng.integers(3, 60))
        # a few SIDs shared by several items, as after a collision
        codes = rng.integers(0, 3, (n, 4))
        sids = {
            i + 1: "".join(f"<{'abcd'[j]}_{c}>" for j, c in enumerate(codes[i])) for i in range(n)
        }
        pop = rng.integers(0, 5, n + 1).astype(float)
        seen = set(rng.choice(np.arange(1, n + 1), int(rng.integers(0, n)), replace=False).tolist())
        most = 4 if trial % 2 else 12  # long outputs: lists reach 20 and are cut
        texts = [
            _random_text(rng, list(sids.values()), most) for _ in range(int(rng.integers(0, 21)))
        ]
        lengths.append(len(generated_items(texts, items_by_sid(sids), pop, seen, 4)[0]))
        by_sid = items_by_sid(sids)
        got, invalid = generated_items(texts, by_sid, pop, seen, 4)
        tid2item = {",".join(k): v for k, v in by_sid.items()}
        freq = {i: pop[i] for i in range(1, n + 1)}
        assert got == process_generation_output(texts, seen, tid2item, freq, levels=4), trial
        named = [any(tuple(t) in by_sid for t in parse_sids(x, 4)) for x in texts]
        assert invalid == named.count(False)
    assert min(lengths) == 0 and max(lengths) == 20 and lengths.count(20) >= 3  # every path


def test_a_shared_sid_names_its_most_popular_unseen_item():
    sids = {1: "<a_0><b_0><c_0><d_0>", 2: "<a_0><b_0><c_0><d_0>", 3: "<a_1><b_0><c_0><d_0>"}
    pop = np.array([0, 1.0, 5.0, 2.0])
    texts = ["<a_0><b_0><c_0><d_0>]", "<a_1><b_0><c_0><d_0>]", "<a_9><b_0><c_0><d_0>]", "oops"]
    items, invalid = generated_items(texts, items_by_sid(sids), pop, set(), 4)
    assert items == [2, 3, 1] and invalid == 2  # item 1 comes back in the top-up
    items, _ = generated_items(texts, items_by_sid(sids), pop, {2}, 4)
    assert items == [1, 3]
    stats = GenerationStats()
    s = free_scores([texts, ["x"] * 4], [np.array([2]), np.array([3])], sids, pop, 3, stats)
    assert s[0].tolist()[1:] == [-1.0, -np.inf, -2.0]  # item 2 is history
    assert np.isneginf(s[1]).all()
    assert stats.summary() == {
        "users": 2,
        "sequences": 8,
        "invalid_rate": 6 / 8,
        "short@10": 1.0,
        "short@20": 1.0,
    }


def test_free_scorer_generates_parses_and_counts(tiny):
    model, tok = tiny
    labels = {i: item_label(s, None) for i, s in SIDS.items()}
    hist = [np.array([1, 2, 3]), np.array([4]), np.array([5, 6])]
    pop = np.arange(8, dtype=float)
    stats = GenerationStats()
    s = llm_scorer(
        model,
        tok,
        SIDS,
        labels,
        7,
        history=5,
        decode="free",
        num_beams=4,
        popularity=pop,
        stats=stats,
    )(hist)
    assert s.shape == (3, 8) and np.isneginf(s[:, 0]).all()
    assert stats.users == 3 and stats.sequences == 12
    texts = generate_texts(model, tok, history_prompts(tok, hist, labels, 5), num_beams=4)
    by_sid = items_by_sid(SIDS)
    tid2item = {",".join(k): v for k, v in by_sid.items()}
    for u, h in enumerate(hist):  # the scores are the oracle's lists, rank r scoring -r
        assert np.isneginf(s[u, h]).all()
        items = process_generation_output(
            texts[u], set(h.tolist()), tid2item, dict(enumerate(pop)), 4
        )
        assert np.flatnonzero(np.isfinite(s[u])).tolist() == sorted(items)
        assert [int(i) for i in np.argsort(-s[u])[: len(items)]] == items
    with pytest.raises(ValueError, match="popularity"):
        llm_scorer(model, tok, SIDS, labels, 7, decode="free")
