"""Files of one source whose column types disagree: the DataError names the file, line and field.

Before the per-file checks, ``datasets`` read every file with the first file's column types: a
later file was cast to them silently (integer texts became "5", a mixed column its JSON text
'"x"') or failed with a pyarrow cast error that named every file but the bad one.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from datamodules import DataError, TextDataModule

TRAIN = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(6)]


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    return str(path)


def _splits(tmp_path: Path, files: dict[str, str | list[str]]) -> datasets.DatasetDict:
    return TextDataModule(data_files=files, cache_dir=str(tmp_path / "cache")).splits


JSON_CASES = {  # name: (test rows, the message); train.jsonl is TRAIN. Old behaviour in comments.
    # "could not read [train.jsonl, test.jsonl] as json: TypeError: Couldn't cast array of type
    # list<item: string> to string"
    "list labels": ([{"text": "x", "label": ["a"]}],
                    r"test\.jsonl, line 1, field 'label': a list \(\['a'\]\), but \S*train\.jsonl, "
                    r"line 1 has a string there; every file must give a column the same type"),
    # loaded: the integer texts were cast to the strings "1", "2"
    "integer texts": ([{"text": "x", "label": "a"}, {"text": 2, "label": "b"}],
                      r"test\.jsonl, line 2, field 'text': a number \(2\) where a text belongs"),
    # "row 0, field 'label': label '1' was never seen in training": 1 had become "1"
    "integer labels": ([{"text": "x", "label": 1}],
                       r"test\.jsonl, line 1, field 'label': a number \(1\), but \S*train\.jsonl"),
    # loaded with the texts '"x"' and '5': a mixed column in a second file became JSON text
    "mixed texts": ([{"text": "x", "label": "a"}, {"text": 5, "label": "b"}],
                    r"test\.jsonl, line 2, field 'text': a number \(5\) where a text belongs"),
    # "label '\"a\"' was never seen in training": the same, for a label column
    "mixed labels": ([{"text": "x", "label": "a"}, {"text": "y", "label": ["b"]}],
                     r"test\.jsonl, line 2, field 'label': a list \(\['b'\]\), but \S*train"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(JSON_CASES))
def test_a_test_file_of_other_types_is_named_by_line_and_field(name, tmp_path):
    rows, message = JSON_CASES[name]
    files = {"train": _jsonl(tmp_path / "train.jsonl", TRAIN)}
    files["test"] = _jsonl(tmp_path / "test.jsonl", rows)
    with pytest.raises(DataError, match=message):
        _splits(tmp_path, files)


def test_two_files_of_one_split_are_checked_against_each_other(tmp_path):
    files = [_jsonl(tmp_path / "a.jsonl", TRAIN), _jsonl(tmp_path / "b.jsonl", TRAIN[:2])]
    _jsonl(tmp_path / "b.jsonl", [*TRAIN[:2], {"text": "x", "label": True}])
    with pytest.raises(DataError, match=r"b\.jsonl, line 3, field 'label': a boolean \(True\)"):
        _splits(tmp_path, {"train": files})


def test_an_unused_column_that_breaks_the_load_is_named(tmp_path):
    # A column lit-seqcls never reads still has to be cast; the cast error named no file.
    train = [{**r, "meta": "x"} for r in TRAIN]
    files = {"train": _jsonl(tmp_path / "train.jsonl", train)}
    files["test"] = _jsonl(tmp_path / "test.jsonl", [{"text": "t", "label": "a", "meta": [1]}])
    with pytest.raises(DataError, match=r"test\.jsonl, line 1, field 'meta': a list \(\[1\]\)"):
        _splits(tmp_path, files)


def test_files_that_agree_load_intact(tmp_path):
    # ints and floats are both JSON numbers; nulls and columns the first file has but a later
    # one lacks have no type to disagree on
    train = [{"text": f"t{i}", "label": i % 2, "id": i} for i in range(6)]
    test = [{"text": "x", "label": 1.0}, {"text": "y", "label": 0, "id": None}]
    files = {"train": _jsonl(tmp_path / "train.jsonl", train)}
    files["test"] = _jsonl(tmp_path / "test.jsonl", test)
    splits = _splits(tmp_path, files)
    assert splits["test"]["text"][:] == ["x", "y"] and splits["test"]["label"][:] == [1, 0]


def test_a_fraction_where_the_first_file_has_only_whole_numbers_is_named(tmp_path):
    # "could not read [...train.jsonl, ...test.jsonl] as json: ArrowInvalid: Float value
    # 0.500000 was truncated converting to int64" (found by the fuzz test's long run)
    train = [{"text": f"t{i}", "label": i % 2} for i in range(6)]
    test = [{"text": "x", "label": 1.0}, {"text": "y", "label": 0.5}]  # 1.0 is cast as 1
    files = {"train": _jsonl(tmp_path / "train.jsonl", train)}
    files["test"] = _jsonl(tmp_path / "test.jsonl", test)
    with pytest.raises(
        DataError,
        match=r"test\.jsonl, line 2, field 'label': a number that is not whole \(0\.5\), but "
        r"every 'label' in \S*train\.jsonl is a whole number \(the first: line 1\)",
    ):
        _splits(tmp_path, files)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_column_the_first_file_lacks_is_named(fmt, tmp_path):
    # "could not read [...]: CastError: Couldn't cast ... because column names don't match"
    write = {"jsonl": "to_json", "csv": "to_csv", "parquet": "to_parquet"}[fmt]
    test = [{"text": "x", "label": "a", "source": "web"}]
    for split, rows in (("train", TRAIN), ("test", test)):
        getattr(datasets.Dataset.from_list(rows), write)(str(tmp_path / f"{split}.{fmt}"))
    files = {split: str(tmp_path / f"{split}.{fmt}") for split in ("train", "test")}
    line = "" if fmt == "parquet" else ", line 1"
    with pytest.raises(
        DataError,
        match=rf"test\.{fmt}{line}, field 'source': a column that \S*train\.{fmt} does not have "
        r"\(it has \['label', 'text'\]\), and every file is read with the first file's columns",
    ):
        _splits(tmp_path, files)


CSV_CASES = {  # name: (train CSV, test CSV, message); "could not read [...] as csv: ArrowInvalid:
    # Failed to parse string: 'neg' as a scalar of type int64"
    "names after indices": ("text,label\nx,0\ny,1\n", "text,label\nz,0\nw,neg\n",
                            r"test\.csv, line 3, field 'label': 'neg' reads as a string, but "
                            r"\S*train\.csv, line 2 has a number there \('0'\)"),
    "names in the second of two files": ("text,label\nx,0\ny,1\n", "text,label\nz,pos\n",
                                         r"test\.csv, line 2, field 'label': 'pos' reads as a str"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_csv_files_whose_labels_read_as_other_types_are_named(name, tmp_path):
    train, test, message = CSV_CASES[name]
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "test.csv").write_text(test)
    files = {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")}
    if name == "names in the second of two files":
        files = {"train": [files["train"], files["test"]]}
    with pytest.raises(DataError, match=message):
        _splits(tmp_path, files)


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({"text": ["x"], "label": [["a"]]}, r"test\.parquet, field 'label': a list column"),
        ({"text": [5], "label": ["a"]}, r"test\.parquet, field 'text': a number column \(int64\) "),
    ],
)
def test_parquet_files_of_other_column_types_are_named(test, message, tmp_path):
    datasets.Dataset.from_list(TRAIN).to_parquet(str(tmp_path / "train.parquet"))
    datasets.Dataset.from_dict(test).to_parquet(str(tmp_path / "test.parquet"))
    files = {split: str(tmp_path / f"{split}.parquet") for split in ("train", "test")}
    with pytest.raises(DataError, match=message):
        _splits(tmp_path, files)


def test_a_text_column_null_in_every_training_row_is_named_by_line(tmp_path):
    # Found by the slow fuzz tier: `datasets` typed the column null from the first file and
    # failed on the test file's strings with "cast array of type string to null", no line named.
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text('{"text": null, "label": "pos"}\n{"text": null, "label": "pos"}\n')
    test.write_text('{"text": "a", "label": "pos"}\n')
    dm = TextDataModule(data_files={"train": str(train), "test": str(test)},
                        cache_dir=str(tmp_path / "cache"))  # fmt: skip
    with pytest.raises(DataError, match=r"train\.jsonl, line 1, field 'text': the text is missing"):
        _ = dm.splits


def test_a_json_array_file_is_named_by_row_counted_from_one(tmp_path):
    # A .json array has no lines to point at: its objects are rows, counted from 1 as in every
    # other message (they were counted from 0 here).
    files = {"train": _jsonl(tmp_path / "train.jsonl", TRAIN)}
    test = tmp_path / "test.json"
    test.write_text(json.dumps([{"text": "x", "label": "a"}, {"text": 5, "label": "b"}]), "utf-8")
    files["test"] = str(test)
    with pytest.raises(DataError, match=r"test\.json, row 2, field 'text': a number \(5\)"):
        _splits(tmp_path, files)
