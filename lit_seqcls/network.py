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


class ClassifierOutput(NamedTuple):
    logits: Tensor  # (B, C)
    attention: Tensor | None  # (B, T), only for encoders that attend


class TextClassifierNetwork(nn.Module):
    """Embedding → encoder → dropout → linear head.

    The embedding row of ``PAD_ID`` (0) starts and stays at zero (``padding_idx``); dropout acts
    on the token embeddings and on the pooled text vector.

    Args:
        vocab_size: rows of the embedding.
        num_classes: size of the output layer.
        encoder: the encoder; the head reads its ``output_dim``.
        embedding_dim: size of the token embeddings (the encoder's ``input_size``).
        dropout: dropout probability on the embeddings and on the pooled vector.

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
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.encoder = encoder
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
        return self.classify(self.embedding(input_ids), lengths)  # embedded: (B, T, E)

    def classify(self, embedded: Tensor, lengths: Tensor) -> ClassifierOutput:
        """The forward pass from embeddings ``(B, T, E)`` on (what attribution differentiates)."""
        mask = lengths_to_mask(lengths, embedded.size(1))  # (B, T)
        pooled, attention = self.encoder(self.dropout(embedded), lengths, mask)  # (B, H), (B, T)
        logits = self.head(self.dropout(pooled))  # (B, C)
        return ClassifierOutput(logits, attention)

    def load_pretrained_embeddings(self, weights: Tensor) -> None:
        """Copy ``weights`` ``(vocab_size, embedding_dim)`` into the embedding (pad row stays 0)."""
        if weights.shape != self.embedding.weight.shape:
            raise ValueError(
                f"pretrained vectors have shape {tuple(weights.shape)} but the embedding is "
                f"{tuple(self.embedding.weight.shape)} (vocab_size, embedding_dim); set "
                f"`--model.embedding_dim {weights.size(1)}` to match the vectors."
            )
        with torch.no_grad():
            self.embedding.weight.copy_(weights)
            self.embedding.weight[PAD_ID].zero_()
