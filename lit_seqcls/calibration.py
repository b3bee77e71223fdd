"""Beyond argmax: class weights, temperature scaling, calibration error, abstaining.

Plain tensor maths the system (``SequenceClassifier``) applies; nothing here knows Lightning.

- ``class_weights``: the cross-entropy weight of each class, from ``"auto"`` (inverse class
  frequency of the training split, ``N / (C * n_c)``, as scikit-learn's ``"balanced"``), ``"none"``
  or ``{class name: weight}``.
- ``fit_temperature``: the ``T > 0`` minimising the negative log-likelihood of ``logits / T``
  (Guo et al. 2017). The NLL is convex in ``1 / T``, so its derivative is increasing and a
  bisection finds the minimum exactly and deterministically (the same numbers give the same
  ``T`` on every rank; no optimizer state, no learning rate).
- ``reliability``: 15 equal-width confidence bins, the expected calibration error (ECE, top-label,
  L1, binned as torchmetrics does) and the rows of a reliability diagram.
- ``coverage_curve``: the share of texts kept and their accuracy when texts whose top probability
  is below a threshold are left unlabelled (``predict --predictions.min_confidence``).
- ``fit_thresholds``: per-label decision thresholds maximising F1 (multi-label).
- Multi-label: ``pos_weights`` (``class_weights: auto``: negatives / positives per label),
  ``fit_sigmoid_temperature`` (one temperature over every label's logit: the binary NLL of
  ``sigmoid(z / T)`` is the two-class softmax NLL of ``[0, z] / T``, so ``fit_temperature``
  fits it) and ``multilabel_calibration_report`` (ECE over all text-label pairs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from lit_seqcls.validation import ConfigValueError

__all__ = [
    "COVERAGE_THRESHOLDS",
    "ECE_BINS",
    "ClassWeights",
    "calibration_report",
    "class_weights",
    "coverage_curve",
    "fit_sigmoid_temperature",
    "fit_temperature",
    "fit_thresholds",
    "multilabel_calibration_report",
    "pos_weights",
    "reliability",
]

ClassWeights = Literal["auto", "none"] | dict[str, float]
ECE_BINS = 15
# The fitted temperature stays within [1/100, 100]: a model at chance would push it to infinity.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
# 0, then every 0.05 to 0.45 (many classes), then every 0.01 from 0.50 to 0.99.
COVERAGE_THRESHOLDS = (
    0.0,
    *(round(0.05 * i, 2) for i in range(1, 10)),
    *(round(0.5 + 0.01 * i, 2) for i in range(50)),
)


def class_weights(
    setting: ClassWeights | None,
    class_names: Sequence[str],
    class_counts: Mapping[str, int] | None,
) -> Tensor | None:
    """The loss weight of each class ``(C,)`` in label order, or ``None`` for plain cross-entropy.

    ``"auto"``: ``N / (C * n_c)`` from ``class_counts`` (the training split's label counts); a
    class absent from training gets weight 0 (it is never a target, so its weight is unused).
    A dictionary names some classes; the others keep weight 1.

    Example:
        >>> class_weights("auto", ["neg", "pos"], {"neg": 30, "pos": 10}).tolist()
        [0.6666..., 2.0]
        >>> class_weights({"pos": 3.0}, ["neg", "pos"], None).tolist()
        [1.0, 3.0]
    """
    if setting is None or setting == "none":
        return None
    if setting == "auto":
        if class_counts is None:
            return None  # resolved later, from the DataModule (see SequenceClassifier.setup)
        if unknown := sorted(set(class_counts) - set(class_names)):
            raise ConfigValueError(
                f"class_counts names classes the model does not have: {unknown[:5]}; the classes "
                f"are {list(class_names)[:20]}"
            )
        counts = torch.tensor([float(class_counts.get(n, 0)) for n in class_names])  # (C,)
        total = counts.sum()
        if total <= 0:
            raise ConfigValueError("class_weights: auto needs class_counts with at least one text")
        weights = total / (len(class_names) * counts.clamp(min=1.0))
        return torch.where(counts > 0, weights, torch.zeros_like(weights))
    if not isinstance(setting, Mapping):
        raise ConfigValueError(
            f"class_weights must be 'auto', 'none' or {{class name: weight}}, got {setting!r}"
        )
    if unknown := sorted(set(setting) - set(class_names)):
        raise ConfigValueError(
            f"class_weights names unknown classes {unknown[:5]}; the classes are "
            f"{list(class_names)[:20]}. Use these names (or `auto`)."
        )
    bad = {k: v for k, v in setting.items() if not (isinstance(v, int | float) and v >= 0)}
    if bad or not math.isfinite(sum(float(v) for v in setting.values())):
        raise ConfigValueError(f"class_weights must be finite numbers >= 0, got {bad or setting}")
    return torch.tensor([float(setting.get(n, 1.0)) for n in class_names])


def pos_weights(class_names: Sequence[str], counts: Mapping[str, int], total: int) -> Tensor:
    """Multi-label ``pos_weight`` ``(C,)``: negatives / positives of each label in the training
    split (``total`` texts, ``counts[name]`` of them with the label); 1 for a label never seen.

    Example:
        >>> pos_weights(["net", "web"], {"net": 10, "web": 40}, 50).tolist()
        [4.0, 0.25]
    """
    n = torch.tensor([float(counts.get(name, 0)) for name in class_names])  # (C,)
    weights = (float(total) - n) / n.clamp(min=1.0)
    return torch.where(n > 0, weights, torch.ones_like(weights))


def fit_sigmoid_temperature(logits: Tensor, targets: Tensor) -> float:
    """One temperature for all labels: ``T`` minimising the mean binary NLL of
    ``sigmoid(logits / T)`` against 0/1 ``targets``, both ``(N, C)``.

    Example (3 of 4 texts positive, all with logit 1: ``sigmoid(1/T) = 3/4``):
        >>> t = fit_sigmoid_temperature(torch.ones(4, 1), torch.tensor([[1], [1], [1], [0]]))
        >>> round(t, 6), round(1 / math.log(3), 6)
        (0.910239, 0.910239)
    """
    z = logits.detach().double().reshape(-1, 1)  # (N*C, 1)
    pairs = torch.cat([torch.zeros_like(z), z], dim=1)  # softmax([0, z]) = [1 - p, p]
    return fit_temperature(pairs, targets.detach().reshape(-1).long())


def multilabel_calibration_report(
    logits: Tensor, targets: Tensor, temperature: float, thresholds: Tensor
) -> dict[str, Any]:
    """Plain data for logs and the checkpoint: the ECE over all text-label pairs (each a binary
    prediction) before and after ``T``, the per-label thresholds and F1 at them; no coverage
    curve (abstaining is single-label)."""
    z = logits.detach().float()
    targets = targets.detach().long().to(z.device)
    raw, calibrated = z.sigmoid(), (z / temperature).sigmoid()  # (N, C)

    def pairs(p: Tensor) -> Tensor:
        q = p.reshape(-1, 1)
        return torch.cat([1 - q, q], dim=1)

    ece_raw, bins_raw = reliability(pairs(raw), targets.reshape(-1))
    ece, bins = reliability(pairs(calibrated), targets.reshape(-1))
    predicted = (calibrated >= thresholds.to(z.device)).long()
    tp = (predicted * targets).sum(0).double()
    f1 = 2 * tp / (predicted.sum(0) + targets.sum(0)).double().clamp(min=1)
    return {
        "task": "multi_label",
        "temperature": float(temperature),
        "count": len(z),
        "accuracy": float((predicted == targets).all(dim=1).double().mean()) if len(z) else 0.0,
        "ece_raw": ece_raw,
        "ece": ece,
        "bins_raw": bins_raw,
        "bins": bins,
        "thresholds": [round(float(t), 6) for t in thresholds],
        "f1": [float(v) for v in f1],
        "coverage": [],
    }


def fit_temperature(logits: Tensor, labels: Tensor, iterations: int = 60) -> float:
    """The temperature ``T`` minimising the mean NLL of ``softmax(logits / T)``; 1.0 without data.

    ``logits`` ``(N, C)``, ``labels`` ``(N,)``. Bisection on ``log(1/T)`` in float64 over the
    derivative of the NLL (increasing, since the NLL is convex in ``1/T``); clamped to
    ``[0.01, 100]``.

    Example (3 texts right and 1 wrong, all with margin 1: ``sigmoid(1/T) = 3/4``, ``T = 1/ln 3``):
        >>> logits = torch.tensor([[1.0, 0.0]] * 4)
        >>> round(fit_temperature(logits, torch.tensor([0, 0, 0, 1])), 6), round(1 / math.log(3), 6)
        (0.910239, 0.910239)
    """
    if logits.numel() == 0:
        return 1.0
    z = logits.detach().double()  # (N, C)
    target = z.gather(1, labels.long().view(-1, 1)).squeeze(1)  # (N,)

    def slope(log_beta: float) -> float:  # d NLL / d beta at beta = exp(log_beta)
        p = (z * math.exp(log_beta)).softmax(dim=-1)  # (N, C)
        return float(((p * z).sum(dim=-1) - target).mean())

    lo, hi = math.log(1 / MAX_TEMPERATURE), math.log(1 / MIN_TEMPERATURE)
    if slope(lo) >= 0:
        return MAX_TEMPERATURE
    if slope(hi) <= 0:
        return MIN_TEMPERATURE
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    return float(1 / math.exp((lo + hi) / 2))


def fit_thresholds(probs: Tensor, targets: Tensor, default: float = 0.5) -> Tensor:
    """Per-label thresholds ``(C,)`` maximising each label's F1 on ``probs`` ``(N, C)``.

    ``targets`` ``(N, C)`` holds 0/1. A label is predicted when its probability is at least its
    threshold. For each label the texts are ranked by probability and F1 is counted exactly at
    every cut between two distinct probabilities (equal probabilities are never split); the
    threshold is the midpoint of the best cut, the highest such cut on a tie. Labels without a
    positive text keep ``default``. Deterministic and independent of row order, so every rank
    gets the same thresholds from the same gathered probabilities.

    Example (label 0: the two positives are the top two; label 1: no positive):
        >>> probs = torch.tensor([[0.9, 0.2], [0.6, 0.1], [0.4, 0.3], [0.1, 0.8]])
        >>> fit_thresholds(probs, torch.tensor([[1, 0], [1, 0], [0, 0], [0, 0]])).tolist()
        [0.5, 0.5]
        >>> fit_thresholds(probs, torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]])).tolist()
        [0.25, 0.5]
    """
    probs, targets = probs.detach().double().cpu(), targets.detach().double().cpu()
    thresholds = torch.full((probs.shape[1],), float(default), dtype=torch.float64)
    for c in range(probs.shape[1]):
        positives = float(targets[:, c].sum())
        if positives == 0:
            continue
        order = torch.argsort(probs[:, c], descending=True, stable=True)
        p, t = probs[order, c], targets[order, c]  # (N,), (N,)
        last = torch.ones_like(p, dtype=torch.bool)  # a cut may follow position k only where
        last[:-1] = p[1:] < p[:-1]  # the next probability is lower (ties stay together)
        tp = t.cumsum(0)  # (N,): true positives when the top k+1 are predicted
        predicted = torch.arange(1, len(p) + 1, dtype=torch.float64)
        f1 = torch.where(last, 2 * tp / (predicted + positives), torch.full_like(tp, -1.0))
        k = int(torch.argmax(f1))  # the first maximum: the highest threshold on a tie
        below = float(p[k + 1]) if k + 1 < len(p) else 0.0
        thresholds[c] = (float(p[k]) + below) / 2
    return thresholds.float()


def reliability(
    probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS
) -> tuple[float, list[dict[str, float]]]:
    """Top-label ECE (L1) over ``n_bins`` equal-width bins, and one row per bin.

    ``probs`` ``(N, C)``, ``labels`` ``(N,)``. Bin ``i`` holds confidences in
    ``[i/n, (i+1)/n)`` (1.0 in the last), as torchmetrics' ``multiclass_calibration_error``.
    Rows: ``lo``, ``hi``, ``count``, ``confidence`` and ``accuracy`` (means; 0 when empty).

    Example:
        >>> ece, rows = reliability(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1]))
        >>> round(ece, 3), [r["count"] for r in rows if r["count"]]
        (0.35, [1, 1])
    """
    probs = probs.detach().double()
    confidence, predicted = probs.max(dim=-1)  # (N,), (N,)
    correct = (predicted == labels.to(predicted.device)).double()  # (N,)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = (torch.bucketize(confidence.cpu(), edges, right=True) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()  # (n_bins,)
    conf_sum = torch.bincount(index, weights=confidence.cpu(), minlength=n_bins)
    acc_sum = torch.bincount(index, weights=correct.cpu(), minlength=n_bins)
    total = max(float(count.sum()), 1.0)
    ece = float((conf_sum - acc_sum).abs().sum() / total)
    rows = [
        {
            "lo": float(edges[i]),
            "hi": float(edges[i + 1]),
            "count": int(count[i]),
            "confidence": float(conf_sum[i] / count[i]) if count[i] else 0.0,
            "accuracy": float(acc_sum[i] / count[i]) if count[i] else 0.0,
        }
        for i in range(n_bins)
    ]
    return ece, rows


def coverage_curve(
    probs: Tensor, labels: Tensor, thresholds: Sequence[float] = COVERAGE_THRESHOLDS
) -> list[dict[str, Any]]:
    """For each threshold: the share of texts whose top probability reaches it, and their accuracy
    (``None`` when no text reaches it).

    Example:
        >>> probs, labels = torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1])
        >>> rows = coverage_curve(probs, labels, [0.0, 0.8])
        >>> [(r["threshold"], r["coverage"], r["accuracy"]) for r in rows]
        [(0.0, 1.0, 0.5), (0.8, 0.5, 1.0)]
    """
    confidence, predicted = probs.detach().double().max(dim=-1)  # (N,), (N,)
    correct = predicted == labels.to(predicted.device)  # (N,)
    n = max(len(labels), 1)
    rows = []
    for t in thresholds:
        kept = confidence >= t
        k = int(kept.sum())
        accuracy = float(correct[kept].double().mean()) if k else None  # None: nothing kept
        rows.append({"threshold": float(t), "coverage": k / n, "accuracy": accuracy})
    return rows


def calibration_report(logits: Tensor, labels: Tensor, temperature: float) -> dict[str, Any]:
    """Plain data for logs, pictures and the checkpoint: ECE and bins before/after ``T``, and the
    coverage curve with the calibrated probabilities."""
    raw = logits.detach().float().softmax(dim=-1)
    calibrated = (logits.detach().float() / temperature).softmax(dim=-1)
    ece_raw, bins_raw = reliability(raw, labels)
    ece, bins = reliability(calibrated, labels)
    return {
        "temperature": float(temperature),
        "count": len(labels),
        "accuracy": float((raw.argmax(dim=-1) == labels).double().mean()) if len(labels) else 0.0,
        "ece_raw": ece_raw,
        "ece": ece,
        "bins_raw": bins_raw,
        "bins": bins,
        "coverage": coverage_curve(calibrated, labels),
    }
