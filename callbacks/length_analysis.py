"""``LengthAnalysisLogger``: accuracy per text-length bucket (the classic length figure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import lightning as L
import numpy as np

from callbacks import figures, sinks
from callbacks.evaluation import EvaluationCallback
from lit_seqcls.metrics import length_buckets


class LengthAnalysisLogger(EvaluationCallback):
    """Accuracy by text length (in tokens) at the end of validation and testing, across ranks.

    Logs a W&B bar chart (``<stage>/accuracy_by_length``) and table
    (``<stage>/accuracy_by_length_table``) and writes PNG and CSV under
    ``<log dir>/media/accuracy_by_length/``. Buckets hold about equally many texts
    (``lit_seqcls.metrics.length_buckets``, the definition ``lit-seqcls compare`` uses too).

    Args:
        num_buckets: number of length buckets.
        every_n_epochs: log the validation figure every this many epochs (test: always).
        stages: ``val``, ``test`` or both.

    Example:
        >>> LengthAnalysisLogger(num_buckets=5).num_buckets
        5
    """

    def __init__(
        self, num_buckets: int = 8, every_n_epochs: int = 1, stages: list[str] | None = None
    ) -> None:
        super().__init__(every_n_epochs, stages)
        self.num_buckets = num_buckets
        self._totals: Counter[int] = Counter()
        self._correct: Counter[int] = Counter()

    def _start(self, pl_module: L.LightningModule) -> None:
        self._totals, self._correct = Counter(), Counter()

    def _update(self, outputs: dict, batch: Any) -> None:
        hits = outputs["preds"] == batch.labels  # (B,); multi-label (B, C): every label right
        hits = (hits.all(dim=-1) if hits.ndim == 2 else hits).tolist()
        for length, hit in zip(batch.lengths.tolist(), hits, strict=True):
            self._totals[length] += 1
            self._correct[length] += int(hit)

    def _finish(self, trainer: L.Trainer, stage: str) -> None:
        totals, correct = Counter(), Counter()
        for part_totals, part_correct in sinks.gather_objects(
            trainer, (self._totals, self._correct)
        ):
            totals.update(part_totals)
            correct.update(part_correct)
        out_dir = sinks.local_dir(trainer, "accuracy_by_length")  # a collective
        if out_dir is None or not totals:
            return
        buckets = length_buckets(totals, correct, self.num_buckets)
        labels = [f"{lo}–{hi}" if lo != hi else f"{lo}" for lo, hi, _, _ in buckets]
        accuracy = [ok / n for _, _, n, ok in buckets]
        counts = [n for _, _, n, _ in buckets]
        header = ["length", "min_length", "max_length", "texts", "correct", "accuracy"]
        rows = [[lab, *b, acc] for lab, b, acc in zip(labels, buckets, accuracy, strict=True)]
        epoch = sinks.evaluated_epoch(trainer)
        stem = sinks.file_stem(stage, epoch)
        sinks.write_csv(out_dir / f"{stem}.csv", header, rows)
        overall = float(np.sum([b[3] for b in buckets]) / np.sum(counts))
        title = (
            f"Accuracy by text length, {sinks.STAGE_SPLITS[stage]}, epoch "
            f"{epoch} (overall {overall:.1%})"
        )
        fig = figures.length_accuracy_figure(labels, accuracy, counts, title)
        png = figures.save(fig, out_dir / f"{stem}.png")
        if sinks.wandb_run(trainer) is None:
            return
        import wandb

        table = wandb.Table(columns=header, data=rows)
        sinks.log_to_wandb(
            trainer,
            {
                f"{stage}/accuracy_by_length": wandb.plot.bar(
                    table, "length", "accuracy", title=title
                ),
                f"{stage}/accuracy_by_length_table": table,
                f"{stage}/accuracy_by_length_image": wandb.Image(str(png), caption=title),
            },
        )
