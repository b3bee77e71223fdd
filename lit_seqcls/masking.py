"""Masks built from per-text lengths."""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask that is ``True`` on real tokens and ``False`` on padding.

    Args:
        lengths: number of real tokens per text. ``(B,)``
        max_len: width ``T`` of the padded batch; defaults to ``lengths.max()``. It may be larger
            than the longest text (batches padded to a multiple of 8).

    Returns:
        ``mask[b, t] = t < lengths[b]``, on the device of ``lengths``. ``(B, T)``

    Example:
        >>> lengths_to_mask(torch.tensor([3, 1]), max_len=4).tolist()
        [[True, True, True, False], [True, False, False, False]]
    """
    if max_len is None:
        max_len = int(lengths.max())
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return positions[None, :] < lengths[:, None]  # (B, T)
