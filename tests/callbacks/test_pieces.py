"""The small parts: token windows, HTML, figures, and the rank-independent pick."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from callbacks import AttentionMapLogger, figures, sinks, token_maps
from lit_seqcls import Batch


@given(st.lists(st.floats(0, 1), min_size=1, max_size=80), st.integers(1, 30))
def test_the_window_holds_the_most_weight(weights, size):
    start, stop = token_maps.window(weights, size)
    assert stop - start == min(size, len(weights))
    best = max(sum(weights[i : i + size]) for i in range(max(len(weights) - size, 0) + 1))
    assert sum(weights[start:stop]) == pytest.approx(best)


def test_html_escapes_and_keeps_every_token():
    tokens = ["<script>", "a&b", '"q"', "plain"]
    page = token_maps.tokens_html(tokens, [0.1, 0.2, 0.3, 0.4], (True, False))
    assert re.findall(r"<span[^>]*>([^<]*)</span>", page) == [html.escape(t) for t in tokens]
    assert "<script>" not in page and page.count("…") == 1


def test_twenty_classes_have_every_name_on_both_axes():
    names = [f"newsgroup.{i}" for i in range(20)]
    counts = np.random.default_rng(0).integers(0, 30, (20, 20))
    fig = figures.confusion_matrix_figure(counts, names, "Confusion matrix, validation, epoch 3")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert "epoch 3" in ax.get_title() and len(fig.axes) == 2  # the colour bar


class _Trainer:
    sanity_checking, world_size = False, 1


def _batches(labels: list[int], size: int) -> list[Batch]:
    out = []
    for start in range(0, len(labels), size):
        index = torch.arange(start, min(start + size, len(labels)))
        ids = (index[:, None] % 7 + 1).repeat(1, 3)  # (B, 3)
        out.append(Batch(ids, torch.full((len(index),), 3), torch.tensor(labels)[index], index))
    return out


def test_the_pick_is_balanced_and_the_same_on_any_number_of_ranks(monkeypatch):
    labels = [i % 3 for i in range(90)] + [0] * 30  # class 0 is the largest
    batches = _batches(labels, 8)
    one = AttentionMapLogger(num_examples=7, seed=1)
    for batch in batches:
        one.on_validation_batch_end(_Trainer(), None, None, batch, 0)
    one._select(_Trainer())
    assert sorted(np.bincount([ex["label"] for ex in one.selected])) == [2, 2, 3]

    other_seed = AttentionMapLogger(num_examples=7, seed=2)
    for batch in batches:
        other_seed.on_validation_batch_end(_Trainer(), None, None, batch, 0)
    other_seed._select(_Trainer())
    assert other_seed.selected != one.selected

    ranks = [AttentionMapLogger(num_examples=7, seed=1) for _ in range(2)]
    for i, batch in enumerate(batches):  # each batch on one rank, as the eval sampler does
        ranks[i % 2].on_validation_batch_end(_Trainer(), None, None, batch, 0)
    parts = [r._candidates for r in ranks]
    monkeypatch.setattr(sinks, "gather_objects", lambda trainer, obj: parts)
    ranks[0]._select(_Trainer())
    assert ranks[0].selected == one.selected


def test_the_pick_survives_a_checkpoint():
    logger = AttentionMapLogger(num_examples=2)
    logger.selected = [{"index": 3, "label": 1, "ids": [4, 5]}]
    restored = AttentionMapLogger(num_examples=2)
    restored.load_state_dict(logger.state_dict())
    assert restored.selected == logger.selected


@pytest.mark.parametrize("callback", ["ConfusionMatrixLogger", "LengthAnalysisLogger"])
def test_analysis_callbacks_reject_unknown_stages(callback):
    import callbacks

    with pytest.raises(ValueError, match="unknown stages"):
        getattr(callbacks, callback)(stages=["train"])
