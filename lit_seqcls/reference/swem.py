"""The simple word-embedding model: mean and/or max of the embeddings, forward and backward."""

from __future__ import annotations

import numpy as np

from lit_seqcls.reference.cells import Array


class SWEMReference:
    """``encoders.SWEMEncoder``: ``[mean_t x_t ; max_t x_t]`` over each text's real tokens.

    No parameters. ``mean`` is ``(1/len) Σ_{t<len} x_t``; ``max`` takes, per dimension, the real
    token with the largest value; ``concat`` is ``[mean ; max]``.

    Args:
        pooling: ``mean``, ``max`` or ``concat``.

    Example:
        >>> x = np.array([[[1.0], [3.0], [9.0]], [[4.0], [0.0], [0.0]]])
        >>> SWEMReference("concat").forward(x, np.array([2, 1])).tolist()
        [[2.0, 3.0], [4.0, 4.0]]
    """

    def __init__(self, pooling: str = "concat") -> None:
        self.pooling = pooling

    def forward(self, x: Array, lengths: Array) -> Array:
        """Pooled vectors ``(B, E)`` or ``(B, 2 E)`` of ``x`` ``(B, T, E)``."""
        lengths = np.asarray(lengths)
        mask = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
        parts, winner = [], None
        if self.pooling in ("mean", "concat"):
            parts.append(np.where(mask[..., None], x, 0.0).sum(axis=1) / lengths[:, None])
        if self.pooling in ("max", "concat"):
            winner = np.where(mask[..., None], x, -np.inf).argmax(axis=1)  # (B, E)
            parts.append(np.take_along_axis(x, winner[:, None, :], axis=1)[:, 0])
        self._cache = (x.shape, mask, lengths, winner)
        return np.concatenate(parts, axis=1)

    def backward(self, d_pooled: Array) -> tuple[Array, dict[str, Array]]:
        """Gradient of ``x`` ``(B, T, E)`` (0 on padding); no parameters, so no other gradients.

        The mean hands ``1/len`` of its gradient to every real token; the max hands all of it to
        the winning token of each dimension (ties have probability 0 for continuous inputs).
        """
        shape, mask, lengths, winner = self._cache
        dim = shape[2]
        d_x = np.zeros(shape)
        if self.pooling in ("mean", "concat"):
            d_mean = d_pooled[:, :dim] / lengths[:, None]  # (B, E)
            d_x += np.where(mask[..., None], d_mean[:, None, :], 0.0)
        if winner is not None:
            d_max = d_pooled[:, -dim:]  # (B, E)
            rows, dims = np.indices(winner.shape)
            np.add.at(d_x, (rows, winner, dims), d_max)
        return d_x, {}
