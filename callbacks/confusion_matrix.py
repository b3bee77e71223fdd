"""``ConfusionMatrixLogger``: exact (DDP-reduced) confusion matrices for validation and test."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torchmetrics.classification import MulticlassConfusionMatrix

from callbacks import figures, sinks

STAGES = ("val", "test")


class ConfusionMatrixLogger(Callback):
    """Counts every evaluated text once (across all ranks) and logs the confusion matrix.

    At the end of each validation epoch (every ``every_n_epochs``) and of testing, rank zero logs
    a W&B confusion-matrix chart with class names (``<stage>/confusion_matrix``), a row-normalised
    heatmap (``<stage>/confusion_matrix_image``) and the raw counts as a table
    (``<stage>/confusion_matrix_counts``), and writes the PNG and CSV under
    ``<log dir>/media/confusion_matrix/``. The class count comes from the DataModule (or the
    model's linked ``num_classes``), never from the labels a rank happens to see.

    Args:
        every_n_epochs: log the validation matrix every this many epochs (test: always).
        stages: where to count: ``val``, ``test`` or both.

    Example:
        >>> ConfusionMatrixLogger(every_n_epochs=2).every_n_epochs
        2
    """

    def __init__(self, every_n_epochs: int = 1, stages: list[str] | None = None) -> None:
        self.every_n_epochs = every_n_epochs
        self.stages = list(stages or STAGES)
        if unknown := set(self.stages) - set(STAGES):
            raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
        self._matrix: MulticlassConfusionMatrix | None = None
        self._class_names: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._class_names = sinks.class_names(trainer, pl_module)
        self._matrix = MulticlassConfusionMatrix(len(self._class_names))

    # ---- counting (every rank) ---------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(pl_module)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if "val" in self.stages and not trainer.sanity_checking:
            self._matrix.update(outputs["preds"], batch.labels)

    def on_test_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if "test" in self.stages:
            self._matrix.update(outputs["preds"], batch.labels)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if "val" in self.stages and not trainer.sanity_checking and due:
            self._finish(trainer, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "test" in self.stages:
            self._finish(trainer, "test")

    def _start(self, pl_module: L.LightningModule) -> None:
        self._matrix = self._matrix.to(pl_module.device)
        self._matrix.reset()

    # ---- reducing (every rank) and logging (rank zero) ----------------------------------------
    def _finish(self, trainer: L.Trainer, stage: str) -> None:
        counts = self._matrix.compute().long().cpu().numpy()  # (C, C): a collective under DDP
        self._matrix.reset()
        out_dir = sinks.local_dir(trainer, "confusion_matrix")  # a collective too
        if out_dir is None:
            return
        names = self._class_names
        epoch = sinks.evaluated_epoch(trainer)
        stem = sinks.file_stem(stage, epoch)
        header = ["true \\ predicted", *names]
        rows = [[names[i], *counts[i].tolist()] for i in range(len(names))]
        sinks.write_csv(out_dir / f"{stem}.csv", header, rows)
        title = f"Confusion matrix, {sinks.STAGE_TITLES[stage]}, epoch {epoch}"
        png = figures.save(
            figures.confusion_matrix_figure(counts, names, title), out_dir / f"{stem}.png"
        )
        if sinks.wandb_run(trainer) is None:
            return
        import wandb
        from wandb.plot.custom_chart import plot_table

        long = [
            [names[i], names[j], int(counts[i, j])]
            for i in range(len(names))
            for j in range(len(names))
        ]
        chart = plot_table(
            "wandb/confusion_matrix/v1",
            wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=long),
            {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
            {"title": title},
        )
        sinks.log_to_wandb(
            trainer,
            {
                f"{stage}/confusion_matrix": chart,
                f"{stage}/confusion_matrix_image": wandb.Image(str(png), caption=title),
                f"{stage}/confusion_matrix_counts": wandb.Table(columns=header, data=rows),
            },
        )
