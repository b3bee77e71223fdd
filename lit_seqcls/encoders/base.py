"""The small base class every encoder implements."""

from __future__ import annotations

import abc

from torch import Tensor, nn


class Encoder(nn.Module, abc.ABC):
    """Turns embedded tokens into one vector per text (and optionally attention weights).

    The classifier builds an encoder as ``factory(input_size)`` and sizes its output layer from
    ``output_dim``, so no dimension is written twice. Subclasses set ``output_dim`` in their
    constructor and take the embedding size as their first positional argument, ``input_size``.

    The result must not depend on padding: a text alone or inside a padded batch (with ``T``
    possibly larger than the longest text) gives the same output.

    Attributes:
        output_dim: size ``H`` of the pooled vector.
        returns_attention: whether ``forward`` returns attention weights instead of ``None``.
    """

    output_dim: int
    returns_attention: bool = False

    @abc.abstractmethod
    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Pool a padded batch of embedded texts.

        Args:
            embedded: token embeddings; values on padding are arbitrary. ``(B, T, E)``
            lengths: real tokens per text, ``>= 1``, on any device. ``(B,)``
            mask: ``True`` where ``t < lengths[b]``. ``(B, T)``

        Returns:
            The pooled vectors ``(B, output_dim)`` and attention weights ``(B, T)`` (exactly 0 on
            padding) or ``None`` when the encoder has none.
        """
