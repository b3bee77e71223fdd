"""Metric names (one source of truth for logging, ``monitor``, callbacks) and the metric set."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

STAGES = ("train", "val", "test")

LOSS = "loss"
ACC = "acc"
F1 = "f1_macro"

VAL_ACC = f"val/{ACC}"  # what ModelCheckpoint and EarlyStopping monitor by default
VAL_LOSS = f"val/{LOSS}"


def metric_name(stage: str, name: str) -> str:
    """``metric_name("val", "acc") == "val/acc"``: the key under which a metric is logged."""
    return f"{stage}/{name}"


def classification_metrics(num_classes: int, stage: str) -> MetricCollection:
    """Accuracy and macro-F1, keyed ``"<stage>/acc"`` and ``"<stage>/f1_macro"``.

    torchmetrics keeps the confusion counts as states and sums them across ranks at ``compute``,
    so the epoch value under DDP is exactly the value over all ranks' samples.

    Example:
        >>> import torch
        >>> m = classification_metrics(3, "val")
        >>> m.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 1]))
        >>> {k: round(v.item(), 3) for k, v in m.compute().items()}
        {'val/acc': 0.75, 'val/f1_macro': 0.778}
    """
    return MetricCollection(
        {
            ACC: MulticlassAccuracy(num_classes, average="micro"),
            F1: MulticlassF1Score(num_classes, average="macro"),
        },
        prefix=f"{stage}/",
    )
