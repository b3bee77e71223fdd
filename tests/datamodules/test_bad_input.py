"""Bad input: an error that names the file, the row (or line) and the field, and says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules import DataError, TextDataModule
from lit_seqcls.validation import ConfigValueError

GOOD = [{"text": f"text {i}", "label": ["neg", "pos"][i % 2]} for i in range(8)]


def _jsonl(path: Path, rows: list) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    return str(path)


def _load(tmp_path: Path, train: list | bytes, test: list | None = None, **kwargs) -> None:
    path = tmp_path / "train.jsonl"
    if isinstance(train, bytes):
        path.write_bytes(train)
    else:
        _jsonl(path, train)
    files = {"train": str(path)}
    if test is not None:
        files["test"] = _jsonl(tmp_path / "test.jsonl", test)
    _ = TextDataModule(data_files=files, **kwargs).splits


def test_missing_text_column(tmp_path):
    with pytest.raises(
        ValueError, match=r"train\.jsonl \(split 'train'\): no text column 'body'.*`text_field`"
    ):
        _load(tmp_path, GOOD, text_field="body")


def test_missing_label_column(tmp_path):
    rows = [{"text": "a"}, {"text": "b"}]
    with pytest.raises(
        ValueError, match=r"train\.jsonl \(split 'train'\): no 'label' column.*`label_field`"
    ):
        _load(tmp_path, rows)


def test_missing_label_column_in_test(tmp_path):
    # `datasets` gives all splits the train split's columns, so this reads as null labels.
    with pytest.raises(ValueError, match=r"test\.jsonl \(split 'test'\).*'label'.*`predict`"):
        _load(tmp_path, GOOD, test=[{"text": "x"}])


def test_null_text(tmp_path):
    rows = [*GOOD[:3], {"text": None, "label": "pos"}, *GOOD[3:]]
    with pytest.raises(
        ValueError,
        match=(
            r"train\.jsonl \(split 'train'\), row 4, field 'text': the "
            r"text is missing \(null\)\. Fill"
        ),
    ):
        _load(tmp_path, rows)


def test_null_label(tmp_path):
    rows = [*GOOD[:5], {"text": "x", "label": None}, *GOOD[5:]]
    with pytest.raises(
        ValueError,
        match=(
            r"train\.jsonl \(split 'train'\), row 6, field 'label': the "
            r"label is missing \(null\)"
        ),
    ):
        _load(tmp_path, rows)


def test_empty_file(tmp_path):
    with pytest.raises(
        ValueError, match=r"data file \S*train\.jsonl is empty \(no rows\)\. Fill it"
    ):
        _load(tmp_path, b"")
    with pytest.raises(ValueError, match="is empty"):
        _load(tmp_path, b"\xef\xbb\xbf\r\n\n")


def test_malformed_json_line(tmp_path):
    lines = [json.dumps(r) for r in GOOD]
    lines[4] = '{"text": "broken", "label": '
    with pytest.raises(
        ValueError, match=r"train\.jsonl, line 5: malformed JSON .*fix or remove that line"
    ):
        _load(tmp_path, "\n".join(lines).encode())


def test_malformed_json_line_says_at_once(tmp_path):
    # json's message is "Invalid control character at"; ours adds "column 12" to it.
    lines = [json.dumps(r) for r in GOOD]
    lines[2] = '{"text": "a\tb", "label": "pos"}'  # a raw tab inside a string
    with pytest.raises(
        ValueError, match=r"line 3: malformed JSON \(Invalid control character at column 12\)\."
    ):
        _load(tmp_path, "\n".join(lines).encode())


def test_invalid_utf8(tmp_path):
    lines = [json.dumps(r).encode() for r in GOOD]
    lines[2] = b'{"text": "caf\xe9", "label": "pos"}'
    with pytest.raises(
        ValueError, match=r"train\.jsonl, line 3: invalid UTF-8.*Re-save the file as UTF-8"
    ):
        _load(tmp_path, b"\n".join(lines))


def test_invalid_utf8_in_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nok,pos\nfine,neg\ncaf\xe9,pos\n")
    with pytest.raises(ValueError, match=r"train\.csv, line 4: invalid UTF-8"):
        _ = TextDataModule(data_files={"train": str(path)}).splits


def test_label_never_seen_in_training(tmp_path):
    test = [{"text": "a", "label": "pos"}, {"text": "b", "label": "neutral"}]
    with pytest.raises(
        ValueError,
        match=(
            r"test\.jsonl \(split 'test'\), row 2, field 'label': label "
            r"'neutral' was never seen in training \(classes: \['neg', "
            r"'pos'\]\)"
        ),
    ):
        _load(tmp_path, GOOD, test=test)


def test_integer_label_never_seen_in_training(tmp_path):
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(8)]
    with pytest.raises(
        ValueError, match=r"row 2, field 'label': label 7 was never seen in training"
    ):
        _load(tmp_path, rows, test=[{"text": "a", "label": 0}, {"text": "b", "label": 7}])


def test_negative_label_in_a_labelled_split(tmp_path):
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(8)] + [{"text": "u", "label": -1}]
    with pytest.raises(ValueError, match=r"row 9, field 'label': label -1 is negative.*`predict`"):
        _load(tmp_path, rows, class_names=["neg", "pos"])


def test_single_class_training_split(tmp_path):
    rows = [{"text": f"t{i}", "label": "pos"} for i in range(8)]
    with pytest.raises(
        ValueError,
        match=(
            r"train\.jsonl \(split 'train'\), field 'label': every "
            r"training row has the same class \('pos', 8 rows\)"
        ),
    ):
        _load(tmp_path, rows)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data file \S*nope\.jsonl does not exist"):
        _ = TextDataModule(data_files={"train": str(tmp_path / "nope.jsonl")}).splits
    with pytest.raises(ValueError, match=r"cannot tell the format of data\.xyz"):
        _ = TextDataModule(data_files={"train": "data.xyz"}).splits


def test_hub_dataset_offline_without_cache_says_what_to_do():
    # conftest sets HF_DATASETS_OFFLINE=1 and an empty HF_HOME: fails fast, never hangs.
    with pytest.raises(
        ConnectionError, match=r"'stanfordnlp/imdb'.*HF_DATASETS_OFFLINE=1 HF_HOME=.*--data\.path"
    ):
        _ = TextDataModule(path="stanfordnlp/imdb").splits


# ---- CSV separators: read from the header, or given with `delimiter` ----------------------------
@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_a_csv_separated_otherwise_is_read_with_its_separator(sep, tmp_path):
    # Before: one column 'text;label', and the advice to set `label_field`, which cannot help.
    path = tmp_path / "train.csv"
    path.write_text(f"text{sep}label\n" + f"fine, thanks{sep}pos\nnot good, no{sep}neg\n" * 2)
    dm = TextDataModule(data_files={"train": str(path)}, val_fraction=0.5)
    texts = [*dm.splits["train"]["text"], *dm.splits["validation"]["text"]]
    assert sorted(texts) == sorted(["fine, thanks", "not good, no"] * 2)
    assert dm.class_names == ["neg", "pos"]


def test_a_wrong_delimiter_is_refused_saying_which_to_pass(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text;label\nfine;pos\nbad;neg\n")
    with pytest.raises(
        DataError,
        match=(
            r"train\.csv, line 1: the header 'text;label' is one column, not separated by ',';"
            r" it looks ';'-separated: pass --data\.init_args\.delimiter ';'"
        ),
    ):
        _ = TextDataModule(data_files={"train": str(path)}, delimiter=",").splits
    dm = TextDataModule(data_files={"train": str(path)}, delimiter=";", val_fraction=0.5)
    assert dm.class_names == ["neg", "pos"]


def test_files_of_one_split_separated_differently_are_refused(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nfine,pos\n")
    (tmp_path / "b.csv").write_text("text;label\nbad;neg\n")
    files = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    with pytest.raises(
        DataError, match=r"split 'train' are separated differently \(\S*a\.csv: ','"
    ):
        _ = TextDataModule(data_files={"train": files}).splits


@pytest.mark.parametrize("delimiter", [";;", "", '"', "\n"])
def test_a_delimiter_that_is_not_one_character_is_refused_at_once(delimiter):
    with pytest.raises(ConfigValueError, match=r"delimiter must be one character .* got "):
        TextDataModule(data_files={"train": "never_read.csv"}, delimiter=delimiter)
    assert TextDataModule(data_files={"train": "x.csv"}, delimiter="\\t").delimiter == "\t"
