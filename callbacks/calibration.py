"""``CalibrationLogger``: reliability diagrams and the coverage / accuracy curve (#18)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from callbacks import figures, sinks


class CalibrationLogger(Callback):
    """Draws what the model's temperature scaling did, after each validation epoch and testing.

    The model (``SequenceClassifier``) gathers every rank's logits, fits the temperature on
    validation and keeps a report per stage (``pl_module.calibration``: ECE and bins before and
    after, the coverage curve); this callback only writes it, on rank zero: a reliability diagram
    before/after (``<stage>/reliability_diagram``), the coverage / accuracy curve of abstaining
    below a confidence threshold (``<stage>/coverage_accuracy``, a table and a picture: pick
    ``predict --predictions.min_confidence`` from it), and PNG + CSV copies under
    ``<log dir>/media/calibration/``.

    Args:
        every_n_epochs: draw the validation report every this many epochs (test: always).

    Example:
        >>> CalibrationLogger(every_n_epochs=2).every_n_epochs
        2
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if not trainer.sanity_checking and due:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module, "test")

    def _write(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        out_dir = sinks.local_dir(trainer, "calibration")  # a collective: every rank calls it
        report: dict[str, Any] | None = getattr(pl_module, "calibration", {}).get(stage)
        if out_dir is None or report is None:
            return
        epoch = sinks.evaluated_epoch(trainer)
        stem = sinks.file_stem(stage, epoch)
        split = sinks.STAGE_SPLITS[stage]
        columns = ["lo", "hi", "count", "confidence", "accuracy"]
        header = [*columns, *(f"{c}_calibrated" for c in columns[2:])]
        rows = [
            [*(b[c] for c in columns), *(a[c] for c in columns[2:])]
            for b, a in zip(report["bins_raw"], report["bins"], strict=True)
        ]
        sinks.write_csv(out_dir / f"{stem}_reliability.csv", header, rows)
        title = (
            f"Reliability, {split}, epoch {epoch}: {report['count']:,} texts, "
            f"T = {report['temperature']:.3f}"
        )
        diagram = figures.reliability_figure(
            report["bins_raw"],
            report["bins"],
            (report["ece_raw"], report["ece"]),
            report["temperature"],
            title,
        )
        png = figures.save(diagram, out_dir / f"{stem}_reliability.png")
        curve = report["coverage"]
        if not curve:  # multi-label: one binary prediction per text and label, no abstaining
            if sinks.wandb_run(trainer) is not None:
                import wandb

                image = wandb.Image(str(png), caption=title)
                sinks.log_to_wandb(trainer, {f"{stage}/reliability_diagram": image})
            return
        curve_header = ["min_confidence", "coverage", "accuracy"]
        curve_rows = [[r["threshold"], r["coverage"], r["accuracy"]] for r in curve]
        sinks.write_csv(out_dir / f"{stem}_coverage.csv", curve_header, curve_rows)
        curve_title = f"Coverage / accuracy, {split}, epoch {epoch}"
        curve_png = figures.save(
            figures.coverage_figure(curve, curve_title), out_dir / f"{stem}_coverage.png"
        )
        if sinks.wandb_run(trainer) is None:
            return
        import wandb

        sinks.log_to_wandb(
            trainer,
            {
                f"{stage}/reliability_diagram": wandb.Image(str(png), caption=title),
                f"{stage}/coverage_accuracy": wandb.Table(columns=curve_header, data=curve_rows),
                f"{stage}/coverage_accuracy_image": wandb.Image(
                    str(curve_png), caption=curve_title
                ),
            },
        )
