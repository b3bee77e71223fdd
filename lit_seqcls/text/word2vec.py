"""Word2vec vectors trained on a DataModule's own training and unlabelled texts (gensim).

What ``lit-seqcls vectors`` runs (``lit_seqcls/vectors_command.py`` picks the texts). The texts
are tokenized by the model's own tokenizer (``TextEncoder``: the same normalisation, splitting
and vocabulary, so a word the model maps to ``[UNK]`` is ``[UNK]`` here too), whole (no
``max_length``: vectors learn from every occurrence), and the vectors are written in the
word2vec text format that ``load_vectors`` (``--data.init_args.vectors``) reads.

``train_word2vec`` takes the training texts and the unlabelled texts as its only two inputs:
there is no argument through which a validation or test text could reach it.

gensim is optional (``pip install lit-seqcls[vectors]``). With ``workers=1`` and a ``seed`` the
vectors are the same on every run: gensim seeds each word's first vector with ``hashfxn``,
Python's salted ``hash`` by default, so a stable hash (``_stable_hash``) is passed instead.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, NamedTuple

import numpy as np
from tokenizers import Tokenizer

from lit_seqcls.errors import UserError
from lit_seqcls.text.encoding import TextEncoder
from lit_seqcls.validation import require_non_negative_int, require_positive_int

INSTALL_HINT = "pip install 'lit-seqcls[vectors]' (gensim)"
_CHUNK = 1_000  # texts tokenized per call
_MAX_WORDS = 10_000  # gensim's longest sentence; longer texts are passed in pieces


class MissingExtraError(ImportError, UserError):
    """gensim, which training vectors needs, is not installed."""


class WordVectors(NamedTuple):
    words: list[str]  # in gensim's order: most frequent first
    vectors: np.ndarray  # (len(words), dim), float32
    tokens: int  # tokens in the corpus (training + unlabelled texts)
    texts: int


class TokenizedCorpus:
    """The texts as token-id arrays; iterating gives each text's tokens as strings, every time.

    gensim reads the corpus once for its vocabulary and once per epoch, so it must be an
    iterable that restarts (not a generator). Ids are kept as int32 arrays (IMDB's 72,500 texts
    are ~20M tokens: 80 MB, where lists of strings would take gigabytes).
    """

    def __init__(
        self, tokenizer: Tokenizer, texts: Iterable[str], normalize: Callable[[str], str] = str
    ) -> None:
        encoder = TextEncoder(tokenizer, max_length=None)
        vocab = tokenizer.get_vocab()
        self.words = [""] * (max(vocab.values()) + 1)  # id -> token
        for word, index in vocab.items():
            self.words[index] = word
        self.ids: list[np.ndarray] = []
        chunk: list[str] = []
        for text in texts:
            chunk.append(normalize(text))
            if len(chunk) == _CHUNK:
                self._add(encoder, chunk)
                chunk = []
        self._add(encoder, chunk)
        self.tokens = sum(len(x) for x in self.ids)

    def _add(self, encoder: TextEncoder, chunk: list[str]) -> None:
        if chunk:
            self.ids.extend(np.asarray(x, dtype=np.int32) for x in encoder(chunk))

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[list[str]]:
        words = self.words
        for ids in self.ids:
            for start in range(0, len(ids), _MAX_WORDS):
                yield [words[i] for i in ids[start : start + _MAX_WORDS].tolist()]


def train_word2vec(
    train_texts: Sequence[str],
    unlabelled_texts: Sequence[str],
    tokenizer: Tokenizer,
    normalize: Callable[[str], str] = str,
    dim: int = 100,
    window: int = 5,
    min_count: int = 1,
    epochs: int = 5,
    workers: int = 1,
    seed: int = 0,
) -> WordVectors:
    """Train word2vec (CBOW, gensim's defaults otherwise) on the training + unlabelled texts.

    Args:
        train_texts: the texts the model trains on (never validation or test texts).
        unlabelled_texts: texts without labels from the same source (IMDB's ``unsupervised``).
        tokenizer: the model's tokenizer (a DataModule's ``tokenizer``).
        normalize: the DataModule's clean-up before tokenizing (``normalize``: HTML stripping).
        dim: size of the vectors: the model's ``embedding_dim`` must equal it.
        window: words on each side that count as a word's context.
        min_count: words seen fewer times get no vector (the tokenizer already chose the
            vocabulary, so 1 covers it all).
        epochs: passes over the texts.
        workers: training threads; 1 is deterministic (more are faster, not reproducible).
        seed: seed of the initial vectors and of the sampling.

    Example:
        >>> from lit_seqcls.text import train_word_tokenizer
        >>> texts = ["a good film", "a bad film", "good acting", "bad acting"] * 20
        >>> tok = train_word_tokenizer(texts)
        >>> wv = train_word2vec(texts, [], tok, dim=8, epochs=2)
        >>> sorted(wv.words), wv.vectors.shape, wv.tokens
        (['a', 'acting', 'bad', 'film', 'good'], (5, 8), 200)
    """
    try:
        from gensim.models import Word2Vec
    except ImportError as err:
        raise MissingExtraError(f"training word vectors needs gensim: {INSTALL_HINT}") from err
    for name, value in (("dim", dim), ("window", window), ("epochs", epochs), ("workers", workers)):
        require_positive_int(name, value)
    require_positive_int("min_count", min_count)
    require_non_negative_int("seed", seed)
    corpus = TokenizedCorpus(tokenizer, [*train_texts, *unlabelled_texts], normalize)
    model = Word2Vec(
        corpus,
        vector_size=dim,
        window=window,
        min_count=min_count,
        epochs=epochs,
        workers=workers,
        seed=seed,
        hashfxn=_stable_hash,
    )
    words = list(model.wv.index_to_key)
    return WordVectors(words, model.wv.vectors.astype(np.float32), corpus.tokens, len(corpus))


def write_word2vec_text(vectors: WordVectors, out: IO[str]) -> int:
    """Write ``count dim`` then ``word v1 ... vdim`` per word; returns the words written.

    The special tokens the tokenizer adds (``[PAD]``; ``[UNK]`` stays, the model has a row for
    it) and any word holding whitespace (one line per word, values split at spaces) are left out.
    """
    rows = [
        (word, row)
        for word, row in zip(vectors.words, vectors.vectors, strict=True)
        if word != "[PAD]" and word and not any(c.isspace() for c in word)
    ]
    out.write(f"{len(rows)} {vectors.vectors.shape[1]}\n")
    for word, row in rows:
        out.write(word + " " + " ".join(f"{x:.6g}" for x in row.tolist()) + "\n")
    return len(rows)


def _stable_hash(text: Any) -> int:
    """The same number for the same word in every process (``hash`` is salted per process)."""
    return zlib.crc32(str(text).encode("utf-8", "surrogatepass"))
