"""Pretrained word vectors (GloVe / word2vec text format) → an embedding matrix for a vocabulary.

GloVe files have one ``word v1 v2 ...`` line per word; word2vec text files start with a
``count dim`` header line, which is skipped. Lines may be gzip-compressed (``.gz``). Words of
the vocabulary that the file lacks keep a small random vector, ``[PAD]`` stays zero, and the
share of the vocabulary found (the *coverage*) is reported so a poor match is visible.

The file's vectors are scaled by one factor so that their spread equals the random rows' (the
network's own initial spread, std ``SPREAD``): word2vec trained on IMDB has std 1.46 per
dimension, 15 times the initial embedding, and a CNN given those rows as they are reached 0.79
validation accuracy after two epochs where a random start reaches 0.91. One factor for all rows
keeps every angle and every ratio of norms; ``spread=None`` keeps the file's values.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from lit_seqcls.batch import PAD_ID
from lit_seqcls.errors import UserError


class VectorsFileError(ValueError, UserError):
    """A word vectors file that cannot be used: malformed, or empty; the message says where."""


class MissingVectorsFile(FileNotFoundError, UserError):
    """The ``vectors`` file does not exist; the message says how to make one."""


SPREAD = 0.1  # std of the random rows: that of a fresh embedding (network._init_weights)


def how_to_make(path: str | Path) -> str:
    """How a missing vectors file is made: the ``lit-seqcls vectors`` command that writes it.

    Example:
        >>> how_to_make("vecs/imdb.txt").split("`")[1]  # the folder kept: written where it is read
        'lit-seqcls vectors --config <data config> --output vecs/imdb.txt'
    """
    return (
        "train it on your own texts with `lit-seqcls vectors --config <data config> --output "
        f"{path}` (docs/which_encoder.md)"
    )


class PretrainedVectors(NamedTuple):
    weights: Tensor  # (V, E), row i is the vector of token id i
    coverage: float  # share of the vocabulary (special tokens excluded) found in the file
    found: int  # words of the vocabulary found (special tokens excluded)


def load_vectors(
    path: str | Path,
    vocab: Mapping[str, int],
    lowercase: bool = False,
    seed: int = 0,
    spread: float | None = SPREAD,
) -> PretrainedVectors:
    """Read ``path`` and build a ``(len(vocab), dim)`` matrix in the vocabulary's id order.

    Args:
        path: a GloVe or word2vec text file (optionally ``.gz``).
        vocab: token → id, e.g. ``tokenizer.get_vocab()``.
        lowercase: match file words lowercased (use when the tokenizer lowercases but the
            vectors are cased; the first spelling met wins).
        seed: seed for the random rows of words the file lacks.

    Example:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "glove.txt")
        >>> _ = open(f, "w").write("the 1.0 2.0\\ncat 3.0 4.0\\n")
        >>> vec = load_vectors(f, {"[PAD]": 0, "[UNK]": 1, "the": 2, "dog": 3})
        >>> vec.weights.shape, vec.weights[2].tolist(), vec.weights[0].tolist(), vec.coverage
        (torch.Size([4, 2]), [1.0, 2.0], [0.0, 0.0], 0.5)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingVectorsFile(
            f"word vectors file {path} does not exist (a relative path is read from the folder "
            "you run in); give a GloVe/word2vec text file (e.g. glove.6B.100d.txt), "
            f"{how_to_make(path)}, or leave `vectors` unset."
        )
    size = max(vocab.values()) + 1
    rows: dict[int, list[float]] = {}
    dim = None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "count dim"
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            elif len(parts) - 1 != dim:
                raise VectorsFileError(
                    f"{path}, line {number}: {len(parts) - 1} values, but the first vector "
                    f"had {dim}. Is it a GloVe/word2vec *text* file (binary is not supported)?"
                )
            word = parts[0].lower() if lowercase else parts[0]
            index = vocab.get(word)
            if index is not None and index not in rows:
                try:
                    rows[index] = [float(v) for v in parts[1:]]
                except ValueError as err:
                    raise VectorsFileError(f"{path}, line {number}: not a number ({err})") from err
    if dim is None:
        raise VectorsFileError(f"{path} holds no vectors; is it empty?")
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(size, dim, generator=generator) * 0.1  # (V, E)
    if rows:
        ids, found_rows = torch.tensor(list(rows)), torch.tensor(list(rows.values()))
        if spread is not None and len(rows) > 1 and found_rows.std() > 0:
            found_rows = found_rows * (spread / found_rows.std())
        weights[ids] = found_rows
    weights[PAD_ID] = 0.0
    # Coverage counts words only: a file may hold a vector for `[UNK]` (``lit-seqcls vectors``
    # writes one), which must not push the share past 1.
    specials = {i for t, i in vocab.items() if t.startswith("[") and t.endswith("]")}
    found = len(rows.keys() - specials)
    coverage = found / max(1, len(vocab) - len(specials))
    return PretrainedVectors(weights, coverage, found)
