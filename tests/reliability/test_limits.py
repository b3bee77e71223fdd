"""Sizes that would not fit are refused up front, with the number and what to do instead."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamodules import SyntheticDataModule, TextDataModule, schema
from datamodules.schema import DataError
from lit_seqcls.text.tokenization import tokenizer_json, train_word_tokenizer


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
    return str(path)


@pytest.mark.parametrize("size", [10_000_000_000, 10_000_001, 2, 0, -1, 1.5, True])
def test_a_vocabulary_that_cannot_be_built_or_would_not_fit_is_refused_at_once(size):
    # No data is read: the check runs in the constructor, before LightningCLI links anything.
    with pytest.raises(ValueError, match=r"max_vocab_size=\S+ is out of range: .* 3 .*10,000,000"):
        SyntheticDataModule(max_vocab_size=size)


def test_the_refusal_says_what_the_size_would_cost():
    with pytest.raises(ValueError, match=r"10,000,000,000 is out of range.*5,120\.0 GB"):
        SyntheticDataModule(max_vocab_size=10_000_000_000)


@pytest.mark.parametrize("size", [3, 30_000, schema.MAX_VOCAB_SIZE])
def test_sizes_in_range_are_accepted(size):
    assert SyntheticDataModule(max_vocab_size=size).max_vocab_size == size


@pytest.mark.parametrize("frequency", [-1, 0.5])
def test_a_negative_or_fractional_min_frequency_is_refused(frequency):
    # -1 reached `tokenizers` as "OverflowError: can't convert negative int to unsigned".
    with pytest.raises(ValueError, match=r"min_frequency=\S+ must be a whole number"):
        SyntheticDataModule(min_frequency=frequency)


def test_a_given_tokenizer_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MAX_VOCAB_SIZE", 5)
    tokenizer = train_word_tokenizer(["one two three four five six"], vocab_size=100)
    path = tmp_path / "tokenizer.json"
    path.write_text(tokenizer_json(tokenizer))
    dm = SyntheticDataModule(tokenizer_file=str(path), max_vocab_size=5)
    with pytest.raises(ValueError, match=r"tokenizer.json' has 8 vocabulary entries, more than"):
        _ = dm.vocab_size


def test_an_id_column_as_labels_is_refused_with_the_counts(tmp_path):
    rows = [{"text": f"review {i}", "label": f"user-{i % 400}"} for i in range(500)]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(
        DataError,
        match=(
            r"train\.jsonl \(split 'train'\): label column 'label' has 400 distinct values in "
            r"500 rows; did you mean another column\?.*`class_names`"
        ),
    ):
        _ = TextDataModule(data_files={"train": train}).num_classes


def test_many_classes_with_enough_rows_and_declared_classes_are_fine(tmp_path):
    rows = [{"text": f"text {i}", "label": f"c{i % 30}"} for i in range(90)]  # 3 rows a class
    train = _jsonl(tmp_path / "train.jsonl", rows)
    assert TextDataModule(data_files={"train": train}).num_classes == 30
    few = _jsonl(tmp_path / "few.jsonl", rows[:40])  # 30 classes in 40 rows: only if declared
    names = [f"c{i}" for i in range(30)]
    assert TextDataModule(data_files={"train": few}, class_names=names).num_classes == 30


def test_a_class_index_that_would_make_a_huge_class_list_is_refused(tmp_path):
    # It used to build a list of a billion names (minutes and tens of GB) for the model.
    rows = [{"text": "a", "label": 0, "name": "neg"}, {"text": "b", "label": 10**9, "name": "pos"}]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    dm = TextDataModule(data_files={"train": train}, label_names_field="name")
    with pytest.raises(DataError, match=r"row 2, field 'label': class index 1,000,000,000 is"):
        _ = dm.num_classes


def test_a_class_index_beyond_int64_is_a_data_error_not_an_overflow(tmp_path):
    # "OverflowError: Python int too large to convert to C long" before.
    path = tmp_path / "train.parquet"
    labels = pa.array([0, 1, 2**63 + 5], pa.uint64())
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": labels}), path)
    dm = TextDataModule(data_files={"train": str(path)}, class_names=["neg", "pos"])
    with pytest.raises(DataError, match=r"row 3, field 'label': label 9223372036854775813 was"):
        _ = dm.splits


def test_more_classes_than_the_limit_are_refused_whoever_gives_them(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MAX_CLASSES", 4)
    train = _jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])
    dm = TextDataModule(data_files={"train": train}, class_names=list("abcde"))
    with pytest.raises(DataError, match=r"5 classes .* more than lit-seqcls supports \(4\)"):
        _ = dm.num_classes
