"""Synthetic text classification, generated offline and deterministic by seed.

Three tasks on which the architecture matters (texts are made-up words, so nothing is memorised):

- ``keyword``: one class keyword at a uniformly random position among filler words; the label is
  the keyword's class. Long-range memory: a recurrent net must carry the keyword to the end of the
  text, a CNN or attention only has to find it.
- ``majority``: every class has its own "sentiment" words, several of which are scattered in the
  text; the label is the class with the most occurrences (ties are never generated). Counting.
- ``order``: two marker words appear, ``alpha`` and ``omega``; the label says which comes first.
  Order-sensitive: a bag of words or a narrow CNN cannot tell the classes apart.

Lengths follow a log-normal distribution (median ``median_length``) cut to
``[min_length, max_length]``: most texts are short, a few are long, as in real corpora.
"""

from __future__ import annotations

from typing import Literal

import datasets
import numpy as np

from datamodules.base import TextClassificationDataModule
from lit_seqcls.validation import ConfigValueError, require_non_negative, require_positive_int

Task = Literal["keyword", "majority", "order"]
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "do", "fu", "gi", "he")
MAX_FILLERS = len(_SYLLABLES) ** 2 + len(_SYLLABLES) ** 3  # distinct 2–3 syllable words: 2,940


class SyntheticDataModule(TextClassificationDataModule):
    """Generated text classification data (see the module docstring for the tasks).

    Args:
        task: ``keyword`` (long-range memory), ``majority`` (counting) or ``order``.
        num_classes: number of classes (``order`` always has 2).
        train_size: generated training texts (a validation split is carved from them).
        test_size: generated test texts.
        median_length: median text length in words.
        min_length: shortest text, in words.
        max_text_length: words in the longest generated text (the long tail is cut here); the
            tokenizer's ``max_length`` (tokens) truncates after that.
        length_spread: sigma of the log-normal length distribution; larger = longer tail.
        num_filler_words: size of the distractor vocabulary.
        **kwargs: the shared data arguments (batch size, tokenizer, bucketing; see
            ``TextClassificationDataModule``).

    Example:
        >>> dm = SyntheticDataModule(train_size=200, test_size=50, seed=1)
        >>> dm.num_classes, dm.class_names[:2]
        (4, ['topic_0', 'topic_1'])
        >>> sorted(dm.splits), len(dm.splits["train"]) + len(dm.splits["validation"])
        (['test', 'train', 'validation'], 200)
    """

    def __init__(
        self,
        task: Task = "keyword",
        num_classes: int = 4,
        train_size: int = 6000,
        test_size: int = 1000,
        median_length: int = 30,
        min_length: int = 1,
        max_text_length: int = 300,
        length_spread: float = 0.6,
        num_filler_words: int = 1000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if task not in ("keyword", "majority", "order"):
            raise ValueError(f"unknown task {task!r}; choose 'keyword', 'majority' or 'order'")
        if task == "order":
            num_classes = 2
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        for name, value in [
            ("train_size", train_size),
            ("test_size", test_size),
            ("min_length", min_length),
            ("median_length", median_length),
            ("max_text_length", max_text_length),
        ]:
            require_positive_int(name, value)
        if not min_length <= median_length <= max_text_length:
            raise ConfigValueError(
                "need min_length <= median_length <= max_text_length, got "
                f"{min_length} <= {median_length} <= {max_text_length}"
            )
        require_non_negative("length_spread", length_spread)
        if require_positive_int("num_filler_words", num_filler_words) > MAX_FILLERS:
            raise ConfigValueError(
                f"num_filler_words must be at most {MAX_FILLERS:,} (every distinct word of 2 or "
                f"3 of the {len(_SYLLABLES)} syllables), got {num_filler_words:,}"
            )
        self.task = task
        self._num_classes = num_classes
        self.train_size = train_size
        self.test_size = test_size
        self.median_length = median_length
        self.min_length = min_length
        self.max_text_length = max_text_length
        self.length_spread = length_spread
        self.num_filler_words = num_filler_words

    @property
    def class_names(self) -> list[str]:
        if self.task == "order":
            return ["alpha_first", "omega_first"]
        prefix = "topic" if self.task == "keyword" else "mood"
        return [f"{prefix}_{c}" for c in range(self._num_classes)]

    def load_splits(self) -> datasets.DatasetDict:
        generate = {"keyword": _keyword, "majority": _majority, "order": _order}[self.task]
        splits = {}
        for offset, (name, size) in enumerate(
            (("train", self.train_size), ("test", self.test_size))
        ):
            rng = np.random.default_rng([self.seed, offset])
            lengths = self._lengths(rng, size)
            labels = rng.integers(0, self._num_classes, size)
            fillers = _words(self.num_filler_words, rng=np.random.default_rng(12345))
            texts = [
                generate(rng, n, y, self._num_classes, fillers)
                for n, y in zip(lengths, labels, strict=True)
            ]
            splits[name] = datasets.Dataset.from_dict(
                {"text": texts, "label": labels.tolist()},
                features=datasets.Features(
                    {
                        "text": datasets.Value("string"),
                        "label": datasets.ClassLabel(names=self.class_names),
                    }
                ),
            )
        return datasets.DatasetDict(splits)

    def _lengths(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raw = rng.lognormal(np.log(self.median_length), self.length_spread, size)
        return np.clip(np.rint(raw), self.min_length, self.max_text_length).astype(int)


def _words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct made-up words of 2–3 syllables (fixed: independent of the data seed)."""
    words: dict[str, None] = {}
    while len(words) < count:
        n = rng.integers(2, 4)
        words["".join(rng.choice(_SYLLABLES, n))] = None
    return list(words)


def _keyword(rng: np.random.Generator, n: int, label: int, k: int, fillers: list[str]) -> str:
    tokens = list(rng.choice(fillers, n))
    tokens[rng.integers(n)] = f"topic{label}"
    return " ".join(tokens)


def _majority(rng: np.random.Generator, n: int, label: int, k: int, fillers: list[str]) -> str:
    # Counts per class with a strict winner `label`: other classes get fewer occurrences.
    n = max(n, 3)
    winner = int(rng.integers(2, max(3, n // 4) + 1))
    counts = {c: int(rng.integers(0, winner)) for c in range(k) if c != label}
    counts[label] = winner
    mood = [f"mood{c}" for c, m in counts.items() for _ in range(m)]
    tokens = list(rng.choice(fillers, max(n, len(mood))))
    positions = rng.choice(len(tokens), len(mood), replace=False)
    for pos, word in zip(positions, mood, strict=True):
        tokens[pos] = word
    return " ".join(tokens)


def _order(rng: np.random.Generator, n: int, label: int, k: int, fillers: list[str]) -> str:
    n = max(n, 2)
    tokens = list(rng.choice(fillers, n))
    first, second = sorted(rng.choice(n, 2, replace=False))
    tokens[first], tokens[second] = ("alpha", "omega") if label == 0 else ("omega", "alpha")
    return " ".join(tokens)
