"""Per-example test predictions: written by every run of a comparison, paired by the report.

Each run (and the linear reference row) writes ``test_predictions.jsonl`` in its run folder, one
JSON line per test example in input order::

    {"index": 0, "label": "pos", "pred": "neg", "probs": {"neg": 0.81, "pos": 0.19}}

``index`` is the example's row in the DataModule's test split, ``label`` its true class and
``pred`` the predicted one (class names); ``probs`` is there when the model gives probabilities.
Because every run predicts the same rows, the report pairs runs by ``index`` for its paired
bootstrap and tests (``lit_seqcls.compare.stats``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lit_seqcls.runtime.atomic import atomic_write

if TYPE_CHECKING:
    from lit_seqcls.compare.results import RunResult

PREDICTIONS_FILE = "test_predictions.jsonl"


def write_predictions(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSON Lines via a temporary file (never half a file); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_predictions(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(index, labels, predictions) of a predictions file, sorted by index.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / PREDICTIONS_FILE
        >>> _ = write_predictions(path, [{"index": 1, "label": "b", "pred": "a"},
        ...                              {"index": 0, "label": "a", "pred": "a"}])
        >>> read_predictions(path)
        (array([0, 1]), ['a', 'b'], ['a', 'a'])
    """
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows.sort(key=lambda r: r["index"])
    index = np.array([r["index"] for r in rows], dtype=np.int64)
    return index, [str(r["label"]) for r in rows], [str(r["pred"]) for r in rows]


def paired_predictions(
    results: Sequence[RunResult],
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """The successful runs' predictions as class ids, paired by test example.

    Returns the true class ids (N,), each encoder's (S, N) predictions (one row per seed, in
    the order of ``results``), and a note per run left out: no predictions file, or other test
    examples (or labels) than the first run's, which would make pairing meaningless.
    """
    classes: dict[str, int] = {}
    ids = np.vectorize(lambda name: classes.setdefault(name, len(classes)), otypes=[np.int64])
    labels: np.ndarray | None = None
    index: np.ndarray | None = None
    runs: dict[str, list[np.ndarray]] = {}
    notes = []
    for r in results:
        if r.status != "ok":
            continue
        path = Path(r.predictions) if r.predictions else None
        if path is None or not path.is_file():
            notes.append(f"{r.encoder} seed {r.seed}: no per-example test predictions")
            continue
        try:
            run_index, run_labels, run_preds = read_predictions(path)
        except (OSError, ValueError, KeyError, TypeError) as err:  # a damaged file: say so, go on
            notes.append(f"{r.encoder} seed {r.seed}: unreadable {path.name} ({err})")
            continue
        if index is None:
            index, labels = run_index, ids(run_labels)
        elif not np.array_equal(run_index, index) or not np.array_equal(ids(run_labels), labels):
            notes.append(f"{r.encoder} seed {r.seed}: other test examples than the first run")
            continue
        runs.setdefault(r.encoder, []).append(ids(run_preds))
    if labels is None:
        return np.zeros(0, dtype=np.int64), {}, notes
    return labels, {name: np.stack(rows) for name, rows in runs.items()}, notes
