"""``MisclassifiedLogger``: the test texts the model got wrong with the highest confidence."""

from __future__ import annotations

import heapq
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from callbacks import sinks

Error = tuple[float, int, int, int, float]  # (confidence, index, true, predicted, p(true))


class MisclassifiedLogger(Callback):
    """Keeps the ``top_k`` most confident errors of the test run (over all ranks) and logs them.

    Logs a W&B table ``test/misclassified`` (index, text, true and predicted label, confidence,
    probability of the true class) and writes the CSV under ``<log dir>/media/misclassified/``.
    Each rank keeps only its own best ``top_k``, so memory does not grow with the test set.

    Args:
        top_k: how many errors to keep.
        max_chars: texts longer than this are cut (with ``…``) in the table.

    Example:
        >>> MisclassifiedLogger(top_k=5).top_k
        5
    """

    def __init__(self, top_k: int = 50, max_chars: int = 1000) -> None:
        self.top_k = top_k
        self.max_chars = max_chars
        self._errors: list[Error] = []  # a min-heap on confidence

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._errors = []

    def on_test_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx=0
    ) -> None:
        if outputs["preds"].ndim == 2:  # multi-label
            self._multi_label_errors(pl_module, outputs, batch)
            return
        probs = outputs["logits"].float().softmax(dim=-1)  # (B, C)
        wrong = (outputs["preds"] != batch.labels).nonzero().flatten().tolist()
        for row in wrong:
            label, pred = int(batch.labels[row]), int(outputs["preds"][row])
            error = (
                float(probs[row, pred]),
                int(batch.index[row]),
                label,
                pred,
                float(probs[row, label]),
            )
            if len(self._errors) < self.top_k:
                heapq.heappush(self._errors, error)
            else:
                heapq.heappushpop(self._errors, error)

    def _multi_label_errors(self, pl_module: Any, outputs: Any, batch: Any) -> None:
        """A text with any label wrong; its confidence is the largest probability of a wrongly
        predicted label or 1 - that of a missed one; true and predicted are label sets."""
        probs = outputs["logits"].float().sigmoid()  # (B, C)
        labels, preds = batch.labels.long(), outputs["preds"].long()
        names = list(pl_module.class_names)
        for row in (preds != labels).any(dim=1).nonzero().flatten().tolist():
            wrong = (preds[row] != labels[row]).nonzero().flatten()
            p = probs[row, wrong]
            conf = float(torch.where(preds[row, wrong] == 1, p, 1 - p).max())
            true = "|".join(n for n, v in zip(names, labels[row].tolist(), strict=True) if v)
            pred = "|".join(n for n, v in zip(names, preds[row].tolist(), strict=True) if v)
            error = (conf, int(batch.index[row]), true, pred, float("nan"))
            if len(self._errors) < self.top_k:
                heapq.heappush(self._errors, error)
            else:
                heapq.heappushpop(self._errors, error)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        parts = sinks.gather_objects(trainer, self._errors)  # a collective
        out_dir = sinks.local_dir(trainer, "misclassified")  # a collective
        if out_dir is None:
            return
        worst = heapq.nlargest(self.top_k, (e for part in parts for e in part))
        names = sinks.class_names(trainer, pl_module)
        texts = sinks.texts(trainer, "test")
        header = ["index", "text", "true", "predicted", "confidence", "p_true"]
        rows = [
            [index, self._text(texts, index), _name(names, label), _name(names, pred), conf, p_true]
            for conf, index, label, pred, p_true in worst
        ]
        sinks.write_csv(
            out_dir / f"{sinks.file_stem('test', sinks.evaluated_epoch(trainer))}.csv", header, rows
        )
        if sinks.wandb_run(trainer) is not None:
            import wandb

            sinks.log_to_wandb(
                trainer, {"test/misclassified": wandb.Table(columns=header, data=rows)}
            )

    def _text(self, texts: list[str] | None, index: int) -> str:
        if texts is None:
            return ""
        text = texts[index]
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1] + "…"


def _name(names: list[str], label: int | str) -> str:
    return names[label] if isinstance(label, int) else label  # multi-label: a joined label set
