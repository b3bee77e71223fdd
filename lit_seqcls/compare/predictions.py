"""Per-example test predictions: written by every run of a comparison, paired by the report.

Each run (and the linear reference row) writes ``test_predictions.jsonl`` in its run folder, one
JSON line per test example in input order::

    {"index": 0, "label": "pos", "pred": "neg", "probs": {"neg": 0.81, "pos": 0.19}}

``index`` is the example's row in the DataModule's test split, ``label`` its true class and
``pred`` the predicted one (class names); ``probs`` is there when the model gives probabilities.
Because every run predicts the same rows, the report pairs runs by ``index`` for its paired
bootstrap and tests (``lit_seqcls.compare.stats``).

On multi-label data ``label`` and ``pred`` are label sets, their class names in class order with
``|`` between them (``""``: the empty set). Pairing numbers each distinct set, so subset accuracy
is an exact match of set ids; ``Paired.label_sets`` says which labels each set holds, for the
per-label counts of macro- and micro-F1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

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


class Paired(NamedTuple):
    """The runs' test predictions, paired by example (``paired_predictions``)."""

    labels: np.ndarray  # (N,) true class ids (multi-label: label set ids)
    runs: dict[str, np.ndarray]  # encoder → (S, N) predicted ids, one row per seed
    notes: list[str]  # each run left out, and why
    label_sets: np.ndarray | None = None  # multi-label: (K sets, C labels) 0/1, else None


def paired_predictions(results: Sequence[RunResult]) -> Paired:
    """The successful runs' predictions as class ids, paired by test example.

    Returns the true class ids (N,), each encoder's (S, N) predictions (one row per seed, in
    the order of ``results``), and a note per run left out: no predictions file, or other test
    examples (or labels) than the first run's, which would make pairing meaningless. When the
    runs are multi-label (they report micro-F1), the ids are of label sets and ``label_sets``
    holds each set's labels over every class name the files show (a model's ``probs`` name them
    all, in class order; a label that no file names at all is missing from the macro-F1 mean).
    """
    classes: dict[str, int] = {}
    ids = np.vectorize(lambda name: classes.setdefault(name, len(classes)), otypes=[np.int64])
    labels: np.ndarray | None = None
    index: np.ndarray | None = None
    runs: dict[str, list[np.ndarray]] = {}
    notes = []
    names: list[str] = []  # class names in class order, from the first file with probabilities
    for r in results:
        if r.status != "ok":
            continue
        path = Path(r.predictions) if r.predictions else None
        if path is None or not path.is_file():
            notes.append(f"{r.encoder} seed {r.seed}: no per-example test predictions")
            continue
        try:
            run_index, run_labels, run_preds = read_predictions(path)
            names = names or _class_names(path)
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
        return Paired(np.zeros(0, dtype=np.int64), {}, notes)
    stacked = {name: np.stack(rows) for name, rows in runs.items()}
    if not any(r.status == "ok" and r.test_f1_micro is not None for r in results):
        return Paired(labels, stacked, notes)
    if any("|" in name for name in names):
        notes.append("label sets counted as whole classes: a class name holds '|'")
        return Paired(labels, stacked, notes)
    return Paired(labels, stacked, notes, label_sets(list(classes), names))


def class_name(label: int | Sequence[int], names: Sequence[str]) -> str:
    """How a label is written in ``test_predictions.jsonl``: a class id's name, or a 0/1 row's
    label set, its names in class order joined by ``|`` (``""``: the empty set); ``label_sets``
    reads them back.

    Example:
        >>> class_name(1, ["a", "b", "c"]), class_name([1, 0, 1], ["a", "b", "c"])
        ('b', 'a|c')
    """
    if isinstance(label, Sequence):
        return "|".join(n for n, v in zip(names, label, strict=True) if v)
    return names[int(label)]


def label_sets(sets: Sequence[str], names: Sequence[str] = ()) -> np.ndarray:
    """0/1 rows (len(sets), C): which class each label set (``"a|b"``, ``""`` empty) holds.

    The classes are ``names`` in their order, then any other name the sets hold, as met.

    Example:
        >>> label_sets(["b", "a|c", ""], ["a", "b", "c"]).tolist()
        [[0, 1, 0], [1, 0, 1], [0, 0, 0]]
    """
    members = [s.split("|") if s else [] for s in sets]
    met = dict.fromkeys(chain(names, chain.from_iterable(members)))
    column = {name: i for i, name in enumerate(met)}
    out = np.zeros((len(sets), len(column)), dtype=np.int64)
    for row, labels in enumerate(members):
        out[row, [column[name] for name in labels]] = 1
    return out


def _class_names(path: Path) -> list[str]:
    """The class names of a predictions file's ``probs`` (its first line), in their order."""
    with path.open(encoding="utf-8") as f:
        line = next((line for line in f if line.strip()), "{}")
    probs = json.loads(line).get("probs")  # the file was read whole already: a dict per line
    return [str(name) for name in probs] if isinstance(probs, dict) else []
