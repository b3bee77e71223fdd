"""The linear reference row of ``lit-seqcls compare``: TF-IDF + a linear SVM on the runs' splits.

It is the row a practitioner would otherwise reach for: scikit-learn's ``TfidfVectorizer``
(unigrams + bigrams, sublinear term frequencies, words in at least two texts) and ``LinearSVC``
(C = 1), trained on the DataModule's training split (the texts the encoders train on: the same
validation rows held out with the same seed, the same HTML stripping) and scored on its test
split. The DataModule is built from a finished run's own ``config.yaml``, so the splits are the
runs' by construction. Its per-example predictions are written like a run's
(``runs/tfidf-svm/test_predictions.jsonl``), so the report's paired statistics treat it as one
more row, marked as the reference (never the best).

On multi-label data (the DataModule's ``multi_label``) it is one-vs-rest: one ``LinearSVC`` per
label (``OneVsRestClassifier``) on the multi-hot training labels, each deciding on its own
whether its label is in a text's set; a text for which none does gets the empty set. Its
predictions are label sets written like a run's (``"a|b"``, in class-name order), and it reports
subset accuracy (``test_acc``), macro-F1 over the labels (``test_f1``) and micro-F1
(``test_f1_micro``), as the model logs them.

scikit-learn is optional (``pip install lit-seqcls[baselines]``): without it the row says so
and the comparison goes on. ``--reference none`` leaves the row out. A finished reference row is
reused while the data settings stay the same (its ``result.json`` keeps their digest).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_seqcls.compare.predictions import PREDICTIONS_FILE, class_name, write_predictions
from lit_seqcls.compare.results import RunResult
from lit_seqcls.compare.runs import relocated
from lit_seqcls.compare.stats import macro_f1
from lit_seqcls.plugins import build_datamodule
from lit_seqcls.runtime.atomic import atomic_write
from lit_seqcls.trust import read_config_file

NAME = "tfidf-svm"
CHOICES = (NAME, "none")
SKIPPED = "reference row skipped: pip install lit-seqcls[baselines]"
RECORD_FILE = "result.json"


def add_reference_argument(parser: argparse.ArgumentParser) -> None:
    """``--reference tfidf-svm|none`` of ``lit-seqcls compare``."""
    parser.add_argument(
        "--reference",
        choices=CHOICES,
        default=NAME,
        help="a linear reference row on the same splits: TF-IDF (uni+bigrams) + LinearSVC "
        "(needs scikit-learn: pip install lit-seqcls[baselines]; without it the table says "
        "so); none: no reference row (default: tfidf-svm)",
    )


def sklearn_available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def reference_row(choice: str, results: Sequence[RunResult], output_dir: Path) -> RunResult | None:
    """The reference row for the runs ``results`` of the comparison in ``output_dir``; never raises.

    ``None`` for ``--reference none``; a row saying what is missing without scikit-learn or
    before any run has finished (its data settings are read from a finished run).
    """
    if choice == "none":
        return None
    run_dir = output_dir / "runs" / NAME
    row = RunResult(NAME, 0, run_dir=str(run_dir), reference=True)
    if not sklearn_available():
        print(SKIPPED, flush=True)
        row.status = SKIPPED
        return row
    config = _data_config(results)
    if config is None:
        row.status = "not run yet: it takes the data settings of a finished run"
        return row
    try:
        data = read_config_file(config)["data"]
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        done = _read_record(run_dir, digest)
        if done is not None:
            return done
        print(f"Reference row: TF-IDF + LinearSVC on the data of {config} ...", flush=True)
        row = run_reference(data, run_dir)
    except Exception as err:  # the comparison goes on without it; the row says why
        row.status = f"failed: {type(err).__name__}: {err}"
        return row
    _write_record(run_dir, digest, row)
    print(f"Reference row: {row.summary()} ({row.train_time_s:.0f} s)", flush=True)
    return row


def run_reference(data: dict[str, Any], run_dir: Path) -> RunResult:
    """Fit and score the reference on the DataModule described by ``data`` (a config's
    ``data:`` section); write its ``test_predictions.jsonl`` into ``run_dir``."""
    started = time.perf_counter()
    dm = build_datamodule([data])
    labels, preds, seconds, params = fit_predict(dm)
    names = list(dm.class_names)
    path = write_predictions(
        run_dir / PREDICTIONS_FILE,
        (
            {"index": i, "label": class_name(y, names), "pred": class_name(p, names)}
            for i, (y, p) in enumerate(zip(labels.tolist(), preds.tolist(), strict=True))
        ),
    )
    if labels.ndim == 2:
        scores = multilabel_scores(labels, preds)
    else:
        scores = {"test_acc": float((labels == preds).mean()), "test_f1": macro_f1(labels, preds)}
    return RunResult(
        NAME,
        0,
        run_dir=str(run_dir),
        status="ok",
        **scores,
        train_time_s=seconds,
        wall_time_s=time.perf_counter() - started,  # data, fit and predictions, in this process
        params=params,
        predictions=str(path.resolve()),
        reference=True,
    )


def fit_predict(dm: Any, ngrams: int = 2) -> tuple[np.ndarray, np.ndarray, float, int]:
    """TF-IDF (1..``ngrams``-grams) + LinearSVC trained on ``dm``'s training split.

    Returns the test split's labels and predictions (in its row order: ``Batch.index``), the
    seconds to fit, and the classifier's parameter count (weights and intercepts). Labels and
    predictions are class ids ``(N,)``, or on multi-label data 0/1 rows ``(N, C)`` over
    ``dm.class_names`` from a ``LinearSVC`` per label (a row of zeros: no label predicted).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    train, test = dm.splits["train"], dm.splits["test"]
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, ngrams), sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform([dm.normalize(t) for t in train["text"]])
    if dm.multi_label:  # the splits hold each text's label ids as a list: made 0/1 rows
        target = _multi_hot(train["label"], len(dm.class_names))
        classifier = OneVsRestClassifier(LinearSVC(C=1.0)).fit(features, target)
    else:
        classifier = LinearSVC(C=1.0).fit(features, train["label"])
    seconds = time.perf_counter() - start
    preds = classifier.predict(vectorizer.transform([dm.normalize(t) for t in test["text"]]))
    if dm.multi_label:
        labels = _multi_hot(test["label"], len(dm.class_names))
    else:
        labels = np.asarray(test["label"])
    return labels, np.asarray(preds), seconds, _parameters(classifier)


def multilabel_scores(labels: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    """Subset accuracy, macro-F1 over the labels and micro-F1 of 0/1 rows ``(N, C)``, keyed as
    ``RunResult`` fields. A label that neither ``labels`` nor ``preds`` holds has F1 0 in the
    macro mean, as in the model's metric (torchmetrics' ``MultilabelF1Score``).

    Example:
        >>> y = np.array([[1, 0, 1], [0, 1, 0]])
        >>> p = np.array([[1, 0, 0], [0, 1, 1]])  # 2 pairs right, 1 missed, 1 extra
        >>> {k: round(v, 3) for k, v in multilabel_scores(y, p).items()}
        {'test_acc': 0.0, 'test_f1': 0.667, 'test_f1_micro': 0.667}
    """
    from sklearn.metrics import f1_score

    return {
        "test_acc": float((labels == preds).all(axis=1).mean()),
        "test_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "test_f1_micro": float(f1_score(labels, preds, average="micro", zero_division=0)),
    }


def _parameters(classifier: Any) -> int:
    """Weights and intercepts of a ``LinearSVC``, or of a one-vs-rest one's SVMs (a label that
    every training text has, or none, is a constant there, without any)."""
    fitted = getattr(classifier, "estimators_", [classifier])
    return sum(e.coef_.size + e.intercept_.size for e in fitted if hasattr(e, "coef_"))


def _multi_hot(rows: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Lists of class ids as 0/1 rows ``(N, C)``."""
    out = np.zeros((len(rows), num_classes), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, list(row)] = 1
    return out


def _data_config(results: Sequence[RunResult]) -> Path | None:
    """A finished run's ``config.yaml`` (every run of a comparison has the same data)."""
    for r in results:
        if r.status == "ok" and not r.reference and r.run_dir:
            configs = sorted(Path(r.run_dir).glob("**/config.yaml"))
            if configs:
                return configs[0]
    return None


def _read_record(run_dir: Path, digest: str) -> RunResult | None:
    try:
        raw = json.loads((run_dir / RECORD_FILE).read_text(encoding="utf-8"))
        row = relocated(RunResult(**raw["result"]), run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fresh = raw.get("data") == digest and row.status == "ok" and Path(row.predictions).is_file()
    return row if fresh else None


def _write_record(run_dir: Path, digest: str, row: RunResult) -> None:
    with atomic_write(run_dir / RECORD_FILE, "w", encoding="utf-8") as f:
        json.dump({"data": digest, "result": dataclasses.asdict(row)}, f, indent=1)
