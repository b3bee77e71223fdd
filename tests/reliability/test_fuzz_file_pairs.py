"""Fuzzed pairs of JSON Lines files (train and test): intact, or a DataError at a bad line.

``datasets`` reads the files of a source with the first file's column types, so a test file of
other types was cast (integer texts became "5", a mixed column its JSON text '"x"') or failed
with a cast error that named no file. Each file is now checked on its own. Hypothesis writes two
files, each with its own text and label types and odd rows; a reference here says which lines
are bad: a text that is not a string, a label whose type is not the first label's. The outcome
must be the content as written, or a ``DataError`` naming a bad line of the file it is in.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from datamodules import DataError, TextDataModule

SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
FAST = settings(max_examples=30, deadline=None, database=None, suppress_health_check=SLOW_CHECKS)
SLOW = settings(FAST, max_examples=200)
TEXTS = {
    "string": st.sampled_from(["a", "b c", "", "NA", "1", "true", "null"]) | st.text(max_size=5),
    "number": st.integers(-2, 2),
    "list": st.lists(st.sampled_from(["a", "b"]), max_size=2),
}
LABELS = {  # few values, so that a test label is often one seen in training
    "string": st.sampled_from(["pos", "neg", "pos", "neg", "1", "true"]),
    "number": st.sampled_from([0, 1, 0, 1, 2.0, 0.5]),
    "boolean": st.booleans(),
    "list": st.lists(st.integers(0, 1), max_size=2),
}


@st.composite
def pairs(draw) -> tuple[list[dict], list[dict]]:
    """Train and test rows with the same text and label types, or (half of the time) the test
    file with a text or a label type of its own; now and then a row of another type or a
    null in either file."""
    text = draw(st.sampled_from(["string"] * 10 + ["number", "list"]))
    label = draw(st.sampled_from(["string"] * 4 + ["number"] * 4 + ["boolean", "list"]))
    train = draw(_rows(text, label, 2, 8))
    if draw(st.booleans()):
        text, label = draw(st.sampled_from([(other, label) for other in TEXTS] +
                                           [(text, other) for other in LABELS]))  # fmt: skip
    return train, draw(_rows(text, label, 1, 4))


@st.composite
def _rows(draw, text: str, label: str, least: int, most: int) -> list[dict]:
    rows = []
    for _ in range(draw(st.integers(least, most))):
        row = {}
        for key, kinds, usual in (("text", TEXTS, text), ("label", LABELS, label)):
            kind = usual if draw(st.integers(0, 19)) else draw(st.sampled_from([*kinds, None]))
            row[key] = None if kind is None else draw(kinds[kind])
        rows.append(row)
    return rows


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    return {str: "string", bool: "boolean", list: "list"}.get(type(value), "number")


def _bad_lines(train: list[dict], test: list[dict]) -> set[tuple[str, int]]:
    """``(file, line)`` of texts that are not strings (null included: named by line since a
    column null in a whole file broke the next file's read) and labels not of the first
    label's type."""
    rows = [("train", n, r) for n, r in enumerate(train, 1)]
    rows += [("test", n, r) for n, r in enumerate(test, 1)]
    first = next((_kind(r["label"]) for _, _, r in rows if r["label"] is not None), None)
    # Numbers: train's all integers make an integer column, which a fraction in test cannot join.
    numbers = [r["label"] for r in train if _kind(r["label"]) == "number"]
    integers = bool(numbers) and all(isinstance(x, int) for x in numbers)
    return {
        (name, number)
        for name, number, row in rows
        if _kind(row["text"]) != "string"
        or _kind(row["label"]) not in (None, first)
        or (name == "test" and integers and _kind(row["label"]) == "number"
            and not float(row["label"]).is_integer())
    }  # fmt: skip


def _canon(label: Any) -> str | list[str]:
    """A label as its class name: 2.0 is the class "2", True is "True"; a list of labels (a
    multi-label row, #18) as the sorted set of its names."""
    if isinstance(label, list):
        return sorted({_canon(x) for x in label})
    return str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)


def _names(label: int | list[int], names: list[str]) -> str | list[str]:
    """A loaded label (a class id, or a multi-label row's ids) as its class name(s)."""
    return sorted({names[i] for i in label}) if isinstance(label, list) else names[label]


def _outcome(train: list[dict], test: list[dict]) -> str:
    bad = _bad_lines(train, test)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, rows in (("train", train), ("test", test)):
            paths[name] = Path(folder, f"{name}.jsonl")
            paths[name].write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
        try:
            dm = TextDataModule(data_files={k: str(p) for k, p in paths.items()}, cache_dir=folder)
            splits, names = dm.splits, dm.class_names
        except DataError as err:
            return _judge_error(str(err), bad)
        except Exception as err:
            return f"bug: {type(err).__module__}.{type(err).__name__}: {err}"[:2000]
    if bad:
        return f"bug: loaded, but lines {sorted(bad)} are bad"
    loaded = [*splits["train"], *splits["validation"]]
    if sorted(r["text"] for r in loaded) != sorted(r["text"] for r in train):
        return f"bug: training texts changed: {[r['text'] for r in loaded]!r:.300}"
    got = [(r["text"], _names(r["label"], names)) for r in splits["test"]]
    want = [(r["text"], _canon(r["label"])) for r in test]
    return "loaded" if got == want else f"bug: test rows {got!r:.300}, written {want!r:.300}"


def _judge_error(message: str, bad: set[tuple[str, int]]) -> str:
    if not re.search(r"(train|test)\.jsonl", message):
        return f"bug: the message names no file: {message}"
    if "could not read" in message:
        return f"bug: only the library's own error: {message}"
    place = re.search(r"(train|test)\.jsonl, line (\d+), field", message)
    if place and (place.group(1), int(place.group(2))) not in bad:
        return f"bug: points at a good line, the bad ones are {sorted(bad)}: {message}"
    return "DataError"


def _check(train: list[dict], test: list[dict]) -> None:
    outcome = _outcome(train, test)
    event(outcome.split(":")[0])
    assert not outcome.startswith("bug"), outcome


@FAST
@given(pairs())
# Found by hypothesis: a null text named by its line; a text column null in the whole first file
@example(([{"text": "a", "label": "pos"}] * 2, [{"text": None, "label": "pos"}]))
@example(([{"text": None, "label": "pos"}] * 2, [{"text": "a", "label": "pos"}]))
# Found by the long run: a fraction in test where train's labels are all integers
@example(([{"text": "a", "label": 0}] * 2, [{"text": "a", "label": 0.5}]))
def test_fuzzed_file_pairs_load_intact_or_name_a_bad_line(pair):
    _check(*pair)


@pytest.mark.slow
@SLOW
@given(pairs())
def test_fuzzed_file_pairs_load_intact_or_name_a_bad_line_long_run(pair):
    _check(*pair)
