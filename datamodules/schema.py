"""Schema checks at the boundary where data enters: each error names the source, row and field.

Every check raises a ``ValueError`` that says what is wrong, where (file or split, row, field)
and what to do, before anything reaches the tokenizer or torch.
"""

from __future__ import annotations

from collections import Counter

import datasets

TEXT, LABEL = "text", "label"


def check_texts(ds: datasets.Dataset, where: str) -> None:
    """Every row has a string ``text`` (empty strings are fine: they become one ``[UNK]``)."""
    if TEXT not in ds.column_names:
        raise ValueError(
            f"{where}: no {TEXT!r} column (columns: {ds.column_names}). "
            "Name the column that holds the text with `text_field`."
        )
    for row, text in enumerate(ds[TEXT]):
        if not isinstance(text, str):
            raise ValueError(
                f"{where}, row {row}, field {TEXT!r}: expected a string, got {text!r}. "
                "Fill in or remove that row (an empty string is allowed)."
            )


def check_labels(ds: datasets.Dataset, where: str, class_names: list[str]) -> None:
    """Every row has an integer ``label`` that is a class index in ``[0, len(class_names))``."""
    if LABEL not in ds.column_names:
        raise ValueError(
            f"{where}: no {LABEL!r} column (columns: {ds.column_names}). Name the column "
            "that holds the class with `label_field`, or use the split only for `predict`."
        )
    num_classes = len(class_names)
    for row, label in enumerate(ds[LABEL]):
        if label is None:
            raise ValueError(
                f"{where}, row {row}, field {LABEL!r}: the label is missing (null). Label the "
                "row or remove it; unlabelled texts belong in the `predict` split."
            )
        if not isinstance(label, int) or isinstance(label, bool):
            raise ValueError(
                f"{where}, row {row}, field {LABEL!r}: expected a class index (int), got {label!r}."
            )
        if label < 0:
            raise ValueError(
                f"{where}, row {row}, field {LABEL!r}: label {label} is negative, which marks an "
                "unlabelled row (like IMDB's `unsupervised` split, label -1); it must not reach "
                "the loss. Remove such rows from labelled splits or map that split to `predict`."
            )
        if label >= num_classes:
            raise ValueError(
                f"{where}, row {row}, field {LABEL!r}: label {label} was never seen in training "
                f"(classes 0..{num_classes - 1}: {class_names}). Add examples of it to the "
                "training data, or fix the label / `class_names`."
            )


def check_several_classes(ds: datasets.Dataset, where: str, class_names: list[str]) -> None:
    """A training split with one class cannot teach a classifier anything: refuse it."""
    counts = Counter(ds[LABEL])
    if len(counts) < 2:
        only = next(iter(counts), None)
        name = class_names[only] if isinstance(only, int) and 0 <= only < len(class_names) else only
        raise ValueError(
            f"{where}, field {LABEL!r}: every training row has the same class ({name!r}, "
            f"{len(ds)} rows). A classifier needs at least two classes: add examples of the "
            "others, or check `label_field`."
        )
