"""Tokenization with HF `tokenizers`: train (word-level or BPE) on the training split, or load a
user's ``tokenizer.json``. Encoding texts to ids: ``lit_seqcls.text.encoding``.

The pipeline is the usual three stages of `tokenizers` (normalizer → pre-tokenizer → model), built
from its primitives so that the whole thing serialises to one JSON string: that string is what a
checkpoint stores, and `Tokenizer.from_str` rebuilds exactly the same ids later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from lit_seqcls.batch import PAD_ID
from lit_seqcls.validation import ConfigValueError

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN]  # order fixes the ids: [PAD] = 0, [UNK] = 1
UNK_ID = 1

UnicodeForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
TokenizerKind = Literal["word", "bpe"]


def build_word_tokenizer(
    lowercase: bool = True, unicode_normalization: UnicodeForm | None = "NFKC"
) -> Tokenizer:
    """An untrained word-level tokenizer: normalise, split on whitespace and punctuation."""
    steps: list[normalizers.Normalizer] = []
    if unicode_normalization is not None:
        steps.append(getattr(normalizers, unicode_normalization)())
    if lowercase:
        steps.append(normalizers.Lowercase())
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence(steps)
    # `Whitespace` splits on \w+|[^\w\s]+: words and runs of punctuation ("!!", ":)") are tokens.
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def train_word_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 30_000,
    min_frequency: int = 1,
    lowercase: bool = True,
    unicode_normalization: UnicodeForm | None = "NFKC",
    length: int | None = None,
) -> Tokenizer:
    """Train a word-level tokenizer on ``texts`` (the training split only, never val/test).

    Args:
        texts: the training texts; any iterable (a generator is streamed, not materialised).
        vocab_size: the cap on the vocabulary, special tokens included.
        min_frequency: words seen fewer times map to ``[UNK]``.
        lowercase: lowercase before splitting.
        unicode_normalization: a unicode normal form applied first, or ``None``.
        length: the number of texts, if known (only for the progress estimate).

    Example:
        >>> tok = train_word_tokenizer(["The cat sat.", "the dog"], vocab_size=100)
        >>> tok.token_to_id("[PAD]"), tok.token_to_id("[UNK]"), tok.get_vocab_size()
        (0, 1, 7)
        >>> from lit_seqcls.text.encoding import encode
        >>> encode(tok, ["THE CAT barked", ""], max_length=8)
        [[2, 4, 1], [1]]
    """
    tokenizer = build_word_tokenizer(lowercase, unicode_normalization)
    trainer = trainers.WordLevelTrainer(**_trainer_args(vocab_size, min_frequency))
    return _train(tokenizer, trainer, texts, length)


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 30_000,
    min_frequency: int = 1,
    lowercase: bool = True,
    unicode_normalization: UnicodeForm | None = "NFKC",
    length: int | None = None,
) -> Tokenizer:
    """Train a byte-pair-encoding tokenizer: rare words become subwords instead of ``[UNK]``.

    Same arguments and normalisation as ``train_word_tokenizer``; ``vocab_size`` counts merges'
    results plus the initial alphabet and the special tokens.

    Example:
        >>> tok = train_bpe_tokenizer(["lower lowest newer newest"] * 3, vocab_size=40)
        >>> tok.token_to_id("[PAD]"), tok.token_to_id("[UNK]")
        (0, 1)
        >>> from lit_seqcls.text.encoding import encode
        >>> len(encode(tok, ["lowers"], None)[0]) >= 1
        True
    """
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.normalizer = build_word_tokenizer(lowercase, unicode_normalization).normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(**_trainer_args(vocab_size, min_frequency))
    return _train(tokenizer, trainer, texts, length)


def _trainer_args(vocab_size: int, min_frequency: int) -> dict:
    return {
        "vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "special_tokens": SPECIAL_TOKENS,  # first, so [PAD] = 0 and [UNK] = 1
        "show_progress": False,
    }


def _train(
    tokenizer: Tokenizer, trainer: trainers.Trainer, texts: Iterable[str], length: int | None
) -> Tokenizer:
    tokenizer.train_from_iterator(_batched(texts), trainer=trainer, length=length)
    check_special_tokens(tokenizer)
    return tokenizer


TRAINERS = {"word": train_word_tokenizer, "bpe": train_bpe_tokenizer}


def load_tokenizer(source: str) -> Tokenizer:
    """A tokenizer from a ``tokenizer.json`` path or its JSON text, checked for ``[PAD]``/``[UNK]``.

    Padding and truncation stored in the file are switched off: batching pads (see ``collate``)
    and ``encode`` truncates.

    Example:
        >>> tok = load_tokenizer(train_word_tokenizer(["a b"]).to_str())
        >>> tok.get_vocab_size()
        4
    """
    if source.lstrip().startswith("{"):
        name = "the tokenizer JSON"
        try:
            tokenizer = Tokenizer.from_str(source)
        except Exception as err:
            raise ValueError(f"{name} could not be parsed ({err}).") from err
    else:
        path = Path(source).expanduser()
        name = str(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"tokenizer file {name} does not exist; give the path of a tokenizer.json saved "
                "with `Tokenizer.save`, or leave `tokenizer` unset to train one."
            )
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:
            raise ValueError(
                f"{name} is not a `tokenizers` tokenizer.json ({err}); save one with "
                "`Tokenizer.save(path)` from the HF `tokenizers` library."
            ) from err
    check_special_tokens(tokenizer, name)
    check_contiguous_ids(tokenizer, name)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokenizer_json(tokenizer: Tokenizer) -> str:
    """The tokenizer as JSON, without truncation/padding (``encode`` sets those per call).

    This is the form that checkpoints and cache keys store: equal vocabularies and pipelines
    give equal strings, whatever was encoded before.
    """
    spec = json.loads(tokenizer.to_str())
    spec["truncation"] = spec["padding"] = None
    return json.dumps(spec, ensure_ascii=False, sort_keys=True)


def check_special_tokens(tokenizer: Tokenizer, source: str = "the tokenizer") -> None:
    """Raise unless ``[PAD]`` is id 0 and ``[UNK]`` exists: the model and collate rely on both."""
    if tokenizer.token_to_id(PAD_TOKEN) != PAD_ID or tokenizer.token_to_id(UNK_TOKEN) is None:
        raise ValueError(
            f"{source} must map {PAD_TOKEN!r} to id {PAD_ID} and define {UNK_TOKEN!r} "
            f"(found {PAD_TOKEN!r} -> {tokenizer.token_to_id(PAD_TOKEN)}, "
            f"{UNK_TOKEN!r} -> {tokenizer.token_to_id(UNK_TOKEN)}). "
            "Add them as the first special tokens when training it."
        )


def check_contiguous_ids(tokenizer: Tokenizer, source: str = "the tokenizer") -> None:
    """Raise unless the token ids are exactly ``0 .. vocab_size - 1``, one per entry.

    The model's embedding has ``vocab_size`` rows, so an id past the end (a vocabulary numbered
    with gaps) would fail only later, inside ``torch.embedding``, as an index error.

    Example:
        >>> from tokenizers import models
        >>> vocab = {"[PAD]": 0, "[UNK]": 1, "good": 2, "bad": 7}
        >>> check_contiguous_ids(Tokenizer(models.WordLevel(vocab, UNK_TOKEN)), "tok.json")
        Traceback (most recent call last):
        ...
        lit_seqcls.validation.ConfigValueError: tok.json: token ids must be 0..3, one per \
vocabulary entry (the model's embedding has 4 rows), but id 3 is missing and 'bad' has id 7. ...
    """
    ids = tokenizer.get_vocab(with_added_tokens=True)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    values = np.fromiter(ids.values(), np.int64, len(ids))  # (V,): ids are unsigned
    counts = np.bincount(values[values < size], minlength=size)  # (size,)
    if len(values) == size and (counts == 1).all():
        return
    missing = int(np.argmin(counts)) if (counts == 0).any() else None
    beyond = min(((i, t) for t, i in ids.items() if i >= size), default=None)
    problems = [f"id {missing} is missing"] if missing is not None else []
    problems += [f"{beyond[1]!r:.60} has id {beyond[0]:,}"] if beyond is not None else []
    raise ConfigValueError(
        f"{source}: token ids must be 0..{size - 1}, one per vocabulary entry (the model's "
        f"embedding has {size:,} rows), but {' and '.join(problems)}. Number the vocabulary "
        "0, 1, 2, ... without gaps (its `model.vocab` and `added_tokens` in the JSON), or "
        "leave `tokenizer_file` unset to train one."
    )


def _batched(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    # `train_from_iterator` is much faster fed lists than single strings.
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
