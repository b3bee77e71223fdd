"""The text pipeline: raw splits into the token-id columns the loaders read, and the copy of the
pipeline that a checkpoint carries.

``encode_split`` normalises (the DataModule's ``normalize``) and encodes (``TextEncoder``, the
tokenizer's own ids) a split into Arrow columns, in-process, ``CHUNK_ROWS`` rows at a time: each
chunk becomes flat int32 arrays, so no per-token Python object reaches Arrow. (A fork pool used to
encode in parallel; it saved only 2-9% of a cold start and was removed, #15.)

``TextClassificationDataModule.text_pipeline`` is plain data (the tokenizer JSON, max length,
normalisation, class names) that the model stores in every checkpoint, so a checkpoint alone can
turn raw text into predictions; ``lit_seqcls.checkpoints.load_checkpoint`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from datamodules.schema import LABEL, TEXT
from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY, TEXT_PIPELINE_VERSION, load_checkpoint
from lit_seqcls.text.encoding import TRUNCATION_SIDES, TextEncoder, TruncationSide

CHUNK_ROWS = 1000  # rows encoded at once: large enough to batch, small enough to bound memory


def encode_split(
    split: datasets.Dataset,
    tokenizer: Tokenizer,
    normalize: Callable[[str], str],
    max_length: int | None,
    fingerprint: str | None = None,
    truncation_side: TruncationSide = "right",
) -> datasets.Dataset:
    """The columns the loaders read: ``label`` (if any), ``input_ids``, ``length``, ``index``.

    Args:
        split: a dataset with a ``text`` column (and ``label``, kept as it is).
        tokenizer: the tokenizer whose ids to produce (see ``lit_seqcls.text.encoding.encode``).
        normalize: the clean-up applied to each text first.
        max_length: truncate to this many tokens (``None``: no limit).
        fingerprint: the new dataset's ``datasets`` fingerprint (our cache key), if known;
            without one ``datasets`` hashes every id (~0.3 s per 30 MB).
        truncation_side: keep a long text's first (``right``) or last (``left``) tokens.

    Example:
        >>> from lit_seqcls.text.tokenization import train_word_tokenizer
        >>> split = datasets.Dataset.from_dict({"text": ["A cat.", ""], "label": [1, 0]})
        >>> out = encode_split(split, train_word_tokenizer(["a cat ."]), str.strip, 8)
        >>> out.column_names, out["length"][:], out["index"][:]
        (['label', 'input_ids', 'length', 'index'], [3, 1], [0, 1])
    """
    rows, texts = len(split), split.select_columns([TEXT])
    encoder = TextEncoder(tokenizer, max_length, truncation_side)
    chunks = [
        _encode_rows(texts[start : start + CHUNK_ROWS][TEXT], encoder, normalize)
        for start in range(0, rows, CHUNK_ROWS)
    ]
    ids = [pa.ListArray.from_arrays(_offsets(lengths), values) for values, lengths in chunks]
    columns = {
        "input_ids": pa.chunked_array(ids, type=pa.list_(pa.int32())),
        "length": pa.chunked_array([lengths for _, lengths in chunks], type=pa.int32()),
        "index": pa.array(np.arange(rows, dtype=np.int64)),
    }
    features = {
        "input_ids": datasets.List(datasets.Value("int32")),
        "length": datasets.Value("int32"),
        "index": datasets.Value("int64"),
    }
    if LABEL in split.column_names:
        # One chunk: rows gathered through an indices mapping come back one chunk per row.
        labels = split.select_columns([LABEL]).with_format("arrow")[:][LABEL].combine_chunks()
        columns, features = {LABEL: labels, **columns}, {LABEL: split.features[LABEL], **features}
    # A pyarrow table, not `datasets.table`'s (private module) wrapper: `Dataset` wraps it.
    info = datasets.DatasetInfo(features=datasets.Features(features))
    table = pa.table(columns).cast(info.features.arrow_schema)
    return datasets.Dataset(table, info, fingerprint=fingerprint)


def _encode_rows(
    texts: list[str], encoder: TextEncoder, normalize: Callable[[str], str]
) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as flat ids and lengths (int32): cheap to turn into Arrow."""
    ids = encoder([normalize(t) for t in texts])
    lengths = np.fromiter(map(len, ids), np.int32, len(ids))
    return np.fromiter(chain.from_iterable(ids), np.int32, int(lengths.sum())), lengths


def _offsets(lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, np.int32)  # (N + 1,); a chunk holds < 2**31 ids
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets)


def read_checkpoint_pipeline(path: str | Path) -> dict[str, Any]:
    """The text pipeline stored in checkpoint ``path`` (read by the package's one safe reader)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = load_checkpoint(path, mmap=True)  # mmap: the weights are not read
    pipeline = checkpoint.get(TEXT_PIPELINE_KEY)
    if not isinstance(pipeline, dict) or "tokenizer" not in pipeline:
        raise ValueError(
            f"checkpoint {path} holds no text pipeline (it was saved without a DataModule that "
            "provides one). Predict with the data config it was trained with instead."
        )
    if pipeline.get("version", 0) > TEXT_PIPELINE_VERSION:
        raise ValueError(
            f"checkpoint {path} was written by a newer lit-seqcls (text pipeline version "
            f"{pipeline['version']}); upgrade lit-seqcls to read it."
        )
    side = pipeline.setdefault("truncation_side", "right")  # version 1 kept the first tokens
    if side not in TRUNCATION_SIDES:
        raise ValueError(
            f"checkpoint {path}: text pipeline field 'truncation_side' is {side!r}, not one of "
            f"{list(TRUNCATION_SIDES)}; the file is damaged or was not written by lit-seqcls."
        )
    return pipeline
