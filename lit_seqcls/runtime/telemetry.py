"""What bucketing buys, measured while training: padding share and real tokens per second.

``BatchTelemetry`` also checks once, at the start of ``fit``, that every DDP rank has the same
number of training batches (``check_equal_batch_counts``): a mismatch would hang, not fail.
"""

from __future__ import annotations

import time

import lightning as L

from lit_seqcls.batch import Batch
from lit_seqcls.runtime.distributed import check_equal_batch_counts


class BatchTelemetry(L.Callback):
    """Logs ``train/padding_ratio`` and ``train/tokens_per_sec`` (real tokens, not padding).

    The time of a step is measured from one batch start to the next, so it includes waiting for
    data; both values are averaged over ``log_every_n_steps`` like every step metric. The CLI adds
    this callback by default.

    The padding ratio is ``Batch.padding_ratio``: pad tokens / all tokens of the batch tensor.

    Example:
        >>> from lit_seqcls.batch import collate
        >>> collate([{"input_ids": [1, 2, 3]}, {"input_ids": [4]}]).padding_ratio  # one step's
        0.3333...
    """

    def __init__(self) -> None:
        self._last_start: float | None = None
        self._last_tokens = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        check_equal_batch_counts(trainer)  # an error now instead of a hang at epoch end

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_start = None  # the gap across validation and epoch ends is not a step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Batch, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        size = len(batch)
        pl_module.log("train/padding_ratio", batch.padding_ratio, batch_size=size)
        if self._last_start is not None and self._last_tokens:
            seconds = now - self._last_start
            pl_module.log("train/tokens_per_sec", self._last_tokens / seconds, batch_size=size)
        self._last_start, self._last_tokens = now, int(batch.lengths.sum())
