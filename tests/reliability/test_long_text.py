"""A huge text costs what its first ``max_length`` tokens cost, and the cut never changes ids.

``TextEncoder`` cuts a text longer than ``max_length × CHARS_PER_TOKEN`` characters before the
tokenizer sees it (``lit_seqcls.text.tokenization``). These tests hold it to the tokenizer's own ids
on texts built to sit on either side of the cut, and to a small, bounded cost on a 50 MB line.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_seqcls.text.encoding import _MAX_GROWTH, CHARS_PER_TOKEN, _cut, _cut_tail, encode
from lit_seqcls.text.tokenization import (
    UNK_ID,
    train_bpe_tokenizer,
    train_word_tokenizer,
)

WORDS = ["the", "cat", "sat", "on", "mat", "café", "naïve", "ΟΔΟΣ", "don´t", "!!", "x_1", ":)"]
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]


@pytest.fixture(scope="module")
def tokenizers():
    return {"word": train_word_tokenizer(CORPUS), "bpe": train_bpe_tokenizer(CORPUS, 80)}


def _reference(tok, texts, max_length, side="right"):
    """The tokenizer alone on the whole text (the ids before the cut existed)."""
    tok.enable_truncation(max_length, direction=side)
    return [e.ids or [UNK_ID] for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


def test_a_text_within_the_bound_is_never_cut():
    bound = 3 * CHARS_PER_TOKEN
    for text in ("a" * bound, "a " * (bound // 2), ""):
        assert _cut(text, bound) is text
        assert _cut_tail(text, bound) is text
    assert len(_cut("ab " * bound, bound)) <= bound
    assert len(_cut_tail("ab " * bound, bound)) <= bound
    assert _cut_tail("ab " * bound, bound)[0] in " \t\n"  # after a blank: no word split


SPACE = st.sampled_from([" ", "  ", "\n", "\t", " \r\n ", "\u00a0", " " * 300])
LONG_TEXT = st.lists(st.tuples(st.sampled_from(WORDS), SPACE), min_size=1, max_size=400).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)


@settings(max_examples=60, deadline=None, database=None)
@given(
    text=LONG_TEXT,
    kind=st.sampled_from(["word", "bpe"]),
    max_length=st.integers(1, 12),
    side=st.sampled_from(["right", "left"]),
)
def test_the_cut_never_changes_the_ids(tokenizers, text, kind, max_length, side):
    # max_length ≤ 12 puts the cut at ≤ 768 characters: most of these texts are cut, many
    # of them inside long blank runs, where the cut must grow to find enough tokens. `left`
    # cuts the text's end and keeps its last tokens.
    tok = tokenizers[kind]
    assert encode(tok, [text], max_length, side) == _reference(tok, [text], max_length, side)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_mostly_blank_text_keeps_its_ids(tokenizers, kind, side):
    text = (" " * 2000).join(WORDS * 3)  # 36 tokens over 70,000 characters
    tok = tokenizers[kind]
    assert encode(tok, [text], 5, side) == _reference(tok, [text], 5, side)


def test_the_cut_stops_growing_at_its_cap(tokenizers):
    # The one documented case where ids can change: a first token beyond 4,096 × max_length
    # characters. The cost stays bounded instead.
    cap = 2 * CHARS_PER_TOKEN * _MAX_GROWTH
    text = " " * (cap + 10) + "cat"
    tok = tokenizers["word"]
    assert encode(tok, [text], 2) == [[UNK_ID]] != _reference(tok, [text], 2)


def _peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
        / 1024
    )


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_a_50_mb_single_line_costs_what_its_first_tokens_cost(tokenizers, kind):
    tok = tokenizers[kind]
    line = " ".join(WORDS) + " "
    text = line * (50_000_000 // len(line))  # one line, no newline
    start = time.perf_counter()
    _reference(tok, [text[:1_000_000]], 400)  # the tokenizer alone on the first 1 MB
    one_mb = time.perf_counter() - start
    measure_memory = Path("/proc/self/clear_refs").exists()
    if measure_memory:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident size
        before = _peak_rss_mb()
    start = time.perf_counter()
    ids = encode(tok, [text], 400)
    assert time.perf_counter() - start < one_mb  # 50 times the text in less time
    assert ids == _reference(tok, [text[:100_000]], 400)
    if measure_memory:
        assert _peak_rss_mb() - before < 64  # the tokenizer alone needed ~3.5 GB
