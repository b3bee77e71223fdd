"""The text pipeline: raw splits into the token-id columns the loaders read, and the copy of the
pipeline that a checkpoint carries.

``encode_split`` normalises (the DataModule's ``normalize``) and encodes (``TextEncoder``, the
tokenizer's own ids) a split into Arrow columns. With enough text (8 MB a worker) it forks
worker processes, up to one per available core: a fork shares the texts instead of copying
them, and each worker returns flat int32 arrays, so no per-token Python object crosses a
process boundary or reaches Arrow.

``TextClassificationDataModule.text_pipeline`` is plain data (the tokenizer JSON, max length,
normalisation, class names) that the model stores in every checkpoint, so a checkpoint alone can
turn raw text into predictions; ``lit_seqcls.checkpoints.load_checkpoint`` reads it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from datamodules.schema import LABEL, TEXT
from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY, load_checkpoint
from lit_seqcls.text.encoding import TextEncoder

PIPELINE_VERSION = 1
CHUNK_ROWS = 1000  # rows per task: small enough to balance the workers, large enough to batch
BYTES_PER_PROC = 8 << 20  # a worker per 8 MB of text (~0.5 s of work) at most: a fork costs ~50 ms
MAX_PROCS = 32


def encode_split(
    split: datasets.Dataset,
    tokenizer: Tokenizer,
    normalize: Callable[[str], str],
    max_length: int | None,
    fingerprint: str | None = None,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """The columns the loaders read: ``label`` (if any), ``input_ids``, ``length``, ``index``.

    Args:
        split: a dataset with a ``text`` column (and ``label``, kept as it is).
        tokenizer: the tokenizer whose ids to produce (see ``lit_seqcls.text.encoding.encode``).
        normalize: the clean-up applied to each text first.
        max_length: truncate to this many tokens (``None``: no limit).
        fingerprint: the new dataset's ``datasets`` fingerprint (our cache key), if known.
        num_proc: worker processes; default: one per available core and per 8 MB of text
            (forked, so only on Linux; one process elsewhere and inside daemon processes).

    Example:
        >>> from lit_seqcls.text.tokenization import train_word_tokenizer
        >>> split = datasets.Dataset.from_dict({"text": ["A cat.", ""], "label": [1, 0]})
        >>> out = encode_split(split, train_word_tokenizer(["a cat ."]), str.strip, 8)
        >>> out.column_names, out["length"][:], out["index"][:]
        (['label', 'input_ids', 'length', 'index'], [3, 1], [0, 1])
    """
    rows = len(split)
    tasks = [(start, min(start + CHUNK_ROWS, rows)) for start in range(0, rows, CHUNK_ROWS)]
    job = (split.select_columns([TEXT]), TextEncoder(tokenizer, max_length), normalize)
    chunks = _run(job, tasks, _processes(num_proc, split))
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
    table = datasets.table.InMemoryTable(pa.table(columns))
    info = datasets.DatasetInfo(features=datasets.Features(features))
    return datasets.Dataset(table.cast(info.features.arrow_schema), info, fingerprint=fingerprint)


# Set by `_run` before it forks: the workers inherit it (texts, encoder, normalize), unpickled.
_JOB: tuple[datasets.Dataset, TextEncoder, Callable[[str], str]] | None = None


def _run(job: tuple, tasks: list[tuple[int, int]], procs: int) -> list[tuple[Any, Any]]:
    global _JOB
    _JOB = job
    try:
        if procs <= 1 or len(tasks) <= 1:
            return [_encode_rows(task) for task in tasks]
        # Rust threads in forked workers would oversubscribe the cores (and `tokenizers` warns).
        with _env("TOKENIZERS_PARALLELISM", "false"):
            pool = multiprocessing.get_context("fork").Pool(min(procs, len(tasks)))
        with pool:
            return pool.map(_encode_rows, tasks, chunksize=1)
    finally:
        _JOB = None


def _encode_rows(task: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[start, stop)`` as flat ids and lengths (int32): cheap to return and to Arrow."""
    assert _JOB is not None
    texts, encoder, normalize = _JOB
    ids = encoder([normalize(t) for t in texts[task[0] : task[1]][TEXT]])
    lengths = np.fromiter(map(len, ids), np.int32, len(ids))
    return np.fromiter(chain.from_iterable(ids), np.int32, int(lengths.sum())), lengths


def _offsets(lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, np.int32)  # (N + 1,); a chunk holds < 2**31 ids
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets)


def _processes(num_proc: int | None, split: datasets.Dataset) -> int:
    forkable = sys.platform == "linux" and not multiprocessing.current_process().daemon
    if not forkable:
        return 1
    if num_proc is not None:
        return max(1, num_proc)
    text_bytes = split.data.column(TEXT).nbytes if len(split) else 0
    cores = len(os.sched_getaffinity(0))
    return max(1, min(cores, text_bytes // BYTES_PER_PROC, MAX_PROCS))


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


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
    if pipeline.get("version", 0) > PIPELINE_VERSION:
        raise ValueError(
            f"checkpoint {path} was written by a newer lit-seqcls (text pipeline version "
            f"{pipeline['version']}); upgrade lit-seqcls to read it."
        )
    return pipeline
