"""Bidirectional LSTM encoder."""

from __future__ import annotations

from lit_seqcls.encoders.lstm import LSTMEncoder
from lit_seqcls.encoders.recurrent import Implementation


class BiLSTMEncoder(LSTMEncoder):
    """Bidirectional LSTM: the final states of both directions, concatenated.

    Args:
        input_size: embedding size ``E``.
        hidden_size: hidden units per direction; ``output_dim = 2 * hidden_size``.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers; has no effect with one layer.
        implementation: ``masked``, ``packed`` or ``auto``; see ``LSTMEncoder``.

    Example:
        >>> import torch
        >>> from lit_seqcls.masking import lengths_to_mask
        >>> encoder = BiLSTMEncoder(8, hidden_size=16)
        >>> lengths = torch.tensor([5, 2])
        >>> pooled, attention = encoder(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths))
        >>> pooled.shape, encoder.output_dim, attention
        (torch.Size([2, 32]), 32, None)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        implementation: Implementation = "auto",
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, dropout, True, implementation=implementation
        )
