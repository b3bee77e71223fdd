"""One time step of the RNN, GRU and LSTM cells, forward and backward, for a batch of rows.

A cell's state is a tuple: ``(h,)`` for RNN and GRU, ``(h, c)`` for LSTM. ``params`` is the layer's
``(W_ih (G*H, E), W_hh (G*H, H), b_ih (G*H,), b_hh (G*H,))`` in torch's layout (see the package
docstring). ``backward`` takes the gradient of the new state and returns the gradients of the
input, of the previous state and of the four parameters, in that order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray
Params = tuple[Array, Array, Array, Array]
State = tuple[Array, ...]


def _sigmoid(a: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # equal to 1 / (1 + e^-a), without overflow warnings


def _param_grads(d_gi: Array, d_gh: Array, x: Array, h: Array) -> Params:
    """Gradients of ``gi = x W_ih^T + b_ih`` and ``gh = h W_hh^T + b_hh`` from theirs."""
    return d_gi.T @ x, d_gh.T @ h, d_gi.sum(0), d_gh.sum(0)


class RNNCell:
    """Elman cell ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``.

    Example:
        >>> H, E = 2, 3
        >>> params = (np.zeros((H, E)), np.eye(H), np.ones(H), np.zeros(H))
        >>> (h,), _ = RNNCell.forward(np.zeros((1, E)), (np.zeros((1, H)),), params)
        >>> np.round(h, 4).tolist()
        [[0.7616, 0.7616]]
    """

    num_states = 1
    gates = 1

    @staticmethod
    def forward(x: Array, state: State, params: Params) -> tuple[State, Any]:
        w_ih, w_hh, b_ih, b_hh = params
        (h,) = state
        h_new = np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)  # (N, H)
        return (h_new,), (x, h, h_new)

    @staticmethod
    def backward(d_state: State, cache: Any, params: Params) -> tuple[Array, State, Params]:
        w_ih, w_hh, _, _ = params
        x, h, h_new = cache
        d_a = d_state[0] * (1.0 - h_new**2)  # (N, H): through tanh
        return d_a @ w_ih, (d_a @ w_hh,), _param_grads(d_a, d_a, x, h)


class GRUCell:
    """GRU cell in torch's form (gates r, z, n; ``b_hn`` inside the reset product).

    Example:
        >>> H, E = 2, 3
        >>> params = (np.zeros((3 * H, E)), np.zeros((3 * H, H)), np.zeros(3 * H), np.zeros(3 * H))
        >>> (h,), _ = GRUCell.forward(np.ones((1, E)), (np.ones((1, H)),), params)
        >>> h.tolist()  # z = 1/2, n = 0: half of the old state survives
        [[0.5, 0.5]]
    """

    num_states = 1
    gates = 3

    @staticmethod
    def forward(x: Array, state: State, params: Params) -> tuple[State, Any]:
        w_ih, w_hh, b_ih, b_hh = params
        (h,) = state
        gi_r, gi_z, gi_n = np.split(x @ w_ih.T + b_ih, 3, axis=1)  # (N, H) each
        gh_r, gh_z, gh_n = np.split(h @ w_hh.T + b_hh, 3, axis=1)  # (N, H) each
        r = _sigmoid(gi_r + gh_r)
        z = _sigmoid(gi_z + gh_z)
        n = np.tanh(gi_n + r * gh_n)
        h_new = (1.0 - z) * n + z * h  # (N, H)
        return (h_new,), (x, h, r, z, n, gh_n)

    @staticmethod
    def backward(d_state: State, cache: Any, params: Params) -> tuple[Array, State, Params]:
        w_ih, w_hh, _, _ = params
        x, h, r, z, n, gh_n = cache
        (d_h_new,) = d_state
        d_n = d_h_new * (1.0 - z)
        d_z = d_h_new * (h - n)
        d_an = d_n * (1.0 - n**2)  # pre-activation of n
        d_ar = d_an * gh_n * r * (1.0 - r)  # r multiplies (W_hn h + b_hn)
        d_az = d_z * z * (1.0 - z)
        d_gi = np.concatenate([d_ar, d_az, d_an], axis=1)  # (N, 3H)
        d_gh = np.concatenate([d_ar, d_az, d_an * r], axis=1)  # (N, 3H): gh_n is scaled by r
        d_h = d_h_new * z + d_gh @ w_hh
        return d_gi @ w_ih, (d_h,), _param_grads(d_gi, d_gh, x, h)


class LSTMCell:
    """LSTM cell in torch's form (gates i, f, g, o); the state is ``(h, c)``.

    Example:
        >>> H, E = 2, 3
        >>> params = (np.zeros((4 * H, E)), np.zeros((4 * H, H)), np.zeros(4 * H), np.zeros(4 * H))
        >>> zeros = np.zeros((1, H))
        >>> (h, c), _ = LSTMCell.forward(np.ones((1, E)), (zeros, zeros + 2.0), params)
        >>> c.tolist()  # f = 1/2 keeps half of the old cell, g = 0 adds nothing
        [[1.0, 1.0]]
    """

    num_states = 2
    gates = 4

    @staticmethod
    def forward(x: Array, state: State, params: Params) -> tuple[State, Any]:
        w_ih, w_hh, b_ih, b_hh = params
        h, c = state
        a_i, a_f, a_g, a_o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
        i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)  # (N, H) each
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        h_new = o * tanh_c
        return (h_new, c_new), (x, h, c, i, f, g, o, tanh_c)

    @staticmethod
    def backward(d_state: State, cache: Any, params: Params) -> tuple[Array, State, Params]:
        w_ih, w_hh, _, _ = params
        x, h, c, i, f, g, o, tanh_c = cache
        d_h_new, d_c_new = d_state
        d_o = d_h_new * tanh_c
        d_c = d_c_new + d_h_new * o * (1.0 - tanh_c**2)  # both paths into c'
        d_a = np.concatenate(
            [
                d_c * g * i * (1.0 - i),  # i
                d_c * c * f * (1.0 - f),  # f
                d_c * i * (1.0 - g**2),  # g
                d_o * o * (1.0 - o),  # o
            ],
            axis=1,
        )  # (N, 4H)
        return d_a @ w_ih, (d_a @ w_hh, d_c * f), _param_grads(d_a, d_a, x, h)


CELLS = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}
