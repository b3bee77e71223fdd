"""Schema checks at the boundary where data enters: each error names the source, row and field.

Every check raises a ``DataError`` (a ``ValueError``) that says what is wrong, where (file or
split, row, field) and what to do, before anything reaches the tokenizer or torch. Rows are
counted from 1 in the order the source holds them (a CSV's header line is not a row), as
``lit-seqcls export`` (its evaluation) and ``predict --bundle`` count them.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import datasets

from lit_seqcls.errors import UserError
from lit_seqcls.validation import ConfigValueError

TEXT, LABEL = "text", "label"
FEW_CLASSES = 20  # up to this many classes, a label column is never suspected of being free text
# Per-class metrics and confusion matrices grow with the classes (a confusion matrix holds
# classes² counts: 800 MB at 10,000), and a softmax over more is another kind of problem.
MAX_CLASSES = 10_000
# The model's embedding has one row per vocabulary entry: 10M rows are 5 GB of float32 at
# dimension 128 (three times that with Adam's moments); word vocabularies stay far below it.
MAX_VOCAB_SIZE = 10_000_000


class DataError(ValueError, UserError):
    """Bad input data: the message names the file (or split), the row or line and the field, and
    says what to do. Catch it to tell a user's bad file from a bug in the code.

    Example:
        >>> check_label_value(["pos", "neg"], "train.jsonl (split 'train')", 4, "label")
        Traceback (most recent call last):
        ...
        datamodules.schema.DataError: train.jsonl (split 'train'), row 4, field 'label': a label \
is one class name (a string) or class index (an integer), got a list: ['pos', 'neg']. ...
    """


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file named in the config does not exist (also a ``FileNotFoundError``)."""


def check_texts(ds: datasets.Dataset, where: str) -> None:
    """Every row has a string ``text`` (empty strings are fine: they become one ``[UNK]``)."""
    if TEXT not in ds.column_names:
        raise DataError(
            f"{where}: no {TEXT!r} column (columns: {ds.column_names}). "
            "Name the column that holds the text with `text_field`."
        )
    for row, text in enumerate(ds[TEXT], 1):
        if not isinstance(text, str):
            raise DataError(
                f"{where}, row {row}, field {TEXT!r}: expected a string, got {text!r:.80}. "
                "Fill in or remove that row (an empty string is allowed)."
            )


def check_not_empty(ds: datasets.Dataset, where: str) -> None:
    """A split with no rows is a mistake (a header-only CSV, a filtered-out file): say so."""
    if len(ds) == 0:
        raise DataError(
            f"{where} has no rows. Add data to it, or leave it out of the configuration."
        )


def check_labels(
    ds: datasets.Dataset, where: str, class_names: list[str], multi_label: bool = False
) -> None:
    """Every row has an integer ``label`` that is a class index in ``[0, len(class_names))``
    (``multi_label``: a list of such indices)."""
    if LABEL not in ds.column_names:
        raise DataError(
            f"{where}: no {LABEL!r} column (columns: {ds.column_names}). Name the column "
            "that holds the class with `label_field`, or use the split only for `predict`."
        )
    for row, label in enumerate(ds[LABEL], 1):
        if not multi_label:
            check_class_index(label, where, row, LABEL, class_names)
            continue
        if not isinstance(label, list):
            raise DataError(
                f"{where}, row {row}, field {LABEL!r}: expected a list of class indices "
                f"(multi-label data), got {label!r:.80}."
            )
        for item in label:
            check_class_index(item, where, row, LABEL, class_names)


def check_class_index(label: Any, where: str, row: int, field: str, class_names: list[str]) -> None:
    """``label`` is a class index: an int in ``[0, len(class_names))``."""
    if label is None:
        raise DataError(
            f"{where}, row {row}, field {field!r}: the label is missing (null). Label the "
            "row or remove it; unlabelled texts belong in the `predict` split."
        )
    if not isinstance(label, int) or isinstance(label, bool):
        raise DataError(
            f"{where}, row {row}, field {field!r}: expected a class index (int), got {label!r:.80}."
        )
    if label < 0:
        raise DataError(
            f"{where}, row {row}, field {field!r}: label {label} is negative, which marks an "
            "unlabelled row (like IMDB's `unsupervised` split, label -1); it must not reach "
            "the loss. Remove such rows from labelled splits or map that split to `predict`."
        )
    if label >= len(class_names):
        raise DataError(
            f"{where}, row {row}, field {field!r}: label {label} was never seen in training "
            f"(classes 0..{len(class_names) - 1}: {_short(class_names)}). Add examples of it "
            "to the training data, or fix the label / `class_names`."
        )


def check_label_value(value: Any, where: str, row: int, field: str) -> None:
    """A raw label is one class name (str) or index (int; also an integral float or a bool)."""
    if not isinstance(value, (str, int, float)):
        kind = {list: "a list", dict: "an object", bytes: "bytes"}.get(type(value))
        raise DataError(
            f"{where}, row {row}, field {field!r}: a label is one class name (a string) or "
            f"class index (an integer), got {kind or type(value).__name__}: {value!r:.80}. "
            "Give every row exactly one label, or, for multi-label data, a list of class "
            "names in every row (or a delimited string with `label_delimiter`); or name another "
            "column with `label_field`."
        )


def check_label_list(value: Any, where: str, row: int, field: str) -> list[str]:
    """A multi-label row: a list of class names (strings; integers are read as names). An empty
    list is allowed (a text with none of the labels); repeated names count once.

    Example:
        >>> check_label_list(["net", "web", "net"], "tags.jsonl (split 'train')", 3, "label")
        ['net', 'web']
        >>> check_label_list("net", "tags.jsonl (split 'train')", 3, "label")
        Traceback (most recent call last):
        ...
        datamodules.schema.DataError: tags.jsonl (split 'train'), row 3, field 'label': \
other rows hold a list of labels (multi-label data), this one a str: 'net'. ...
    """
    if value is None:
        raise DataError(
            f"{where}, row {row}, field {field!r}: the label is missing (null). Give a list of "
            "labels (an empty list for none) or remove the row; unlabelled texts belong in the "
            "`predict` split."
        )
    if not isinstance(value, list):
        raise DataError(
            f"{where}, row {row}, field {field!r}: other rows hold a list of labels (multi-label "
            f"data), this one a {type(value).__name__}: {value!r:.80}. Give every row a list "
            '(e.g. ["net"]), or every row one label.'
        )
    names: dict[str, None] = {}
    for item in value:
        ok = isinstance(item, str | int) and not isinstance(item, bool) and str(item).strip()
        if not ok:
            raise DataError(
                f"{where}, row {row}, field {field!r}: the label list holds {item!r:.40}; each "
                "item must be a non-empty class name (a string). Fix the row."
            )
        names[str(item)] = None
    return list(names)


def check_class_count(num_classes: int, rows: int, where: str, field: str) -> None:
    """Refuse a label column that looks like free text or IDs: more classes than half the rows.

    Example:
        >>> check_class_count(900, 1_000, "train.csv (split 'train')", "review_id")
        Traceback (most recent call last):
        ...
        datamodules.schema.DataError: train.csv (split 'train'): label column 'review_id' has \
900 distinct values in 1,000 rows; did you mean another column? ...
    """
    if num_classes > max(FEW_CLASSES, rows // 2):
        raise DataError(
            f"{where}: label column {field!r} has {num_classes:,} distinct values in "
            f"{rows:,} rows; did you mean another column? A classifier needs several examples "
            "of each class: check `label_field` (and `text_field`), or give `class_names` if "
            "these really are the classes."
        )


def check_class_limit(class_names: list[str], where: str) -> None:
    """At most ``MAX_CLASSES`` classes, whoever gave them (data, ``class_names``, checkpoint)."""
    if len(class_names) > MAX_CLASSES:
        raise DataError(
            f"{where}: {len(class_names):,} classes ({_short(class_names, 5)}) is more than "
            f"lit-seqcls supports ({MAX_CLASSES:,}): confusion matrices alone would hold "
            f"{len(class_names) ** 2:,} counts. Check `label_field` / `class_names`, or group "
            "rare classes into one."
        )


def check_room_for_validation(ds: datasets.Dataset, where: str, val_fraction: float) -> None:
    """A validation split carved from ``ds`` must leave at least one row to train on.

    Example:
        >>> check_room_for_validation(datasets.Dataset.from_dict({"text": ["a"]}), "t.jsonl", 0.1)
        Traceback (most recent call last):
        ...
        datamodules.schema.DataError: t.jsonl has 1 row: too few to hold out a validation split \
(val_fraction 0.1) and keep one to train on. Add training rows, or give a validation split.
    """
    rows = len(ds)
    if rows - math.ceil(val_fraction * rows) < 1:
        noun = "row" if rows == 1 else "rows"
        raise DataError(
            f"{where} has {rows} {noun}: too few to hold out a validation split (val_fraction "
            f"{val_fraction}) and keep one to train on. Add training rows, or give a validation "
            "split."
        )


def check_several_classes(
    ds: datasets.Dataset, where: str, class_names: list[str], multi_label: bool = False
) -> None:
    """A training split with one class cannot teach a classifier anything: refuse it.

    Multi-label: some row must hold a label (all-empty label lists teach nothing)."""
    if multi_label:
        if not any(ds[LABEL]):
            raise DataError(
                f"{where}, field {LABEL!r}: every training row has an empty label list "
                f"({len(ds)} rows). Add the labels of the texts, or check `label_field`."
            )
        return
    counts = Counter(ds[LABEL])
    if len(counts) < 2:
        only = next(iter(counts), None)
        name = class_names[only] if isinstance(only, int) and 0 <= only < len(class_names) else only
        raise DataError(
            f"{where}, field {LABEL!r}: every training row has the same class ({name!r}, "
            f"{len(ds)} rows). A classifier needs at least two classes: add examples of the "
            "others, or check `label_field`."
        )


def check_vocabulary_settings(max_vocab_size: int, min_frequency: int) -> None:
    """Refuse, before any data is read, a vocabulary that could not be built or would not fit."""
    whole = isinstance(max_vocab_size, int) and not isinstance(max_vocab_size, bool)
    if not whole or not 3 <= max_vocab_size <= MAX_VOCAB_SIZE:
        size = f" ({_embedding_gb(max_vocab_size)} at embedding_dim 128)" if whole else ""
        shown = f"{max_vocab_size:,}" if whole else f"{max_vocab_size!r:.40}"
        raise ConfigValueError(
            f"max_vocab_size={shown} is out of range: it must be an integer from "
            f"3 ([PAD], [UNK] and one word) to {MAX_VOCAB_SIZE:,}. The model's embedding has "
            f"one row per entry{size}; real word vocabularies stay far below the limit. Use "
            "e.g. 30_000 to 200_000, and `min_frequency` to drop rare words."
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
        raise ConfigValueError(
            f"min_frequency={min_frequency!r:.40} must be a whole number of occurrences, 0 or "
            "more (1 keeps every word seen in training)."
        )


def check_vocabulary_size(size: int, source: str) -> None:
    """A given tokenizer (file or checkpoint) whose vocabulary would not fit is refused."""
    if size > MAX_VOCAB_SIZE:
        raise ValueError(
            f"tokenizer {source[:200]!r} has {size:,} vocabulary entries, more than lit-seqcls "
            f"allows ({MAX_VOCAB_SIZE:,}; {_embedding_gb(size)} of embedding at dimension "
            "128). Use a smaller tokenizer, or train one with `max_vocab_size`."
        )


def _embedding_gb(rows: int) -> str:
    return f"{rows * 128 * 4 / 1e9:,.1f} GB"


def _short(names: list[str], limit: int = 20) -> str:
    return repr(names) if len(names) <= limit else f"{names[:limit]!r:.300} ... ({len(names):,})"
