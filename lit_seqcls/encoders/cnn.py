"""Convolutional encoder of Kim (2014): parallel convolutions, ReLU, max over time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seqcls.encoders.base import Encoder
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.validation import require_positive_int, require_positive_ints


class CNNEncoder(Encoder):
    """One 1-D convolution per kernel width over the embeddings, each max-pooled over time.

    A window counts only if it lies inside its text. A text shorter than a kernel is read as if
    right-padded with zeros, and only its window at position 0 counts, so a one-token text works and
    gives the same result alone or in a batch. (Kim's dropout before the classifier is the model's.)

    Args:
        input_size: embedding size ``E``.
        num_filters: feature maps per kernel width (``>= 1``).
        kernel_sizes: one or more window widths in tokens, each ``>= 1``;
            ``output_dim = num_filters * len(kernel_sizes)``.

    Example:
        >>> from lit_seqcls.masking import lengths_to_mask
        >>> encoder = CNNEncoder(8, num_filters=4, kernel_sizes=(2, 3))
        >>> lengths = torch.tensor([5, 1])
        >>> pooled, attention = encoder(torch.randn(2, 5, 8), lengths, lengths_to_mask(lengths))
        >>> pooled.shape, encoder.output_dim, attention
        (torch.Size([2, 8]), 8, None)
    """

    def __init__(
        self, input_size: int, num_filters: int = 100, kernel_sizes: tuple[int, ...] = (3, 4, 5)
    ) -> None:
        super().__init__()
        require_positive_int("input_size", input_size)
        require_positive_int("num_filters", num_filters)
        self.kernel_sizes = require_positive_ints("kernel_sizes", kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(input_size, num_filters, k) for k in self.kernel_sizes)
        self.output_dim = num_filters * len(self.kernel_sizes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            # Kaiming (He) uniform with the ReLU gain, not Xavier: ReLU drops half of each feature
            # map, and the sqrt(2) gain makes up for it, so feature scales do not shrink.
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(
        self, embedded: Tensor, lengths: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        # Windows reaching past a short text must see zeros, whatever the caller put in the padding.
        x = embedded.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, E)
        widest = max(self.kernel_sizes)
        if x.size(1) < widest:  # e.g. a one-token text alone: give every kernel one window
            x = F.pad(x, (0, 0, 0, widest - x.size(1)))  # (B, K, E)
        x = x.transpose(1, 2)  # (B, E, T'), channels first for Conv1d
        lengths = lengths.to(x.device)
        pooled = []
        for conv, width in zip(self.convs, self.kernel_sizes, strict=True):
            features = conv(x)  # (B, F, T' - k + 1): window p covers tokens p .. p + k - 1
            # Windows fully inside the text, or just window 0 when the text is shorter than k.
            windows = (lengths - width + 1).clamp(min=1)  # (B,)
            valid = lengths_to_mask(windows, features.size(-1))  # (B, T' - k + 1)
            features = features.masked_fill(~valid.unsqueeze(1), float("-inf"))
            pooled.append(features.amax(dim=-1))  # (B, F)
        # ReLU after the max equals max after ReLU (ReLU is monotonic) and touches B*F values only.
        return torch.relu(torch.cat(pooled, dim=-1)), None  # (B, F * len(kernel_sizes))
