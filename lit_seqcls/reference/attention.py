"""Additive attention pooling and the attention encoder (LSTM states pooled by attention)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lit_seqcls.reference.cells import Array
from lit_seqcls.reference.recurrent import RecurrentReference


class AttentionPoolingReference:
    """``score_t = v^T tanh(W h_t + b)``, softmax over the real tokens, ``pooled = Σ_t a_t h_t``.

    Args:
        params: ``proj.weight`` (W, ``(A, D)``), ``proj.bias`` (b, ``(A,)``) and ``score.weight``
            (v, ``(1, A)``), as ``AdditiveAttention.named_parameters()`` names them.

    Example:
        >>> params = {"proj.weight": np.eye(2), "proj.bias": np.zeros(2),
        ...           "score.weight": np.zeros((1, 2))}
        >>> pooled, weights = AttentionPoolingReference(params).forward(
        ...     np.array([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]]), np.array([[True, True, False]]))
        >>> weights.tolist(), pooled.tolist()  # v = 0: equal weights on the two real tokens
        ([[0.5, 0.5, 0.0]], [[2.0, 1.0]])
    """

    def __init__(self, params: Mapping[str, Array]) -> None:
        self.w = np.asarray(params["proj.weight"], dtype=np.float64)  # (A, D)
        self.b = np.asarray(params["proj.bias"], dtype=np.float64)  # (A,)
        self.v = np.asarray(params["score.weight"], dtype=np.float64)[0]  # (A,)

    def forward(self, states: Array, mask: Array) -> tuple[Array, Array]:
        """Pool ``states`` ``(B, T, D)`` where ``mask`` ``(B, T)`` is True; 0 weight elsewhere."""
        u = np.tanh(states @ self.w.T + self.b)  # (B, T, A)
        scores = np.where(mask, u @ self.v, -np.inf)  # (B, T)
        # Softmax over the real tokens only: subtracting the row maximum changes nothing but the
        # rounding; exp(-inf) = 0 on padding.
        e = np.exp(scores - scores.max(axis=1, keepdims=True))  # (B, T)
        weights = e / e.sum(axis=1, keepdims=True)  # (B, T)
        pooled = np.einsum("bt,btd->bd", weights, states)  # (B, D)
        self._cache = (states, u, weights)
        return pooled, weights

    def backward(
        self, d_pooled: Array, d_weights: Array | None = None
    ) -> tuple[Array, dict[str, Array]]:
        """Gradients of ``states`` ``(B, T, D)`` and of the parameters from ``d_pooled`` ``(B, D)``.

        ``d_weights`` ``(B, T)`` adds a gradient on the attention weights themselves.
        """
        states, u, weights = self._cache
        d_states = weights[..., None] * d_pooled[:, None, :]  # (B, T, D): through Σ_t a_t h_t
        d_a = np.einsum("btd,bd->bt", states, d_pooled)  # (B, T)
        if d_weights is not None:
            d_a = d_a + d_weights
        # Softmax Jacobian: ds_t = a_t (da_t - Σ_s a_s da_s); a_t = 0 on padding, so ds_t = 0 there.
        d_scores = weights * (d_a - (weights * d_a).sum(axis=1, keepdims=True))  # (B, T)
        d_v = np.einsum("bt,bta->a", d_scores, u)
        d_pre = d_scores[..., None] * self.v * (1.0 - u**2)  # (B, T, A): through tanh
        d_states += d_pre @ self.w
        grads = {
            "proj.weight": np.einsum("bta,btd->ad", d_pre, states),
            "proj.bias": d_pre.sum(axis=(0, 1)),
            "score.weight": d_v[None, :],
        }
        return d_states, grads


class AttentionEncoderReference:
    """``encoders.AttentionEncoder``: a (Bi)LSTM whose per-token outputs attention pools.

    Args:
        params: ``AttentionEncoder.named_parameters()`` as arrays (``lstm.*``, ``attention.*``).

    Example:
        >>> import torch
        >>> from lit_seqcls.encoders import AttentionEncoder
        >>> encoder = AttentionEncoder(3, hidden_size=4)
        >>> ref = AttentionEncoderReference({k: v.detach().numpy() for k, v in
        ...                                  encoder.named_parameters()})
        >>> pooled, weights = ref.forward(np.ones((2, 5, 3)), np.array([5, 2]))
        >>> pooled.shape, weights[1, 2:].tolist()
        ((2, 8), [0.0, 0.0, 0.0])
    """

    def __init__(self, params: Mapping[str, Array]) -> None:
        self.lstm = RecurrentReference("lstm", _strip(params, "lstm."))
        self.attention = AttentionPoolingReference(_strip(params, "attention."))

    def forward(self, x: Array, lengths: Array) -> tuple[Array, Array]:
        """Pooled ``(B, D*H)`` and attention weights ``(B, T)`` for ``x`` ``(B, T, E)``."""
        mask = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]  # (B, T)
        _, states = self.lstm.forward(x, lengths)  # (B, T, D*H), 0 on padding
        return self.attention.forward(states, mask)

    def backward(self, d_pooled: Array) -> tuple[Array, dict[str, Array]]:
        """Gradients of ``x`` ``(B, T, E)`` and of every parameter, keyed as in the encoder."""
        d_states, attention_grads = self.attention.backward(d_pooled)
        # The LSTM's final states are not used here: only its per-token outputs get a gradient.
        d_x, lstm_grads = self.lstm.backward(None, d_states)
        grads = {f"lstm.{k}": g for k, g in lstm_grads.items()}
        grads.update({f"attention.{k}": g for k, g in attention_grads.items()})
        return d_x, grads


def _strip(params: Mapping[str, Array], prefix: str) -> dict[str, Array]:
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
