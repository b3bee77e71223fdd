"""(Bi)LSTM encoder pooled by additive (Bahdanau-style) attention."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_seqcls.encoders.base import Encoder
from lit_seqcls.encoders.recurrent import (
    Implementation,
    _check_implementation,
    _init_recurrent_,
    build_rnn,
    run_recurrent,
)
from lit_seqcls.validation import require_positive_int


class AdditiveAttention(nn.Module):
    """Attention pooling ``score_t = v^T tanh(W h_t + b)``, softmax over the real tokens.

    Args:
        input_dim: size ``D`` of each state ``h_t``.
        attention_dim: size of the hidden layer ``W h_t + b``.

    Example:
        >>> attention = AdditiveAttention(6, 4)
        >>> mask = torch.tensor([[True, True, False]])
        >>> pooled, weights = attention(torch.randn(1, 3, 6), mask)
        >>> pooled.shape, weights[0, 2].item(), round(weights.sum().item(), 6)
        (torch.Size([1, 6]), 0.0, 1.0)
    """

    def __init__(self, input_dim: int, attention_dim: int) -> None:
        super().__init__()
        require_positive_int("input_dim", input_dim)
        require_positive_int("attention_dim", attention_dim)
        self.proj = nn.Linear(input_dim, attention_dim)  # W, b
        self.score = nn.Linear(attention_dim, 1, bias=False)  # v
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Xavier keeps tanh's input in its linear range at the start, so scores start near uniform.
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.xavier_uniform_(self.score.weight)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool ``states`` ``(B, T, D)`` over the positions where ``mask`` ``(B, T)`` is True.

        Every row needs at least one True (``lengths >= 1``), else its weights are NaN.
        Returns the pooled states ``(B, D)`` and the weights ``(B, T)``, exactly 0 on padding.
        """
        scores = self.score(torch.tanh(self.proj(states))).squeeze(-1)  # (B, T)
        # -inf rather than a large negative number: exp gives exactly 0, so padding gets no weight
        # and the real tokens' weights are the same however far the batch is padded.
        scores = scores.masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=-1)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, D): sum_t a_t h_t
        return pooled, weights


class AttentionEncoder(Encoder):
    """(Bi)LSTM whose per-token states are pooled by additive attention.

    The attention weights come back as the second output, e.g. for plotting which words decided.

    Args:
        input_size: embedding size ``E``.
        hidden_size: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        dropout: dropout between stacked LSTM layers; has no effect with one layer.
        bidirectional: run the LSTM in both directions; ``output_dim`` doubles.
        attention_dim: hidden size of the attention scorer (``>= 1``); defaults to the LSTM output
            size.
        implementation: ``masked``, ``packed`` or ``auto`` (``masked`` on CPU, ``packed``
            elsewhere): how padding is kept out of the LSTM; same results, different speed.

    Example:
        >>> from lit_seqcls.masking import lengths_to_mask
        >>> encoder = AttentionEncoder(8, hidden_size=16)
        >>> lengths = torch.tensor([5, 2])
        >>> pooled, weights = encoder(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths))
        >>> pooled.shape, encoder.output_dim, weights.shape
        (torch.Size([2, 32]), 32, torch.Size([2, 5]))
        >>> weights[1].tolist()[2:], round(weights[1].sum().item(), 6)
        ([0.0, 0.0, 0.0], 1.0)
    """

    returns_attention = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = True,
        attention_dim: int | None = None,
        implementation: Implementation = "auto",
    ) -> None:
        super().__init__()
        _check_implementation(implementation)
        if attention_dim is not None:
            require_positive_int("attention_dim", attention_dim)
        self.implementation = implementation
        self.lstm = build_rnn(nn.LSTM, input_size, hidden_size, num_layers, dropout, bidirectional)
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.attention = AdditiveAttention(self.output_dim, attention_dim or self.output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_recurrent_(self.lstm)
        self.attention.reset_parameters()

    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        _, states = run_recurrent(
            self.lstm, embedded, lengths, self.implementation, states=True
        )  # (B, T, D * H), zero on padding
        return self.attention(states, mask)  # (B, D * H), (B, T)
