"""Multi-layer, optionally bidirectional recurrences over padded batches, with BPTT."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from lit_seqcls.reference.cells import CELLS, Array, Params

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class RecurrentReference:
    """What ``nn.RNN``/``nn.GRU``/``nn.LSTM`` compute on packed sequences, and its gradients.

    ``forward`` caches what ``backward`` needs (like a layer of a hand-written network), so call
    them in pairs.

    Args:
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        params: the torch module's ``named_parameters()`` as arrays (``weight_ih_l0``, ...);
            layers and directions are read from the names.

    Example:
        >>> import torch
        >>> lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        >>> ref = RecurrentReference("lstm", {k: v.detach().numpy() for k, v in
        ...                                   lstm.named_parameters()})
        >>> ref.num_layers, ref.num_directions
        (2, 2)
        >>> pooled, states = ref.forward(np.ones((2, 5, 3)), np.array([5, 2]))
        >>> pooled.shape, states.shape, bool(states[1, 2:].any())  # 0 on padding
        ((2, 8), (2, 5, 8), False)
        >>> d_x, grads = ref.backward(np.ones_like(pooled))
        >>> d_x.shape, grads["weight_hh_l1_reverse"].shape
        ((2, 5, 3), (16, 4))
    """

    def __init__(self, cell: str, params: Mapping[str, Array]) -> None:
        self.cell = CELLS[cell]
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        layers = {int(m.group(1)) for k in params if (m := re.fullmatch(r"weight_ih_l(\d+)", k))}
        self.num_layers = len(layers)
        self.num_directions = 2 if "weight_ih_l0_reverse" in params else 1
        self.hidden_size = self.params["weight_hh_l0"].shape[1]
        self._cache: list[Any] = []

    def layer_params(self, layer: int, direction: int) -> Params:
        """``(W_ih, W_hh, b_ih, b_hh)`` of one layer and direction (1 = right to left)."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return tuple(self.params[name + suffix] for name in _NAMES)  # type: ignore[return-value]

    def forward(self, x: Array, lengths: Array) -> tuple[Array, Array]:
        """Run over ``x`` ``(B, T, E)`` with real ``lengths`` ``(B,)``, each ``>= 1``.

        Returns the pooled final states ``(B, D*H)`` (last layer, forward direction first) and the
        last layer's per-token outputs ``(B, T, D*H)``, 0 on padding.
        """
        lengths = np.asarray(lengths)
        self._cache = []
        inputs = np.asarray(x, dtype=np.float64)
        for layer in range(self.num_layers):
            runs = [
                _run(self.cell, self.layer_params(layer, d), inputs, lengths, reverse=d == 1)
                for d in range(self.num_directions)
            ]
            self._cache.append((inputs.shape, [caches for _, _, caches in runs]))
            inputs = np.concatenate([outputs for outputs, _, _ in runs], axis=-1)  # (B, T, D*H)
        pooled = np.concatenate([final for _, final, _ in runs], axis=-1)  # (B, D*H)
        return pooled, inputs

    def backward(
        self, d_pooled: Array | None, d_states: Array | None = None
    ) -> tuple[Array, dict[str, Array]]:
        """Backpropagate through time from the last ``forward``.

        Args:
            d_pooled: gradient of the pooled states ``(B, D*H)``, or ``None`` for zero.
            d_states: gradient of the per-token outputs ``(B, T, D*H)``, or ``None`` for zero.

        Returns:
            The gradient of ``x`` ``(B, T, E)`` (0 on padding) and of every parameter, keyed as
            the torch module names them.
        """
        hidden = self.hidden_size
        (batch, steps, _), _ = self._cache[-1]
        width = hidden * self.num_directions
        d_out = np.zeros((batch, steps, width)) if d_states is None else d_states
        d_final = np.zeros((batch, width)) if d_pooled is None else d_pooled
        grads: dict[str, Array] = {}
        for layer in reversed(range(self.num_layers)):
            input_shape, caches = self._cache[layer]
            d_in = np.zeros(input_shape)
            for d in range(self.num_directions):
                part = slice(d * hidden, (d + 1) * hidden)
                # Only the last layer's final states are pooled; lower layers feed on outputs.
                final = (
                    d_final[:, part]
                    if layer == self.num_layers - 1
                    else np.zeros_like(d_final[:, part])
                )
                params = self.layer_params(layer, d)
                d_x, d_params = _run_backward(self.cell, params, caches[d], d_out[..., part], final)
                d_in += d_x
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                grads.update({name + suffix: g for name, g in zip(_NAMES, d_params, strict=True)})
            d_out = d_in
        return d_out, grads


def _run(
    cell: Any, params: Params, x: Array, lengths: Array, reverse: bool
) -> tuple[Array, Array, list]:
    """One direction of one layer: per-token outputs ``(B, T, H)``, final ``h`` ``(B, H)``."""
    batch, steps, _ = x.shape
    hidden = params[1].shape[1]
    state = tuple(np.zeros((batch, hidden)) for _ in range(cell.num_states))
    outputs = np.zeros((batch, steps, hidden))
    caches = []
    # Right to left, every text starts at its own last real token: steps t >= len are skipped.
    for t in reversed(range(steps)) if reverse else range(steps):
        active = (t < lengths)[:, None]  # (B, 1): rows whose text has a token at t
        new_state, cache = cell.forward(x[:, t], state, params)
        state = tuple(np.where(active, new, old) for new, old in zip(new_state, state, strict=True))
        outputs[:, t] = np.where(active, state[0], 0.0)
        caches.append((t, active, cache))
    return outputs, state[0], caches


def _run_backward(
    cell: Any, params: Params, caches: list, d_outputs: Array, d_final: Array
) -> tuple[Array, Params]:
    """Backward of ``_run``: gradients of its input ``(B, T, E)`` and of its four parameters."""
    batch, steps, _ = d_outputs.shape
    d_x = np.zeros((batch, steps, params[0].shape[1]))
    d_params = [np.zeros_like(p) for p in params]
    # The gradient flowing into the state after the last step: the pooled final h (c gets none).
    d_state = [d_final] + [np.zeros_like(d_final) for _ in range(cell.num_states - 1)]
    for t, active, cache in reversed(caches):
        # Where the row is active the step's output is h_t itself; elsewhere it is a constant 0
        # and the state passes through unchanged, so its gradient does too.
        d_new = [np.where(active, d, 0.0) for d in d_state]
        d_new[0] = d_new[0] + np.where(active, d_outputs[:, t], 0.0)
        d_xt, d_prev, step_grads = cell.backward(tuple(d_new), cache, params)
        d_x[:, t] = d_xt
        d_state = [np.where(active, p, d) for p, d in zip(d_prev, d_state, strict=True)]
        for total, g in zip(d_params, step_grads, strict=True):
            total += g
    return d_x, tuple(d_params)  # type: ignore[return-value]
