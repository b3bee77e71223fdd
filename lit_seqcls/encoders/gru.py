"""GRU encoder."""

from __future__ import annotations

from torch import nn

from lit_seqcls.encoders.recurrent import _RecurrentEncoder


class GRUEncoder(_RecurrentEncoder):
    """GRU; the pooled vector is the last layer's final hidden state.

    Args:
        input_size: embedding size ``E``.
        hidden_size: hidden units per direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers; has no effect with one layer.
        bidirectional: also read each text right to left; ``output_dim`` doubles.

    Example:
        >>> import torch
        >>> from lit_seqcls.masking import lengths_to_mask
        >>> encoder = GRUEncoder(8, hidden_size=16)
        >>> lengths = torch.tensor([5, 2])
        >>> pooled, attention = encoder(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths))
        >>> pooled.shape, encoder.output_dim, attention
        (torch.Size([2, 16]), 16, None)
    """

    _rnn_type = nn.GRU
