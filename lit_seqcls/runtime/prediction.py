"""Writes ``predict`` results: one JSON line per input text, in input order, with class names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_seqcls.runtime.atomic import atomic_write
from lit_seqcls.runtime.distributed import gather_objects
from lit_seqcls.runtime.outputs import check_output_file, first_line_is_json_with
from lit_seqcls.validation import ConfigValueError, require_fraction


class PredictionWriter(BasePredictionWriter):
    """Collects ``predict_step`` outputs from every rank and writes them as JSON Lines.

    Each row: ``{"index", "label", "probs": {class name: probability}, "text"}``; ``text`` is
    included when the DataModule exposes ``texts(split)``. A multi-label model writes ``"labels"``
    (the names whose probability reaches the label's tuned threshold, in class order) instead of
    ``"label"``; ``min_confidence`` is single-label only. The probabilities are the model's
    calibrated ones (``softmax(logits / temperature)``); with ``min_confidence``, a text whose top
    probability is below it gets ``"label": null`` (abstained), and the validation split's coverage
    and accuracy at that threshold (kept in the checkpoint) are printed. Rows are sorted by
    ``index`` (the position in the input), whatever the bucketing order or the number of ranks. Only
    rank zero writes, to a temporary file renamed into place, so a crash never leaves half a file.

    Before predicting anything it refuses (``lit_seqcls.runtime.OutputFileError``) an output
    that is one of the run's inputs (the DataModule's ``input_files()``, checked in ``setup``;
    the checkpoint, once Lightning has restored it) or an existing file that is not an earlier
    predictions file.

    Args:
        output: file to write; default ``<trainer.log_dir>/predictions.jsonl``.
        overwrite: replace ``output`` even if it exists and is not an earlier predictions file
            (an input file is never replaced).
        min_confidence: leave a text unlabelled (``"label": null``) when its top probability is
            below this (0 to 1); pick it from the coverage / accuracy curve of the validation
            split (``<log dir>/media/calibration/`` with ``callbacks.CalibrationLogger``).
    """

    def __init__(
        self,
        output: str | None = None,
        overwrite: bool = False,
        min_confidence: float | None = None,
    ) -> None:
        super().__init__(write_interval="epoch")
        if min_confidence is not None:
            require_fraction("min_confidence", min_confidence)
        self.output = output
        self.overwrite = overwrite
        self.min_confidence = min_confidence
        self.written: Path | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "predict":
            return
        if self.min_confidence is not None and getattr(pl_module, "multi_label", False):
            raise ConfigValueError(
                "--predictions.min_confidence applies to single-label models; this model is "
                "multi-label, so each label already has its own tuned threshold (kept in the "
                "checkpoint). Leave the option out."
            )
        datamodule = getattr(trainer, "datamodule", None)  # duck-typed: any DataModule may say
        self._check(trainer, list(getattr(datamodule, "input_files", list)()))

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The checkpoint is known only now (Lightning restores it after `setup`).
        if trainer.ckpt_path:
            self._check(trainer, [trainer.ckpt_path])

    def _check(self, trainer: L.Trainer, inputs: list[str | Path]) -> None:
        check_output_file(
            self._path(trainer),
            inputs,
            overwrite=self.overwrite,
            looks_like_ours=_is_predictions_file,
            option="--predictions.output",
            overwrite_option="--predictions.overwrite true",
            kind="predictions",
            extension=".jsonl",
        )

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: list[Any],
        batch_indices: Any,
    ) -> None:
        path = self._path(trainer)
        rows = [
            row
            for batch in _flatten(predictions)
            for row in _rows(batch, pl_module.class_names, self.min_confidence)
        ]
        rows = [row for part in gather_objects(trainer, rows) for row in part]  # a collective
        if not trainer.is_global_zero:
            return
        rows.sort(key=lambda r: r["index"])
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "texts"):
            texts = datamodule.texts(datamodule.predict_split)
            for row in rows:
                row["text"] = texts[row["index"]]
        _write_jsonl_atomically(path, rows)
        self.written = path
        print(f"Wrote {len(rows):,} predictions to {path}")
        if self.min_confidence is not None and rows and "label" in rows[0]:
            abstained = sum(row["label"] is None for row in rows)
            print(
                f"{abstained:,} of {len(rows):,} texts left unlabelled (top probability below "
                f"{self.min_confidence:g}). {_validation_trade_off(pl_module, self.min_confidence)}"
            )

    def _path(self, trainer: L.Trainer) -> Path:
        # `trainer.log_dir` is a collective under DDP (a broadcast): read it on every rank.
        return Path(self.output or Path(trainer.log_dir or ".") / "predictions.jsonl")


def _is_predictions_file(path: Path) -> bool:
    """A file this writer wrote before: its first line is a row with ``index`` and ``probs``."""
    return first_line_is_json_with(path, ("index", "probs"))


def _flatten(predictions: list[Any]) -> list[dict[str, torch.Tensor]]:
    # One dataloader gives a list of batch outputs; several give a list of such lists.
    if predictions and isinstance(predictions[0], list):
        return [batch for loader in predictions for batch in loader]
    return predictions


def _rows(
    batch: dict[str, torch.Tensor], class_names: list[str], min_confidence: float | None = None
) -> list[dict[str, Any]]:
    probs = batch["probs"].cpu().tolist()
    if "labels" in batch:  # multi-label: a 0/1 row per text
        hot = batch["labels"].cpu().tolist()
        index = batch["index"].cpu().tolist() if "index" in batch else [None] * len(hot)
        return [
            {
                "index": i,
                "labels": [name for name, h in zip(class_names, hs, strict=True) if h],
                "probs": {name: round(q, 6) for name, q in zip(class_names, ps, strict=True)},
            }
            for i, hs, ps in zip(index, hot, probs, strict=True)
        ]
    preds = batch["pred"].cpu().tolist()
    index = batch["index"].cpu().tolist() if "index" in batch else [None] * len(preds)
    floor = -1.0 if min_confidence is None else min_confidence
    return [
        {
            "index": i,
            "label": class_names[p] if ps[p] >= floor else None,
            "probs": {name: round(q, 6) for name, q in zip(class_names, ps, strict=True)},
        }
        for i, p, ps in zip(index, preds, probs, strict=True)
    ]


def _validation_trade_off(pl_module: L.LightningModule, threshold: float) -> str:
    """What the threshold did on the validation split: coverage and accuracy, from the curve the
    model kept in its checkpoint (its nearest threshold at or below ``threshold``)."""
    curve = getattr(pl_module, "calibration", {}).get("val", {}).get("coverage") or []
    below = [row for row in curve if row["threshold"] <= threshold + 1e-9]
    if not below:
        return "(This checkpoint holds no validation coverage curve: it was saved before #18.)"
    row, everything = below[-1], curve[0]
    accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
    return (
        f"On the validation split, a threshold of {row['threshold']:g} kept {row['coverage']:.1%} "
        f"of the texts at accuracy {accuracy} (all texts: {everything['accuracy']:.3f})."
    )


def _write_jsonl_atomically(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
