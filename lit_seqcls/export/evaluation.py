"""The model measured on labelled texts, for its model card: the exported bundle on
``--eval_data``, or what ``lit-seqcls compare``'s test run of the checkpoint recorded.

Accuracy and macro-F1 with 95% bootstrap intervals (``BOOTSTRAP`` resamples of the texts),
per-class precision / recall / F1 (F1 with an interval) and support, the expected calibration
error (15 equal-width bins of the top probability, as torchmetrics bins it), accuracy by length
(``lit_seqcls.metrics.length_buckets``) and, for ``--eval_data``, two figures; there what is
measured is the bundle itself (onnxruntime, the bundle's tokenizer), not the checkpoint.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lit_seqcls.errors import UserError
from lit_seqcls.metrics import length_buckets
from lit_seqcls.serving.bundle import MULTI_LABEL, Bundle
from lit_seqcls.serving.files import read_rows
from lit_seqcls.validation import integers_name_classes

BOOTSTRAP = 1000
ECE_BINS = 15
LENGTH_BUCKETS = 5
PLOTS = "plots"


class EvaluationError(ValueError, UserError):
    """Labelled data the bundle cannot be measured on."""


@dataclass
class Evaluation:
    source: str
    measured: str  # what made the predictions: "the exported bundle (onnxruntime)", ...
    size: int
    class_counts: dict[str, int]
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    per_class: list[dict[str, Any]]  # name, precision, recall, f1, f1_ci, support
    ece: float | None  # None: no probabilities
    by_length: list[tuple[int, int, int, float]]  # shortest, longest, texts, accuracy
    plots: list[str] = field(default_factory=list)  # paths inside the bundle


def evaluate(
    bundle: Bundle, data: Path, text_field: str, label_field: str, folder: Path
) -> Evaluation:
    """Predict ``data`` with ``bundle`` and measure; figures go to ``folder/plots/``."""
    if bundle.task == MULTI_LABEL:
        raise EvaluationError("--eval_data measures single-label models only (for now)")
    rows = read_rows(data, text_field, label_field)
    if not rows:
        raise EvaluationError(f"{data} holds no rows to evaluate on")
    names = bundle.class_names
    labels = np.array([_label_id(label, names, data, n) for n, (_, label) in enumerate(rows, 1)])
    ids = bundle.encode([text for text, _ in rows])
    probs = bundle.probabilities_of(bundle.logits_of_ids(ids))  # (N, C)
    measured = "the exported bundle (onnxruntime)"
    evaluation = measure(labels, probs.argmax(axis=1), probs, [len(x) for x in ids], names,
                         str(data), measured)  # fmt: skip
    evaluation.plots = _plots(evaluation, probs, labels, folder)
    return evaluation


def from_test_predictions(
    path: Path, names: list[str], record: dict[str, Any]
) -> Evaluation | None:
    """``measure`` on a ``test_predictions.jsonl`` that ``lit-seqcls compare`` wrote for the
    run (true and predicted class per test text, probabilities when given), accuracy by length
    from its ``result.json`` (``record``: each test text's length and correctness); ``None`` if
    the file does not fit the model's classes."""
    try:
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        rows.sort(key=lambda r: r["index"])
        labels = np.array([names.index(str(r["label"])) for r in rows])
        preds = np.array([names.index(str(r["pred"])) for r in rows])
        probs = None
        if all(isinstance(r.get("probs"), dict) for r in rows):
            probs = np.array([[r["probs"][n] for n in names] for r in rows], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not rows:
        return None
    measured = "the checkpoint, by `lit-seqcls compare`'s test run"
    evaluation = measure(labels, preds, probs, None, names, str(path), measured)
    lengths, correct = record.get("lengths"), record.get("correct")
    if isinstance(lengths, list) and isinstance(correct, list) and len(lengths) == len(correct):
        evaluation.by_length = _by_length(lengths, np.array(correct, dtype=bool))
    return evaluation


def measure(
    labels: np.ndarray,
    preds: np.ndarray,
    probs: np.ndarray | None,
    lengths: list[int] | None,
    names: list[str],
    source: str,
    measured: str,
) -> Evaluation:
    """The scores of ``preds`` against ``labels`` (class ids ``(N,)``), with intervals."""
    k = len(names)
    f1_draws, acc_draws = _bootstrap(labels, preds, k)  # (B, C), (B,)
    precision, recall, f1 = _per_class(labels, preds, k)
    support = np.bincount(labels, minlength=k)
    present = support + np.bincount(preds, minlength=k) > 0
    per_class = [
        {"name": names[c], "precision": precision[c], "recall": recall[c], "f1": f1[c],
         "f1_ci": _interval(f1_draws[:, c]), "support": int(support[c])}
        for c in range(k)
    ]  # fmt: skip
    correct = preds == labels
    return Evaluation(
        source=source,
        measured=measured,
        size=len(labels),
        class_counts={names[c]: int(support[c]) for c in range(k)},
        accuracy=float(correct.mean()),
        accuracy_ci=_interval(acc_draws),
        macro_f1=float(f1[present].mean()),
        macro_f1_ci=_interval(np.nanmean(np.where(present, f1_draws, np.nan), axis=1)),
        per_class=per_class,
        ece=None if probs is None else expected_calibration_error(probs, labels),
        by_length=[] if lengths is None else _by_length(lengths, correct),
    )


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS):
    """Top-label ECE: ``sum_b n_b / N * |accuracy_b - confidence_b|`` over equal-width bins.

    Example:
        >>> expected_calibration_error(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]))
        0.35
    """
    confidence, hit = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = 0.0
    for b in np.unique(which):
        inside = which == b
        gap += inside.sum() * abs(hit[inside].mean() - confidence[inside].mean())
    return round(float(gap / len(labels)), 10)


def _label_id(label: Any, names: list[str], data: Path, n: int) -> int:
    """The class id of row ``n``'s ``label``: a class name, or an index unless a class name is
    an integer (``lit_seqcls.validation.integers_name_classes``): integers then name classes.

    Example:
        >>> [_label_id(label, ["1", "2"], Path("stars.jsonl"), 1) for label in (1, 2, "2")]
        [0, 1, 1]
        >>> [_label_id(label, ["neg", "pos"], Path("s.jsonl"), 1) for label in (1, "neg", "0")]
        [1, 0, 0]
    """
    if isinstance(label, str) and label in names:
        return names.index(label)
    if integers_name_classes(names):  # 2 is class "2", as when training read the classes
        if isinstance(label, int) and not isinstance(label, bool) and str(label) in names:
            return names.index(str(label))
    elif isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names):
        return label
    elif isinstance(label, str) and label.isdigit() and int(label) < len(names):
        return int(label)
    indices = "" if integers_name_classes(names) else " (or their index)"
    raise EvaluationError(
        f"{data} row {n}: label {label!r} is not one of the model's classes {names}{indices}; "
        "evaluate on data labelled like the training data"
    )


def _per_class(labels: np.ndarray, preds: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    tp = np.bincount(labels[labels == preds], minlength=k).astype(float)
    predicted, actual = np.bincount(preds, minlength=k), np.bincount(labels, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
    return precision, recall, f1


def _bootstrap(labels: np.ndarray, preds: np.ndarray, k: int, chunk: int = 50):
    """Per-class F1 ``(B, C)`` and accuracy ``(B,)`` over ``BOOTSTRAP`` resamples (seed 0)."""
    rng, n = np.random.default_rng(0), len(labels)
    f1s, accs = [], []
    for start in range(0, BOOTSTRAP, chunk):
        rows = min(chunk, BOOTSTRAP - start)
        pick = rng.integers(0, n, size=(rows, n))  # (R, N)
        y, p = labels[pick], preds[pick]
        offset = np.arange(rows)[:, None] * k  # one bincount for all resamples
        tp = _counts((y + offset)[y == p], rows, k)
        total = _counts(y + offset, rows, k) + _counts(p + offset, rows, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1s.append(np.where(total > 0, 2 * tp / total, np.nan))
        accs.append((y == p).mean(axis=1))
    return np.concatenate(f1s), np.concatenate(accs)


def _counts(flat: np.ndarray, rows: int, k: int) -> np.ndarray:
    return np.bincount(flat.ravel(), minlength=rows * k).reshape(rows, k)  # (R, C)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(draws, [2.5, 97.5])
    return (float(low), float(high))


def _by_length(lengths: list[int], correct: np.ndarray) -> list[tuple[int, int, int, float]]:
    totals = Counter(lengths)
    right = Counter(n for n, ok in zip(lengths, correct, strict=True) if ok)
    return [(lo, hi, n, ok / n) for lo, hi, n, ok in length_buckets(totals, right, LENGTH_BUCKETS)]


def _plots(evaluation: Evaluation, probs: np.ndarray, labels: np.ndarray, folder: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / PLOTS).mkdir(exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    spans = [f"{lo}-{hi}" if lo < hi else str(lo) for lo, hi, _, _ in evaluation.by_length]
    ax.bar(spans, [acc for *_, acc in evaluation.by_length], color="#4c72b0")
    ax.set(xlabel="tokens (after truncation)", ylabel="accuracy", ylim=(0, 1))
    ax.set_title("Accuracy by text length")
    written.append(_save(fig, folder / PLOTS / "accuracy_by_length.png", folder))
    confidence, hit = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, ECE_BINS + 1)
    which = np.clip(np.ceil(confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    used = [b for b in range(ECE_BINS) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.bar(edges[used], [hit[which == b].mean() for b in used], width=1 / ECE_BINS, align="edge",
           edgecolor="black", color="#dd8452")  # fmt: skip
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"Reliability (ECE {evaluation.ece:.3f})")
    written.append(_save(fig, folder / PLOTS / "reliability.png", folder))
    return written


def _save(fig: Any, path: Path, folder: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version/date: same bytes
    plt.close(fig)
    return path.relative_to(folder).as_posix()
