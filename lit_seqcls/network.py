"""The network: token ids → embedding → encoder → dropout → linear head → logits.

A plain ``nn.Module`` with the one forward pass that training (``SequenceClassifier``),
attribution (``attribution.py``) and the NumPy reference tests all run. It knows nothing of
Lightning, losses or metrics.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lit_seqcls.batch import PAD_ID
from lit_seqcls.encoders import Encoder
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.validation import ConfigValueError, require_fraction


class ClassifierOutput(NamedTuple):
    logits: Tensor  # (B, C)
    attention: Tensor | None  # (B, T), only for encoders that attend


class TextClassifierNetwork(nn.Module):
    """Embedding → encoder → dropout → linear head.

    The embedding row of ``PAD_ID`` (0) starts and stays at zero (``padding_idx``); dropout acts
    on the token embeddings and on the pooled text vector. Word dropout (training only) first
    drops whole words: each word type of the vocabulary is dropped with probability
    ``word_dropout`` for the whole batch (every occurrence of it: Gal & Ghahramani, 2016), and
    the kept ones are scaled by ``1 / (1 - word_dropout)``, as AWD-LSTM's ``embedded_dropout``.

    Args:
        vocab_size: rows of the embedding.
        num_classes: size of the output layer.
        encoder: the encoder; the head reads its ``output_dim``.
        embedding_dim: size of the token embeddings (the encoder's ``input_size``).
        dropout: dropout probability on the embeddings and on the pooled vector.
        word_dropout: probability of dropping a word type's embedding (all of its occurrences
            in the batch) in training; 0 (off) by default; in eval mode the identity.

    Example:
        >>> from lit_seqcls.encoders import GRUEncoder
        >>> net = TextClassifierNetwork(50, 3, GRUEncoder(8, hidden_size=4), embedding_dim=8)
        >>> net(torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([3, 1])).logits.shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        encoder: Encoder,
        embedding_dim: int,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        require_fraction("word_dropout", word_dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.encoder = encoder
        self.word_dropout = word_dropout
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Embedding and head (the encoder initialises itself): small normal / Xavier, zero bias."""
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> ClassifierOutput:
        """Logits ``(B, C)`` for padded ``input_ids`` ``(B, T)`` with real ``lengths`` ``(B,)``."""
        embedded = self.embedding(input_ids)  # (B, T, E)
        if self.training and self.word_dropout > 0:
            embedded = embedded * self._kept_words(input_ids)  # (B, T, E)
        return self.classify(embedded, lengths, input_ids)

    def classify(
        self, embedded: Tensor, lengths: Tensor, input_ids: Tensor | None = None
    ) -> ClassifierOutput:
        """The forward pass from embeddings ``(B, T, E)`` on (what attribution differentiates).

        ``input_ids`` ``(B, T)`` are needed only by an encoder that reads them besides the
        embeddings (``uses_token_ids``: ``swem`` with hashed bigrams).
        """
        mask = lengths_to_mask(lengths, embedded.size(1))  # (B, T)
        extra = {}
        if self.encoder.uses_token_ids:
            if input_ids is None:
                raise ValueError(
                    f"{type(self.encoder).__name__} also reads the token ids: pass input_ids"
                )
            extra["input_ids"] = input_ids
        # pooled: (B, H), attention: (B, T) or None
        pooled, attention = self.encoder(self.dropout(embedded), lengths, mask, **extra)
        logits = self.head(self.dropout(pooled))  # (B, C)
        return ClassifierOutput(logits, attention)

    def _kept_words(self, input_ids: Tensor) -> Tensor:
        """Word dropout's scale per token ``(B, T, 1)``: one draw per word type of the vocabulary,
        shared by all its occurrences in the batch; 0 (dropped) or ``1 / (1 - p)`` (kept)."""
        keep = 1.0 - self.word_dropout
        weight = self.embedding.weight
        kept = torch.empty(weight.size(0), 1, device=weight.device, dtype=weight.dtype)
        kept.bernoulli_(keep).div_(keep)  # (V, 1)
        return kept[input_ids]  # (B, T, 1)

    def load_pretrained_embeddings(self, weights: Tensor) -> None:
        """Copy ``weights`` ``(vocab_size, embedding_dim)`` into the embedding (pad row stays 0)."""
        if weights.shape != self.embedding.weight.shape:
            raise ConfigValueError(
                f"pretrained vectors have shape {tuple(weights.shape)} but the embedding is "
                f"{tuple(self.embedding.weight.shape)} (vocab_size, embedding_dim); set "
                f"`--model.embedding_dim {weights.size(1)}` to match the vectors."
            )
        with torch.no_grad():
            self.embedding.weight.copy_(weights)
            self.embedding.weight[PAD_ID].zero_()
