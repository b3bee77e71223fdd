"""Kim's CNN encoder: convolutions, masked max over time, ReLU, forward and backward."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lit_seqcls.reference.cells import Array


class CNNReference:
    """``encoders.CNNEncoder``: ``relu(max_p (b_f + Σ_{e,j} W_fej x_{p+j,e}))``, counted windows p.

    Which windows count, as in the encoder: the tokens on padding are read as 0; window ``p``
    covers tokens ``p .. p+k-1`` and counts when it lies inside the text (``p <= len - k``); a
    text shorter than ``k`` keeps only window 0, read as if right-padded with zeros (the batch is
    first padded to the widest kernel if it is narrower).

    Args:
        params: ``CNNEncoder.named_parameters()`` as arrays: ``convs.<i>.weight`` ``(F, E, k_i)``
            and ``convs.<i>.bias`` ``(F,)``.

    Example:
        >>> params = {"convs.0.weight": np.ones((1, 1, 2)), "convs.0.bias": np.array([-1.0])}
        >>> ref = CNNReference(params)
        >>> x = np.array([[[1.0], [2.0], [5.0]], [[4.0], [9.0], [9.0]]])
        >>> ref.forward(x, np.array([3, 1])).tolist()  # text 2: one token, window [4, 0]
        [[6.0], [3.0]]
    """

    def __init__(self, params: Mapping[str, Array]) -> None:
        count = sum(1 for k in params if k.endswith(".weight"))
        self.convs = [
            (
                np.asarray(params[f"convs.{i}.weight"], dtype=np.float64),  # (F, E, k)
                np.asarray(params[f"convs.{i}.bias"], dtype=np.float64),  # (F,)
            )
            for i in range(count)
        ]

    def forward(self, x: Array, lengths: Array) -> Array:
        """Pooled features ``(B, F * number of kernels)`` of ``x`` ``(B, T, E)``."""
        batch, steps, dim = x.shape
        lengths = np.asarray(lengths)
        mask = np.arange(steps)[None, :] < lengths[:, None]  # (B, T)
        widest = max(w.shape[2] for w, _ in self.convs)
        padded = np.zeros((batch, max(steps, widest), dim))  # (B, T', E)
        padded[:, :steps] = np.where(mask[..., None], x, 0.0)
        maxima, winners = [], []
        for w, b in self.convs:
            width = w.shape[2]
            windows = sliding_window_view(padded, width, axis=1)  # (B, P, E, k), P = T' - k + 1
            features = np.einsum("bpek,fek->bfp", windows, w) + b[None, :, None]  # (B, F, P)
            counted = np.maximum(lengths - width + 1, 1)  # (B,)
            valid = np.arange(features.shape[2])[None, :] < counted[:, None]  # (B, P)
            features = np.where(valid[:, None, :], features, -np.inf)
            winner = features.argmax(axis=2)  # (B, F): the window each filter's max comes from
            maxima.append(np.take_along_axis(features, winner[..., None], axis=2)[..., 0])
            winners.append(winner)
        z = np.concatenate(maxima, axis=1)  # (B, F * kernels)
        self._cache = (padded, mask, winners, z)
        return np.maximum(z, 0.0)

    def backward(self, d_pooled: Array) -> tuple[Array, dict[str, Array]]:
        """Gradients of ``x`` ``(B, T, E)`` (0 on padding) and of every parameter.

        The max passes its gradient to the winning window only (the inputs are continuous, so
        ties have probability 0).
        """
        padded, mask, winners, z = self._cache
        d_z = d_pooled * (z > 0)  # (B, F * kernels): through the ReLU
        d_padded = np.zeros_like(padded)  # (B, T', E)
        rows = np.arange(padded.shape[0])[:, None]  # (B, 1)
        grads = {}
        start = 0
        for i, ((w, _), winner) in enumerate(zip(self.convs, winners, strict=True)):
            filters, _, width = w.shape
            d_f = d_z[:, start : start + filters]  # (B, F)
            start += filters
            d_w = np.zeros_like(w)
            for j in range(width):
                position = winner + j  # (B, F): token j of each winning window
                tokens = padded[rows, position]  # (B, F, E)
                d_w[:, :, j] = np.einsum("bf,bfe->fe", d_f, tokens)
                np.add.at(d_padded, (rows, position), d_f[..., None] * w[None, :, :, j])
            grads[f"convs.{i}.weight"] = d_w
            grads[f"convs.{i}.bias"] = d_f.sum(axis=0)
        steps = mask.shape[1]
        # The zero fill and the extra padding are constants: no gradient reaches x through them.
        return np.where(mask[..., None], d_padded[:, :steps], 0.0), grads
