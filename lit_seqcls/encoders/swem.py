"""Simple word-embedding model (SWEM): pool the word embeddings themselves, no parameters."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from lit_seqcls.encoders.base import Encoder
from lit_seqcls.validation import ConfigValueError, require_non_negative_int, require_positive_int

Pooling = Literal["mean", "max", "concat"]

# fastText's multiplier for hashing a word n-gram from its words' ids (`Dictionary::addWordNgrams`);
# ids below 10,000,000 (the vocabulary limit) keep `first * _HASH + second` inside int64.
_HASH = 116_049_371


class SWEMEncoder(Encoder):
    """Mean and/or max of the embeddings over each text's real tokens (Shen et al., 2018).

    The bag-of-words baseline of the neural encoders, as in fastText (Joulin et al., 2017): word
    order is ignored, and the embeddings learn what a linear model over word counts would. On
    topic classification with a few thousand training texts (20 Newsgroups) that is what works
    best without pretrained vectors; where order matters (negation, sentiment) use ``cnn`` or
    ``attention``. Without bigrams it has no parameters of its own; the classifier's embedding,
    dropout and head do the learning.

    With ``ngram_buckets > 0`` the bag also holds each pair of adjacent tokens (a *bigram*, as
    fastText's ``-wordNgrams 2``): the pair's ids are hashed into one of ``ngram_buckets`` rows
    of the encoder's own bigram embedding, and the pooling runs over the words and the bigrams
    together (a text of ``n`` tokens has ``n - 1`` bigrams; a bigram never spans padding, so
    padding changes nothing). "not good" then gets a vector of its own. It reads the token ids
    (``uses_token_ids``), which the network passes as ``input_ids``. Costs ``ngram_buckets × E``
    parameters (fastText uses 2,000,000 buckets; 100,000-500,000 suits tens of thousands of
    texts: collisions only add noise).

    Args:
        input_size: embedding size ``E``.
        pooling: ``mean`` (SWEM-aver: the average embedding), ``max`` (SWEM-max: each dimension's
            largest value) or ``concat`` (both, ``output_dim = 2 E``).
        ngram_buckets: rows of the hashed bigram embedding; 0 (the default): words only.

    Example:
        >>> from lit_seqcls.masking import lengths_to_mask
        >>> encoder = SWEMEncoder(8)
        >>> lengths = torch.tensor([5, 1])
        >>> pooled, attention = encoder(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths))
        >>> pooled.shape, encoder.output_dim, attention
        (torch.Size([2, 16]), 16, None)
        >>> bigrams = SWEMEncoder(8, ngram_buckets=100)
        >>> ids = torch.tensor([[4, 9, 2, 7, 3], [5, 0, 0, 0, 0]])  # (B, T)
        >>> bigrams(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths), ids)[0].shape
        torch.Size([2, 16])
    """

    POOLINGS: tuple[Pooling, ...] = get_args(Pooling)

    def __init__(
        self, input_size: int, pooling: Pooling = "concat", ngram_buckets: int = 0
    ) -> None:
        super().__init__()
        require_positive_int("input_size", input_size)
        require_non_negative_int("ngram_buckets", ngram_buckets)
        if pooling not in self.POOLINGS:
            raise ConfigValueError(
                f"pooling must be one of {', '.join(self.POOLINGS)}; got {pooling!r}"
            )
        self.pooling = pooling
        self.output_dim = input_size * (2 if pooling == "concat" else 1)
        self.ngram_buckets = ngram_buckets
        self.uses_token_ids = ngram_buckets > 0
        self.bigrams = nn.Embedding(ngram_buckets, input_size) if ngram_buckets else None
        if self.bigrams is not None:
            nn.init.normal_(self.bigrams.weight, std=0.1)  # as the word embedding

    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor, input_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        if self.bigrams is not None:
            if input_ids is None:
                raise ValueError("SWEMEncoder with ngram_buckets > 0 needs the input_ids (B, T)")
            embedded, lengths, mask = self._with_bigrams(embedded, lengths, mask, input_ids)
        real = mask.unsqueeze(-1)  # (B, T, 1)
        pooled = []
        if self.pooling in ("mean", "concat"):
            total = embedded.masked_fill(~real, 0.0).sum(dim=1)  # (B, E)
            pooled.append(total / lengths.to(total.device, total.dtype).unsqueeze(-1))
        if self.pooling in ("max", "concat"):
            pooled.append(embedded.masked_fill(~real, float("-inf")).amax(dim=1))  # (B, E)
        return torch.cat(pooled, dim=-1), None  # (B, output_dim)

    def _with_bigrams(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor, input_ids: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The bag of words and bigrams: ``(B, 2T - 1, E)``, its sizes ``(B,)`` and mask."""
        assert self.bigrams is not None
        ids = input_ids.long()  # (B, T)
        pairs = (ids[:, :-1] * _HASH + ids[:, 1:]) % self.ngram_buckets  # (B, T - 1)
        # Pair (t, t + 1) is real when token t + 1 is (the mask is a prefix): never padding.
        pair_mask = mask[:, 1:]  # (B, T - 1)
        bag = torch.cat([embedded, self.bigrams(pairs).to(embedded.dtype)], dim=1)
        bag_mask = torch.cat([mask, pair_mask], dim=1)  # (B, 2T - 1)
        sizes = lengths.to(mask.device) * 2 - 1  # n words + (n - 1) bigrams, (B,)
        return bag, sizes, bag_mask
