"""Texts to token ids: the tokenizer's own ids, made faster, with long texts cut first.

``encode`` (and ``TextEncoder`` for many calls) gives exactly the ids of
``tokenizer.encode_batch_fast``; how they are made faster, and why (HF ``tokenizers`` does far
more per token than a regex and a dict), is in ``TextEncoder`` and BENCHMARKS.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Literal

from tokenizers import Tokenizer

from lit_seqcls.text.tokenization import UNK_TOKEN, train_word_tokenizer  # noqa: F401 (doctests)

CHARS_PER_TOKEN = 64  # texts longer than max_length × this are cut before tokenizing
_MAX_GROWTH = 64  # a cut that leaves too few tokens grows ×4, up to 4,096 characters per token
_ASCII_WS = "\t\n\v\f\r "  # the ASCII characters `Whitespace` (onig's \s) splits on

TruncationSide = Literal["right", "left"]
TRUNCATION_SIDES: tuple[TruncationSide, ...] = ("right", "left")


def encode(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    max_length: int | None,
    truncation_side: TruncationSide = "right",
) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``; a text with no tokens becomes ``[UNK]``.

    ``truncation_side="right"`` keeps a long text's first ``max_length`` tokens, ``"left"`` its
    last ones (what a recurrent encoder reads just before its final state; Keras'
    ``pad_sequences`` default). Never returning an empty list keeps every length ``>= 1``, which
    packed RNNs and masked softmax both require (see the Batch contract in docs/DESIGN.md). The
    ids are exactly those of ``tokenizer.encode_batch_fast``; ``TextEncoder`` says how they are
    made faster.

    Example:
        >>> tok = train_word_tokenizer(["one two three four"])
        >>> [tok.decode(x) for x in encode(tok, ["one two three four"], 2, "left")]
        ['three four']
    """
    return TextEncoder(tokenizer, max_length, truncation_side)(texts)


class TextEncoder:
    """``encode`` for many calls with one tokenizer: the tokenizer's own ids, faster.

    - Our word-level pipeline runs on ASCII text in CPython's C string functions
      (``_AsciiWordLevel``); the tokenizer gets the words with non-ASCII characters, each once
      (or the text, if mostly non-ASCII). Per token, `tokenizers` builds alignments, offsets and
      a token string: more work than a regex and a dict (BENCHMARKS.md, "Data pipeline").
    - A text longer than ``max_length × CHARS_PER_TOKEN`` characters is cut before an ASCII
      whitespace: no token or normal form spans one, so the piece's tokens are the text's first
      ones. The cut stands if the piece yields more than ``max_length`` tokens, else it grows:
      a 50 MB one-line text costs what its first tokens cost. With ``truncation_side="left"``
      the piece is the text's end, cut after an ASCII whitespace, and its last tokens are kept.

    Example:
        >>> tok = train_word_tokenizer(["the cat sat", "a café"])
        >>> ids = TextEncoder(tok, max_length=2)(["The CAT sat", "Café!", ""])
        >>> [[tok.id_to_token(i) for i in x] for x in ids]
        [['the', 'cat'], ['café', '[UNK]'], ['[UNK]']]
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int | None,
        truncation_side: TruncationSide = "right",
    ) -> None:
        if truncation_side not in TRUNCATION_SIDES:
            raise ValueError(
                f"truncation_side must be one of {list(TRUNCATION_SIDES)}, got {truncation_side!r}"
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation_side = truncation_side
        self._unk = tokenizer.token_to_id(UNK_TOKEN)
        self._fast = _AsciiWordLevel.of(tokenizer)
        self._bound = None if max_length is None else max_length * CHARS_PER_TOKEN

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        texts, bound = list(texts), self._bound
        long = {} if bound is None else {i: t for i, t in enumerate(texts) if len(t) > bound}
        for i in long:
            texts[i] = ""  # encoded on its own below, from a cut piece
        if self.truncation_side == "left" and self.max_length is not None:
            # Whole texts (each at most ``bound`` characters here), then their last tokens.
            ids = [x[-self.max_length :] for x in self._ids(texts, None)]
        else:
            ids = self._ids(texts, self.max_length)
        for i, text in long.items():
            ids[i] = self._ids_of_long(text)
        return [x or [self._unk] for x in ids]

    def _ids(self, texts: list[str], limit: int | None) -> list[list[int]]:
        if self._fast is None:
            return self._tokenize(texts, limit)
        ids = self._fast(texts, limit, lambda words: self._tokenize(words, None))
        rest = [i for i, x in enumerate(ids) if x is None]  # texts holding an added token
        for i, x in zip(rest, self._tokenize([texts[i] for i in rest], limit), strict=True):
            ids[i] = x
        return ids  # type: ignore[return-value]

    def _tokenize(self, texts: list[str], limit: int | None) -> list[list[int]]:
        if limit is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(limit)
        # `encode_batch_fast` skips the offsets bookkeeping we never use; it runs in Rust threads.
        return [e.ids for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    def _ids_of_long(self, text: str) -> list[int]:
        assert self._bound is not None and self.max_length is not None
        bound, left = self._bound, self.truncation_side == "left"
        while True:
            piece = _cut_tail(text, bound) if left else _cut(text, bound)
            # One token more than kept: the piece did not end before the last kept token.
            ids = self._ids([piece], None if left else self.max_length + 1)[0]
            if len(ids) > self.max_length or piece is text or bound >= self._bound * _MAX_GROWTH:
                return ids[-self.max_length :] if left else ids[: self.max_length]
            bound *= 4


def _mostly_non_ascii(text: str) -> bool:
    # Then splitting off the ASCII words costs more than it saves (Cyrillic: 1.6x slower).
    extra_bytes = len(text.encode("utf-8", "surrogatepass")) - len(text)  # 1-3 per non-ASCII
    return 16 * extra_bytes > len(text)


def _cut(text: str, bound: int) -> str:
    """``text`` up to its last ASCII whitespace within ``bound`` (or at ``bound`` if there is
    none in the second half); ``text`` itself if it is not longer."""
    if len(text) <= bound:
        return text
    at = max(text.rfind(c, bound // 2, bound + 1) for c in _ASCII_WS)
    return text[: at if at > 0 else bound]


def _cut_tail(text: str, bound: int) -> str:
    """``text`` from its first ASCII whitespace within its last ``bound`` characters (or the
    last ``bound`` characters if there is none in the first half of them); ``text`` itself if
    it is not longer."""
    if len(text) <= bound:
        return text
    start = len(text) - bound
    found = [i for i in (text.find(c, start, start + bound // 2) for c in _ASCII_WS) if i >= 0]
    return text[min(found) if found else start :]


class _Vocab(dict):
    """A word-level vocabulary whose missing words are ``[UNK]``."""

    def __init__(self, vocab: dict[str, int], unk_id: int) -> None:
        super().__init__(vocab)
        self.unk_id = unk_id

    def __missing__(self, word: str) -> int:
        return self.unk_id


class _AsciiWordLevel:
    """Our word-level pipeline on ASCII, exactly, in CPython's C string functions.

    On ASCII every unicode normal form is the identity and ``str.lower`` is the Rust lowercase;
    ``_TOKENS`` splits as ``Whitespace`` does (the tests check all 128 characters). A text with
    non-ASCII characters is split at the ASCII whitespace around each word that holds one
    (``_split``): no token, normal form or added token spans such a whitespace, so those words
    alone go to the tokenizer. A text containing an added token (``[PAD]``) is left to it.
    """

    _TOKENS = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\t\n\v\f\r ]+")
    _NON_ASCII = re.compile(r"[^\x00-\x7f]+")
    _STEPS = frozenset({"NFC", "NFD", "NFKC", "NFKD", "Lowercase"})

    def __init__(self, vocab: _Vocab, lowercase: bool, raw: list[str], normal: list[str]):
        self.lookup = vocab.__getitem__
        self.lowercase = lowercase
        self.added_raw, self.added_normal = raw, normal  # matched before / after normalising
        # A one-character `in` is a memchr: look for the added tokens' first characters first.
        self.added_starts = {t[0] for t in raw} | {c for t in normal for c in (t[0], t[0].upper())}

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> _AsciiWordLevel | None:
        """The fast path for ``tokenizer``, or ``None`` if its pipeline is not ours."""
        spec = json.loads(tokenizer.to_str())
        model, norm = spec["model"], spec["normalizer"] or {"type": "Sequence", "normalizers": []}
        steps = [s["type"] for s in norm.get("normalizers", [norm])]
        normal = tokenizer.normalizer.normalize_str if tokenizer.normalizer else str
        added = spec["added_tokens"]
        raw = [t["content"] for t in added if not t["normalized"]]
        normalized = [normal(t["content"]) for t in added if t["normalized"]]
        if (
            model["type"] != "WordLevel"
            or model["unk_token"] not in model["vocab"]
            or spec["pre_tokenizer"] != {"type": "Whitespace"}
            or spec["padding"] is not None
            or not set(steps) <= cls._STEPS
            or any(not t or any(c in t for c in _ASCII_WS) for t in raw + normalized)
        ):
            return None
        vocab = _Vocab(model["vocab"], model["vocab"][model["unk_token"]])
        return cls(vocab, "Lowercase" in steps, raw, normalized)

    def __call__(
        self, texts: list[str], limit: int | None, tokenize: Callable[[list[str]], list[list[int]]]
    ) -> list[list[int] | None]:
        """Ids per text (``None``: left to the tokenizer); ``tokenize`` encodes the non-ASCII
        words, untruncated."""
        ids: list[list[int] | None] = []
        mixed: dict[int, list[str]] = {}  # text index -> its ASCII stretches and non-ASCII words
        for text in texts:
            if self._holds_added_token(text):
                ids.append(None)
            elif text.isascii():
                ids.append(self._ascii_ids(text, limit))
            else:
                if not _mostly_non_ascii(text):
                    mixed[len(ids)] = self._split(text)
                ids.append(None)
        if mixed:
            words = list({w: None for parts in mixed.values() for w in parts[1::2]})
            word_ids = dict(zip(words, tokenize(words), strict=True))
            for i, parts in mixed.items():
                ids[i] = self._mixed_ids(parts, word_ids, limit)
        return ids

    def _holds_added_token(self, text: str) -> bool:
        if not any(c in text for c in self.added_starts):
            return False
        if any(t in text for t in self.added_raw):
            return True
        folded = text.lower() if self.lowercase and self.added_normal else text
        return any(t in folded for t in self.added_normal)

    def _ascii_ids(self, text: str, limit: int | None) -> list[int]:
        words = None
        if limit is not None and len(text) > 8 * limit:
            # Most texts reach `limit` tokens well within 8 characters a token: split only that
            # much. One token more proves the last kept one was not cut (ASCII: no normal form).
            words = self._TOKENS.findall(self._fold(text[: 8 * limit]))
            words = words if len(words) > limit else None
        if words is None:
            words = self._TOKENS.findall(self._fold(text))
        if limit is not None and len(words) > limit:
            del words[limit:]
        return list(map(self.lookup, words))

    def _fold(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def _split(self, text: str) -> list[str]:
        """``[ascii, word, ascii, ..., word, ascii]``: the non-ASCII words at odd positions."""
        parts, start = [], 0
        for run in self._NON_ASCII.finditer(text):
            if run.start() < start:
                continue  # a later run of the word just taken
            # The word around the run: from after the ASCII whitespace before it to the next.
            begin = max(text.rfind(c, start, run.start()) for c in _ASCII_WS) + 1
            ends = [text.find(c, run.end()) for c in _ASCII_WS]
            end = min((e for e in ends if e >= 0), default=len(text))
            parts += [text[start:begin], text[begin:end]]
            start = end
        return [*parts, text[start:]]

    def _mixed_ids(self, parts: list[str], word_ids: dict[str, list[int]], limit: int | None):
        ids: list[int] = []
        for k, part in enumerate(parts):
            if k % 2:
                ids += word_ids[part]
            else:
                ids += self._ascii_ids(part, None)
            if limit is not None and len(ids) >= limit:
                return ids[:limit]
        return ids
