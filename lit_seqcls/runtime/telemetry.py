"""What bucketing buys, measured while training: padding share and real tokens per second."""

from __future__ import annotations

import time

import lightning as L
import torch

from lit_seqcls.batch import Batch


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


def check_equal_batch_counts(trainer: L.Trainer) -> None:
    """Fail on every rank with a clear message if the ranks would run different step counts.

    A rank that runs out of batches first leaves the others waiting in a gradient all-reduce
    until the process-group timeout (30 minutes by default): one cheap collective at the start of
    fit turns that hang into an error.
    """
    if trainer.world_size < 2:
        return
    count = torch.tensor([float(trainer.num_training_batches)], device=trainer.strategy.root_device)
    counts = trainer.strategy.all_gather(count).flatten().tolist()  # a collective: every rank
    if len(set(counts)) > 1:
        per_rank = ", ".join(f"rank {r}: {c:g}" for r, c in enumerate(counts))
        raise RuntimeError(
            f"The ranks have different numbers of training batches ({per_rank}), so DDP would "
            "hang at the end of the epoch. Use the package's DataModules (their batch sampler "
            "evens the counts out), or make your train_dataloader give every rank the same "
            "number of batches."
        )
