"""The small base class every encoder implements."""

from __future__ import annotations

import abc
import inspect
from typing import Any

from torch import Tensor, nn


class Encoder(nn.Module, abc.ABC):
    """Turns embedded tokens into one vector per text (and optionally attention weights).

    The classifier builds an encoder as ``factory(input_size)`` and sizes its output layer from
    ``output_dim``, so no dimension is written twice. Subclasses set ``output_dim`` in their
    constructor and take the embedding size as their first positional argument, ``input_size``.

    The result must not depend on padding: a text alone or inside a padded batch (with ``T``
    possibly larger than the longest text) gives the same output.

    Every encoder remembers the arguments it was built with (all but ``input_size``), however it
    was built (by name, class path, ``functools.partial``, a lambda or jsonargparse), so that
    ``encoders.spec`` can save it as plain data; subclasses need do nothing for that.

    Attributes:
        output_dim: size ``H`` of the pooled vector.
        returns_attention: whether ``forward`` returns attention weights instead of ``None``.
        uses_token_ids: whether ``forward`` also takes the padded token ids, as the keyword
            ``input_ids`` ``(B, T)`` (the network passes them; ``swem`` with hashed bigrams).
    """

    output_dim: int
    returns_attention: bool = False
    uses_token_ids: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Encoder:
        encoder = super().__new__(cls)
        # copy, deepcopy and pickle call `__new__` without arguments and restore `__dict__`.
        if args or kwargs:
            signature = inspect.signature(cls.__init__)
            try:
                given = signature.bind(encoder, *args, **kwargs).arguments
            except TypeError:
                return encoder  # `__init__` raises the same error, with its own message
            skip = list(signature.parameters)[:2]  # `self`, `input_size`
            encoder.__dict__["_init_args"] = {k: v for k, v in given.items() if k not in skip}
        return encoder

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
