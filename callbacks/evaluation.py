"""The shared shape of the analysis callbacks: count during evaluation, report at its end."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

STAGES = ("val", "test")


class EvaluationCallback(Callback):
    """Calls ``_start`` before, ``_update`` for every batch of, and ``_finish`` after an evaluation.

    Sanity-check batches are never counted; validation is reported every ``every_n_epochs``,
    test always. ``_start`` and ``_update`` run on every rank; ``_finish`` runs on every rank too
    (it must reach the collectives that reduce the counts) and only rank zero writes.

    Args:
        every_n_epochs: report validation every this many epochs (test: always).
        stages: where to count: ``val``, ``test`` or both.
    """

    def __init__(self, every_n_epochs: int = 1, stages: list[str] | None = None) -> None:
        self.every_n_epochs = every_n_epochs
        self.stages = list(stages or STAGES)
        if unknown := set(self.stages) - set(STAGES):
            raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")

    def _start(self, pl_module: L.LightningModule) -> None:
        raise NotImplementedError

    def _update(self, outputs: dict, batch: Any) -> None:
        raise NotImplementedError

    def _finish(self, trainer: L.Trainer, stage: str) -> None:
        raise NotImplementedError

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if "val" in self.stages and not trainer.sanity_checking:
            self._update(outputs, batch)

    def on_test_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if "test" in self.stages:
            self._update(outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if "val" in self.stages and not trainer.sanity_checking and due:
            self._finish(trainer, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "test" in self.stages:
            self._finish(trainer, "test")
