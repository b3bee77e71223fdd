"""TextDataModule over local CSV / JSON Lines / Parquet / text files: schema, labels, splits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest

from datamodules import TextDataModule
from lit_seqcls.text.tokenization import UNK_ID

WORDS = ["good", "bad"]


def _rows(n: int = 20) -> list[dict]:
    return [{"text": f"a {WORDS[i % 2]} film number {i}", "label": WORDS[i % 2]} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return str(path)


def write_csv(path: Path, rows: list[dict]) -> str:
    datasets.Dataset.from_list(rows).to_csv(str(path), index=False)
    return str(path)


def write_parquet(path: Path, rows: list[dict]) -> str:
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return str(path)


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_local_files_in_every_format_give_the_same_splits(fmt, tmp_path):
    write = WRITERS[fmt]
    train = write(tmp_path / f"train.{fmt}", _rows(20))
    test = write(tmp_path / f"test.{fmt}", _rows(6))
    dm = TextDataModule(data_files={"train": train, "test": test}, val_fraction=0.25)
    assert dm.class_names == ["bad", "good"]
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 15, "validation": 5, "test": 6}
    assert dm.splits["test"][0] == {"text": "a good film number 0", "label": 1}
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.labels is not None and batch.input_ids.shape[0] == len(batch.lengths)


def test_validation_is_carved_with_a_fixed_seed(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", _rows(40))
    first = TextDataModule(data_files={"train": train}, seed=1).splits["validation"]["text"]
    again = TextDataModule(data_files={"train": train}, seed=1).splits["validation"]["text"]
    other = TextDataModule(data_files={"train": train}, seed=2).splits["validation"]["text"]
    assert first == again != other


def test_integer_labels_class_names_and_several_text_fields(tmp_path):
    rows = [{"title": f"t{i}", "body": f"b{i}", "stars": 3 + i % 2} for i in range(10)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dm = TextDataModule(
        data_files={"train": train}, text_field=["title", "body"], label_field="stars"
    )
    assert dm.class_names == ["3", "4"]  # sorted training labels; 3 → 0, 4 → 1
    row = dm.splits["train"].filter(lambda r: r["text"] == "t1\nb1")[0]
    assert row["label"] == 1

    fixed = TextDataModule(data_files={"train": train}, label_field="stars",
                           text_field="title", class_names=["0", "1", "2", "3", "4"])  # fmt: skip
    assert fixed.num_classes == 5 and 4 in fixed.splits["train"]["label"]


def test_integer_labels_mean_the_same_class_when_the_classes_come_from_a_checkpoint(tmp_path):
    # Star ratings 1 and 2: `fit` reads them as the classes "1" and "2". Given those classes (from
    # a checkpoint, or `class_names`), the same integers were read as indices: a test file of
    # 1s was scored as class "2", and a 2 was refused as "never seen in training".
    rows = [{"text": f"t{i}", "label": 1 + i % 2} for i in range(10)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    trained = TextDataModule(data_files={"train": train, "test": train})
    test = write_jsonl(tmp_path / "test.jsonl", rows[:4])
    given = TextDataModule(data_files={"test": test}, class_names=trained.class_names)
    assert trained.class_names == ["1", "2"]
    assert given.splits["test"]["label"] == trained.splits["test"]["label"][:4] == [0, 1, 0, 1]
    # Negative integers are classes too when they name them (-1/0/1 sentiment), also read back.
    signed = [{"text": f"t{i}", "label": i % 3 - 1} for i in range(9)]
    signed_train = write_jsonl(tmp_path / "signed.jsonl", signed)
    assert TextDataModule(data_files={"train": signed_train}).class_names == ["-1", "0", "1"]
    again = TextDataModule(data_files={"test": signed_train}, class_names=["-1", "0", "1"])
    assert again.splits["test"]["label"][:3] == [0, 1, 2]
    # Class names that are not integers keep integers as indices (0 → "neg").
    named = TextDataModule(data_files={"test": test}, class_names=["neg", "pos", "meh"])
    assert named.splits["test"]["label"] == [1, 2, 1, 2]


def test_the_classes_read_are_listed_and_a_label_typo_is_warned_about(tmp_path, caplog):
    rows = [{"text": f"t{i}", "label": ["negative", "positive"][i % 2]} for i in range(9)]
    rows[4]["label"] = "Negative "  # one typo: a class of its own
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    typo = r"'Negative ' \(1 text\), 'negative' \(4 texts\)"
    with pytest.warns(UserWarning, match=typo), caplog.at_level("INFO"):
        dm = TextDataModule(data_files={"train": train})
        assert dm.class_names == ["Negative ", "negative", "positive"]
    assert "Classes read from" in caplog.text and "'positive' (4)" in caplog.text


def test_a_text_file_is_one_text_per_line_for_predict(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", _rows(10))
    new = tmp_path / "new.txt"
    new.write_text("good film\n\nbad one\n", "utf-8")
    dm = TextDataModule(data_files={"train": train, "predict": str(new)})
    assert dm.predict_split == "predict"
    assert dm.texts("predict") == ["good film", "", "bad one"]
    assert dm.splits["predict"].column_names == ["text"]


def test_bom_and_crlf_files_load_correctly(tmp_path):
    jsonl = tmp_path / "train.jsonl"
    body = "\r\n".join(json.dumps(r) for r in _rows(10)) + "\r\n"
    jsonl.write_bytes(b"\xef\xbb\xbf" + body.encode())
    csv = tmp_path / "train.csv"
    csv.write_bytes(b"\xef\xbb\xbftext,label\r\n" + b"".join(
        f"{r['text']},{r['label']}\r\n".encode() for r in _rows(10)))  # fmt: skip
    for path in (jsonl, csv):
        dm = TextDataModule(data_files={"train": str(path)}, val_fraction=0.2)
        texts = dm.texts("train") + dm.texts("validation")
        assert sorted(texts) == sorted(r["text"] for r in _rows(10)), path
        assert dm.class_names == ["bad", "good"]


def test_hard_texts_are_accepted_and_huge_ones_truncated(tmp_path):
    hard = [
        "",
        "?!...",
        "great film 😀🎬",
        "فيلم رائع جدا",  # right-to-left
        "cafe\u0301 nai\u0308ve",  # combining marks
        "zero\u200bwidth\u200djoiner",
        "word " * 200_000,
    ]
    rows = _rows(10) + [{"text": t, "label": WORDS[i % 2]} for i, t in enumerate(hard)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", rows[-len(hard) :])
    dm = TextDataModule(data_files={"train": train, "test": test}, max_length=64)
    dm.setup()
    lengths = dm._encoded["test"]["length"]
    assert lengths[0] == 1 and min(lengths) >= 1 and max(lengths) == 64
    assert dm._encoded["test"]["input_ids"][0] == [UNK_ID]
    assert sum(len(b) for b in dm.test_dataloader()) == len(hard)


@pytest.mark.parametrize(("workers", "preset", "expected"), [(2, None, "false"), (0, None, None),
                                                             (2, "true", "true")])  # fmt: skip
def test_tokenizers_parallelism_is_off_for_forked_workers(workers, preset, expected, tmp_path,
                                                          monkeypatch):  # fmt: skip
    # Workers never tokenize (the splits are tokenized before they fork); saying so up front
    # keeps `tokenizers` from warning in, or deadlocking, forked workers. A user value stays.
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    if preset is not None:
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", preset)
    train = write_jsonl(tmp_path / "train.jsonl", _rows(20))
    dm = TextDataModule(data_files={"train": train}, num_workers=workers, batch_size=4)
    dm.setup()
    assert len(dm.train_dataloader()) > 0
    assert os.environ.get("TOKENIZERS_PARALLELISM") == expected
