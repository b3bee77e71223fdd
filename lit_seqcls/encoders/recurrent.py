"""Shared machinery of the recurrent encoders: the recurrent run, the pooled state and the init.

Two ways to keep padding out of a recurrence give the same numbers (the contract tests hold both
to 1e-5):

- ``packed``: ``pack_padded_sequence`` hands torch only the real tokens. On CUDA this is cuDNN's
  native variable-length path.
- ``masked``: run over the whole padded batch and read each text's state at its own last token.
  Left to right, padding comes after the real tokens, so it cannot reach their states. Right to
  left, each text is first reversed within its length, so its padding again comes last; the
  outputs are reversed back. A bidirectional run is therefore two one-direction runs per layer.

On CPU, ``masked`` is 20-40x faster for a training step at IMDB lengths (torch 2.13; BENCHMARKS.md,
"Recurrent run"): torch's CPU kernel for packed input steps through a shrinking batch, and its
backward pass grows faster than linearly with the text length, while the padded run uses the
fused oneDNN kernel. ``auto`` (the default) takes ``masked`` on CPU and ``packed`` elsewhere.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lit_seqcls.encoders.base import Encoder
from lit_seqcls.validation import (
    ConfigValueError,
    require_fraction,
    require_positive_int,
)

Implementation = Literal["auto", "masked", "packed"]
IMPLEMENTATIONS: tuple[str, ...] = ("auto", "masked", "packed")


def _check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        valid = ", ".join(repr(i) for i in IMPLEMENTATIONS)
        raise ConfigValueError(
            f"unknown recurrent implementation {implementation!r}; choose {valid}"
        )


def run_recurrent(
    rnn: nn.RNNBase,
    embedded: Tensor,
    lengths: Tensor,
    implementation: Implementation = "auto",
    *,
    states: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Run ``rnn`` (``batch_first``) over the real tokens of a padded batch.

    Args:
        rnn: an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM``, optionally stacked and bidirectional.
        embedded: the padded batch; values on padding are arbitrary. ``(B, T, E)``
        lengths: real tokens per text, ``>= 1``. ``(B,)``
        implementation: ``masked``, ``packed`` or ``auto`` (``masked`` on CPU, else ``packed``).
        states: also return the last layer's per-token outputs, zero on padding.

    Returns:
        The last layer's final state of each direction, concatenated ``(B, D * H)``, and the
        per-token outputs ``(B, T, D * H)`` or ``None``.

    Example:
        >>> rnn = nn.GRU(4, 3, batch_first=True, bidirectional=True)
        >>> x, lengths = torch.randn(2, 5, 4), torch.tensor([5, 2])
        >>> masked, _ = run_recurrent(rnn, x, lengths, "masked")
        >>> packed, _ = run_recurrent(rnn, x, lengths, "packed")
        >>> masked.shape, torch.allclose(masked, packed, atol=1e-6)
        (torch.Size([2, 6]), True)
    """
    if implementation == "auto":
        implementation = "masked" if embedded.device.type == "cpu" else "packed"
    if implementation == "packed":
        return _run_packed(rnn, embedded, lengths, states)
    return _run_masked(rnn, embedded, lengths, states)


def _run_packed(
    rnn: nn.RNNBase, embedded: Tensor, lengths: Tensor, states: bool
) -> tuple[Tensor, Tensor | None]:
    # Packing needs the lengths on the CPU; enforce_sorted=False keeps the caller's batch order.
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, h_n = rnn(packed)
    if isinstance(h_n, tuple):  # LSTM returns (h_n, c_n); the cell state is not a summary
        h_n = h_n[0]
    num_directions = 2 if rnn.bidirectional else 1
    last = h_n[-num_directions:]  # (D, B, H): layers are stacked layer-major, forward first
    final = last.transpose(0, 1).reshape(last.size(1), -1)  # (B, D * H)
    if not states:
        return final, None
    # total_length keeps T when the batch is padded beyond its longest text; padding is 0.
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=embedded.size(1))
    return final, output


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` steps, leaving the padding where it is.

    Its own inverse. ``(B, T, F) -> (B, T, F)``
    """
    steps = torch.arange(x.size(1), device=x.device)[None, :]  # (1, T)
    last = (lengths.to(x.device) - 1)[:, None]  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


def _one_direction(rnn: nn.RNNBase, x: Tensor, layer: int, reverse: bool) -> Tensor:
    """Outputs ``(B, T, H)`` of one layer's one direction of ``rnn``, from a zero state.

    A one-layer, one-direction module of ``rnn``'s kind, given that layer's own parameters, runs
    torch's own forward on them (public API only); gradients reach ``rnn``'s parameters. Not
    ``torch.func.functional_call``: it refuses to run under ``torch.jit.trace``, which the
    TorchScript export and ``torch.onnx.export(dynamo=False)`` use.
    """
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: 4 if rnn.bias else 2]
    # Sizes from the module, not from x: a tracer turns x.size() into a tensor.
    input_size = rnn.input_size if layer == 0 else rnn.hidden_size * 2  # bidirectional below
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    # Built on the meta device: no memory, no init. Its parameters are then replaced by rnn's
    # (nn.RNNBase keeps its weight list in step with attribute assignment).
    cell = type(rnn)(
        input_size, rnn.hidden_size, bias=rnn.bias, batch_first=True, device="meta", **extra
    ).train(rnn.training)
    for name in names:
        setattr(cell, f"{name}_l0", getattr(rnn, name + suffix))
    h0 = x.new_zeros(1, x.size(0), rnn.hidden_size)  # (1, B, H)
    return cell(x, (h0, h0) if isinstance(rnn, nn.LSTM) else h0)[0]  # (B, T, H)


def _run_masked(
    rnn: nn.RNNBase, embedded: Tensor, lengths: Tensor, states: bool
) -> tuple[Tensor, Tensor | None]:
    batch = torch.arange(embedded.size(0), device=embedded.device)  # (B,)
    last = (lengths.to(embedded.device) - 1).clamp(min=0)  # (B,)
    if not rnn.bidirectional:
        output, _ = rnn(embedded)  # (B, T, H): padding comes after each text's real tokens
    else:
        output = embedded
        for layer in range(rnn.num_layers):
            if layer > 0 and rnn.training and rnn.dropout > 0:
                output = F.dropout(output, rnn.dropout, training=True)  # as nn.RNNBase does
            forward = _one_direction(rnn, output, layer, reverse=False)  # (B, T, H)
            backward = _one_direction(rnn, _reverse_within(output, lengths), layer, reverse=True)
            output = torch.cat([forward, _reverse_within(backward, lengths)], dim=-1)
    hidden = rnn.hidden_size
    final = output[batch, last, :hidden]  # (B, H): left to right, state after the last token
    if rnn.bidirectional:
        final = torch.cat([final, output[:, 0, hidden:]], dim=-1)  # right to left: after token 0
    if not states:
        return final, None
    mask = torch.arange(output.size(1), device=output.device)[None, :] <= last[:, None]  # (B, T)
    return final, output * mask[:, :, None]  # zero (and no gradient) on padding


def build_rnn(
    rnn_type: type[nn.RNNBase],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool,
) -> nn.RNNBase:
    """A ``batch_first`` recurrent module as every recurrent encoder here uses it.

    Checks its arguments first, so every recurrent encoder fails with a ``ConfigValueError`` that
    names the bad one instead of a torch error.

    Example:
        >>> build_rnn(nn.GRU, 4, 0, 1, 0.0, False)
        Traceback (most recent call last):
            ...
        lit_seqcls.validation.ConfigValueError: hidden_size must be a positive integer, got 0
    """
    require_positive_int("input_size", input_size)
    require_positive_int("hidden_size", hidden_size)
    require_positive_int("num_layers", num_layers)
    require_fraction("dropout", dropout)
    return rnn_type(
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        # Torch applies this dropout only between layers and warns when there is one layer.
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


@torch.no_grad()
def _init_recurrent_(rnn: nn.RNNBase) -> None:
    """Initialise ``rnn`` in place, one gate block at a time.

    Torch stacks the gates of a layer into one matrix (``(G * H, ·)``, G = 1, 3 or 4); each block is
    its own linear map, so each is initialised on its own: hidden-to-hidden orthogonal (keeps the
    recurrence from shrinking or blowing up the state over long texts), input-to-hidden Xavier
    uniform, biases zero. An LSTM's forget gate (order i, f, g, o) gets bias 1 so it starts out
    remembering; only ``b_ih`` carries it, so ``b_ih + b_hh`` is exactly 1.
    """
    hidden = rnn.hidden_size
    for name, param in rnn.named_parameters():
        if name.startswith("weight_hh"):
            for block in param.split(hidden):  # (H, H) per gate
                nn.init.orthogonal_(block)
        elif name.startswith("weight_ih"):
            for block in param.split(hidden):  # (H, E) per gate
                nn.init.xavier_uniform_(block)
        else:
            nn.init.zeros_(param)
            if isinstance(rnn, nn.LSTM) and name.startswith("bias_ih"):
                param[hidden : 2 * hidden] = 1.0


class _RecurrentEncoder(Encoder):
    """A (multi-layer, optionally bidirectional) RNN pooled by its final hidden state.

    Subclasses pick the cell with ``_rnn_type``.

    Args:
        input_size: embedding size ``E``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers; has no effect with one layer.
        bidirectional: also read each text right to left and concatenate both final states.
        implementation: how padding is kept out of the recurrence: ``masked``, ``packed`` or
            ``auto`` (``masked`` on CPU, ``packed`` elsewhere); same results, different speed.
    """

    _rnn_type: ClassVar[type[nn.RNNBase]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        implementation: Implementation = "auto",
    ) -> None:
        super().__init__()
        _check_implementation(implementation)
        self.implementation = implementation
        self.rnn = build_rnn(
            self._rnn_type, input_size, hidden_size, num_layers, dropout, bidirectional
        )
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_recurrent_(self.rnn)

    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        # The mask is not needed: run_recurrent reads each text's state at its own last token.
        final, _ = run_recurrent(self.rnn, embedded, lengths, self.implementation)
        return final, None  # (B, D * H)
