"""Held-out texts that also appear in training: counted when the splits are first built.

A test text seen in training is scored on what the model may have memorised, so the test scores
come out optimistic: the same file given for train and test, or a corpus with duplicates across
its splits. Texts are compared after lowercasing ASCII letters and trimming the whitespace around
them, hashed in Arrow (IMDB's 25,000 + 25,000 reviews: about 0.1 s on one core). It runs where
the raw splits are checked, so a warm start, which reads only the cache, does not hash again.
"""

from __future__ import annotations

from collections.abc import Callable

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from lightning.pytorch.utilities import rank_zero_warn

from datamodules.schema import TEXT

TRAIN, HELD_OUT = "train", ("validation", "test")


def count_shared(train: datasets.Dataset, other: datasets.Dataset) -> int:
    """How many rows of ``other`` hold a (non-empty) text that is also in ``train``.

    Example:
        >>> train = datasets.Dataset.from_dict({"text": ["A good film", "bad", ""]})
        >>> test = datasets.Dataset.from_dict({"text": [" a GOOD film\\n", "new", "", "bad"]})
        >>> count_shared(train, test)
        2
    """
    if len(train) == 0 or len(other) == 0:
        return 0
    texts = _normalised(other)
    shared = pc.and_(pc.is_in(texts, value_set=_normalised(train)), pc.not_equal(texts, ""))
    return int(pc.sum(shared).as_py() or 0)


def warn_about_shared_texts(splits: datasets.DatasetDict, describe: Callable[[str], str]) -> None:
    """One warning (on rank zero) per held-out split that shares texts with ``train``."""
    if TRAIN not in splits:
        return
    for name in (n for n in HELD_OUT if n in splits):
        shared = count_shared(splits[TRAIN], splits[name])
        if shared:
            rank_zero_warn(
                f"{shared:,} of the {len(splits[name]):,} texts of {describe(name)} also appear "
                f"in {describe(TRAIN)}, up to case and surrounding whitespace: {name} scores "
                "will be optimistic, since the model trained on those texts. Remove them from "
                "one of the splits, and check that no file is given for both."
            )


def _normalised(split: datasets.Dataset) -> pa.ChunkedArray:
    texts = split.select_columns([TEXT]).with_format("arrow")[:][TEXT]  # rows in dataset order
    return pc.utf8_trim_whitespace(pc.ascii_lower(texts))
