"""The batch type every DataModule produces and the model consumes, and the collate building it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from lit_seqcls.masking import lengths_to_mask

PAD_ID = 0  # `[PAD]` is always id 0: the embedding's padding row and the collate's fill value.


@dataclasses.dataclass
class Batch:
    """A padded batch of tokenized texts.

    Attributes:
        input_ids: token ids, right-padded with ``PAD_ID``. ``(B, T)``
        lengths: real tokens per text, always ``>= 1``. ``(B,)``
        labels: class indices ``(B,)``; multi-label: 0/1 floats ``(B, C)``; ``None`` at
            predict time.
        index: row of each text in its split (to find the raw text). ``(B,)``

    Lightning moves a dataclass to the device field by field; ``pin_memory`` lets a
    ``DataLoader(pin_memory=True)`` pin it too.

    Example:
        >>> b = collate([{"input_ids": [5, 6, 7], "label": 1, "index": 0},
        ...              {"input_ids": [8], "label": 0, "index": 1}])
        >>> b.input_ids.tolist(), b.lengths.tolist(), b.labels.tolist()
        ([[5, 6, 7], [8, 0, 0]], [3, 1], [1, 0])
        >>> b.mask.tolist()
        [[True, True, True], [True, False, False]]
    """

    input_ids: Tensor
    lengths: Tensor
    labels: Tensor | None = None
    index: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        """``True`` on real tokens. ``(B, T)``"""
        return lengths_to_mask(self.lengths, self.input_ids.size(1))

    @property
    def padding_ratio(self) -> float:
        """Share of pad tokens in ``input_ids`` (see ``padding_ratio``)."""
        return padding_ratio([self.lengths.tolist()], [self.input_ids.size(1)])

    def __len__(self) -> int:
        return self.input_ids.size(0)

    def pin_memory(self) -> Batch:
        return dataclasses.replace(
            self, **{f.name: _pin(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )


def _pin(value: Tensor | None) -> Tensor | None:
    return value.pin_memory() if value is not None else None


def collate(
    examples: Sequence[dict[str, Any]], pad_to_multiple_of: int = 1, num_labels: int | None = None
) -> Batch:
    """Pad a list of tokenized examples to the longest one (rounded up to ``pad_to_multiple_of``).

    Each example is a mapping with ``input_ids`` (a non-empty sequence of ints) and optionally
    ``label`` and ``index``. Labels are kept only when every example has one. With
    ``num_labels`` (multi-label data) each ``label`` is a list of class indices and the batch's
    labels are multi-hot rows ``(B, num_labels)`` of 0.0 / 1.0.

    Example:
        >>> collate([{"input_ids": [5], "label": [0, 2]}, {"input_ids": [6], "label": []}],
        ...         num_labels=3).labels.tolist()
        [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    lengths = torch.tensor([len(ex["input_ids"]) for ex in examples], dtype=torch.long)  # (B,)
    if (lengths < 1).any():
        # The tokenization step guarantees >= 1 token; an empty row here is a bug upstream.
        raise ValueError("collate got a text with zero tokens; every text must have >= 1 token")
    width = int(lengths.max())
    width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(examples), width), PAD_ID, dtype=torch.long)  # (B, T)
    for row, ex in enumerate(examples):
        input_ids[row, : lengths[row]] = torch.as_tensor(ex["input_ids"], dtype=torch.long)
    has_labels = all(ex.get("label") is not None for ex in examples)
    if not has_labels:
        labels = None
    elif num_labels is not None:
        labels = torch.zeros(len(examples), num_labels)  # (B, C) multi-hot
        for row, ex in enumerate(examples):
            labels[row, torch.as_tensor(ex["label"], dtype=torch.long)] = 1.0
    else:
        labels = torch.tensor([ex["label"] for ex in examples], dtype=torch.long)
    has_index = all("index" in ex for ex in examples)
    index = torch.tensor([ex["index"] for ex in examples], dtype=torch.long) if has_index else None
    return Batch(input_ids=input_ids, lengths=lengths, labels=labels, index=index)


def padding_ratio(lengths: Iterable[Sequence[int]], widths: Iterable[int] | None = None) -> float:
    """Pad tokens / all tokens of padded batches: the one definition of "padding ratio".

    Batch ``i`` holds texts of ``lengths[i]`` tokens padded to ``widths[i]`` (the tensor's width),
    by default to its longest text (what ``collate`` does). It measures a sampler's plan before
    any tensor exists as well as a batch during training (``Batch.padding_ratio``).

    Example:
        >>> padding_ratio([[1, 3], [2, 2]])  # 2 of 10 tokens are padding
        0.2
        >>> collate([{"input_ids": [1] * 6}, {"input_ids": [2] * 2}], 8).padding_ratio
        0.5
    """
    widths = iter(widths) if widths is not None else None
    real = padded = 0
    for batch in lengths:
        batch = [int(n) for n in batch]
        real += sum(batch)
        padded += len(batch) * (next(widths) if widths is not None else max(batch, default=0))
    return (padded - real) / padded if padded else 0.0
