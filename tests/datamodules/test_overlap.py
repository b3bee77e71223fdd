"""Test texts that also appear in training: one warning, from rank zero, when splits are built."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import datasets
import pytest
from lightning_utilities.core.rank_zero import rank_zero_only

from datamodules import TextDataModule
from datamodules.overlap import count_shared

TRAIN = [{"text": f"review number {i}", "label": "ab"[i % 2]} for i in range(20)]
SHARED = r"also appear in \S*train\.jsonl \(split 'train'\)"


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    return str(path)


def _overlap_warnings(files: dict[str, str], tmp_path: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ = TextDataModule(data_files=files, cache_dir=str(tmp_path / "cache")).splits
    return [str(w.message) for w in caught if "also appear in" in str(w.message)]


def test_the_same_file_for_train_and_test_warns_once(tmp_path):
    # Before: it trained and tested on the same texts without a word.
    train = _jsonl(tmp_path / "train.jsonl", TRAIN)
    said = _overlap_warnings({"train": train, "test": train}, tmp_path)
    assert len(said) == 1
    assert said[0].startswith("20 of the 20 texts of ")
    assert "test scores will be optimistic" in said[0]


def test_shared_texts_are_counted_up_to_case_and_surrounding_whitespace(tmp_path):
    test = [{"text": " REVIEW number 3\n", "label": "b"}, {"text": "review number 4", "label": "a"}]
    test += [{"text": "review  number 5", "label": "b"}, {"text": "", "label": "a"}]  # not these
    files = {"train": _jsonl(tmp_path / "train.jsonl", [*TRAIN, {"text": "", "label": "a"}])}
    files["test"] = _jsonl(tmp_path / "test.jsonl", test)
    said = _overlap_warnings(files, tmp_path)
    assert len(said) == 1 and said[0].startswith("2 of the 4 texts of ")
    assert "test.jsonl (split 'test')" in said[0]


def test_a_given_validation_split_is_checked_too_and_disjoint_splits_are_quiet(tmp_path):
    files = {"train": _jsonl(tmp_path / "train.jsonl", TRAIN[:10])}
    files["validation"] = _jsonl(tmp_path / "dev.jsonl", TRAIN[8:12])
    files["test"] = _jsonl(tmp_path / "test.jsonl", TRAIN[10:])
    said = _overlap_warnings(files, tmp_path)
    assert len(said) == 1 and said[0].startswith("2 of the 4 texts of ")
    assert "validation scores will be optimistic" in said[0]


def test_only_rank_zero_warns(tmp_path, monkeypatch):
    train = _jsonl(tmp_path / "train.jsonl", TRAIN)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert _overlap_warnings({"train": train, "test": train}, tmp_path) == []


def test_a_warm_start_reads_the_cache_and_does_not_count_again(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", TRAIN)
    files, cache = {"train": train, "test": train}, str(tmp_path / "cache")
    with pytest.warns(UserWarning, match=SHARED):
        TextDataModule(data_files=files, cache_dir=cache).setup("fit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TextDataModule(data_files=files, cache_dir=cache).setup("fit")
    assert not [w for w in caught if "also appear in" in str(w.message)]


def test_counting_imdb_sized_splits_takes_well_under_a_second():
    # IMDB: 25,000 + 25,000 reviews of ~1.3 KB; about 0.1 s on one busy core.
    filler = "a fairly long review of a film that goes on about the plot and the actors " * 17
    train = datasets.Dataset.from_dict({"text": [f"{i} {filler}" for i in range(25_000)]})
    test = datasets.Dataset.from_dict({"text": [f"{i} {filler}" for i in range(24_000, 49_000)]})
    start = time.perf_counter()
    assert count_shared(train, test) == 1_000
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("texts", [[], ["only here"]])
def test_nothing_shared_counts_zero(texts):
    train = datasets.Dataset.from_dict({"text": ["a", "b"]})
    assert count_shared(train, datasets.Dataset.from_dict({"text": texts})) == 0
