"""Shared machinery of the recurrent encoders: the packed run, the pooled state and the init."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lit_seqcls.encoders.base import Encoder


def _run_packed(
    rnn: nn.RNNBase, embedded: Tensor, lengths: Tensor
) -> tuple[PackedSequence, Tensor]:
    """Run ``rnn`` over the real tokens only, so padding never enters the recurrence.

    Returns the packed per-step outputs and the final hidden state ``h_n`` of every layer and
    direction, ``(num_layers * D, B, H)``, in the original batch order.
    """
    # Packing needs the lengths on the CPU; enforce_sorted=False keeps the caller's batch order.
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, hidden = rnn(packed)
    if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n); the cell state is not a summary
        hidden = hidden[0]
    return output, hidden


def _final_state(h_n: Tensor, num_directions: int) -> Tensor:
    """Concatenate the last layer's final state of each direction: ``(L*D, B, H) -> (B, D*H)``."""
    last = h_n[-num_directions:]  # (D, B, H): layers are stacked layer-major, forward first
    return last.transpose(0, 1).reshape(last.size(1), -1)  # (B, D * H)


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
    """

    _rnn_type: ClassVar[type[nn.RNNBase]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.num_directions = 2 if bidirectional else 1
        self.rnn = self._rnn_type(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # Torch applies this dropout only between layers and warns when there is one layer.
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.output_dim = hidden_size * self.num_directions
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_recurrent_(self.rnn)

    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        # The mask is not needed: packing already hides the padding from the recurrence.
        _, h_n = _run_packed(self.rnn, embedded, lengths)  # (L * D, B, H)
        return _final_state(h_n, self.num_directions), None  # (B, D * H)
