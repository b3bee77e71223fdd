"""Metric names (one source of truth for logging, ``monitor``, callbacks), the metric set, and
the length buckets of "accuracy by text length"."""

from __future__ import annotations

from collections.abc import Mapping

from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
)

STAGES = ("train", "val", "test")
# The model's `task`: one class per text (softmax), or a set of labels (sigmoid per label).
SINGLE_LABEL, MULTI_LABEL = "single_label", "multi_label"
TASKS = (SINGLE_LABEL, MULTI_LABEL)

LOSS = "loss"
ACC = "acc"
F1 = "f1_macro"
F1_MICRO = "f1_micro"  # multi-label only (as MAP)
MAP = "map"  # mean average precision over the labels
ECE = "ece"  # expected calibration error (15 bins) of the calibrated probabilities
ECE_RAW = "ece_raw"  # ... of softmax(logits), before temperature scaling
TEMPERATURE = "temperature"

# The logged keys read elsewhere (checkpoint monitor, scheduler, compare's reports).
VAL_ACC = f"val/{ACC}"  # what ModelCheckpoint and EarlyStopping monitor by default
VAL_LOSS = f"val/{LOSS}"
TEST_ACC = f"test/{ACC}"
TEST_F1 = f"test/{F1}"


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


def multilabel_metrics(num_labels: int, stage: str) -> MetricCollection:
    """Multi-label metrics of 0/1 predictions ``(B, C)`` against 0/1 targets: ``acc`` is subset
    accuracy (every label of a text right; so ``val/acc`` stays the checkpoint monitor),
    ``f1_macro`` and ``f1_micro``. The model predicts at its tuned per-label thresholds.

    Example:
        >>> import torch
        >>> m = multilabel_metrics(2, "val")
        >>> m.update(torch.tensor([[1, 0], [1, 1]]), torch.tensor([[1, 0], [1, 0]]))
        >>> {k: round(v.item(), 3) for k, v in sorted(m.compute().items())}
        {'val/acc': 0.5, 'val/f1_macro': 0.5, 'val/f1_micro': 0.8}
    """
    return MetricCollection(
        {
            ACC: MultilabelExactMatch(num_labels),
            F1: MultilabelF1Score(num_labels, average="macro"),
            F1_MICRO: MultilabelF1Score(num_labels, average="micro"),
        },
        prefix=f"{stage}/",
    )


def map_metric(num_labels: int, stage: str) -> MetricCollection:
    """Multi-label mean average precision (macro over labels) of probabilities ``(B, C)``,
    keyed ``"<stage>/map"``; a label without a positive text counts 0 (torchmetrics)."""
    return MetricCollection(
        {MAP: MultilabelAveragePrecision(num_labels, average="macro")}, prefix=f"{stage}/"
    )


def length_buckets(
    totals: Mapping[int, int], correct: Mapping[int, int], num_buckets: int
) -> list[tuple[int, int, int, int]]:
    """``(min_len, max_len, n, n_correct)`` per bucket of about ``len / num_buckets`` texts.

    The one definition of the buckets of "accuracy by length" (``LengthAnalysisLogger`` and
    ``lit-seqcls compare``): ``totals[n]`` texts of ``n`` tokens, ``correct[n]`` of them right;
    in length order, a bucket closes once the texts so far cross the next multiple of
    ``len / num_buckets``. Buckets never split one length, so there may be fewer.

    Example:
        >>> length_buckets({3: 2, 5: 1, 9: 1}, {3: 2, 9: 1}, 2)
        [(3, 3, 2, 2), (5, 9, 2, 1)]
    """
    lengths = sorted(totals)
    total = sum(totals.values())
    buckets, lo, n, ok, done = [], None, 0, 0, 0  # done: texts in closed buckets
    for i, length in enumerate(lengths):
        lo = length if lo is None else lo
        n, ok = n + totals[length], ok + correct.get(length, 0)
        if (done + n) * num_buckets // total > done * num_buckets // total or i == len(lengths) - 1:
            buckets.append((lo, length, n, ok))
            lo, done, n, ok = None, done + n, 0, 0
    return buckets
