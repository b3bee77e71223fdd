"""The whole network in eval mode: embedding lookup, an encoder's reference, the linear head."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from lit_seqcls.reference.cells import Array


class EncoderReference(Protocol):
    def forward(self, x: Array, lengths: Array) -> Array | tuple[Array, Array]: ...


class NetworkReference:
    """``TextClassifierNetwork`` in eval mode (dropout is the identity): ids to logits.

    ``logits = head(encoder(embedding[input_ids]))``; the embedding rows of padding are looked up
    like any other, so an encoder that read padding would show here too.

    Args:
        encoder: the reference of the network's encoder (``RecurrentReference``, ...).
        params: at least ``embedding.weight`` ``(V, E)``, ``head.weight`` ``(C, H)`` and
            ``head.bias`` ``(C,)``, keyed as the network's ``named_parameters()``.

    Example:
        >>> from lit_seqcls.reference.swem import SWEMReference
        >>> params = {"embedding.weight": np.array([[0.0], [2.0], [4.0]]),
        ...           "head.weight": np.array([[1.0], [-1.0]]), "head.bias": np.zeros(2)}
        >>> NetworkReference(SWEMReference("mean"), params).forward(
        ...     np.array([[1, 2], [2, 0]]), np.array([2, 1])).tolist()
        [[3.0, -3.0], [4.0, -4.0]]
    """

    def __init__(self, encoder: EncoderReference, params: dict[str, Array]) -> None:
        self.encoder = encoder
        self.embedding = params["embedding.weight"]
        self.w, self.b = params["head.weight"], params["head.bias"]

    def forward(self, input_ids: Array, lengths: Array) -> Array:
        """Logits ``(B, C)`` of padded ``input_ids`` ``(B, T)`` with real ``lengths`` ``(B,)``."""
        x = self.embedding[np.asarray(input_ids)]  # (B, T, E)
        out = self.encoder.forward(x, np.asarray(lengths))
        pooled = out[0] if isinstance(out, tuple) else out  # (B, H)
        return pooled @ self.w.T + self.b  # (B, C)
