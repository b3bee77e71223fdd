"""The linear reference row: TF-IDF + LinearSVC on the runs' own splits, optional, reused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lit_seqcls.compare import reference
from lit_seqcls.compare.predictions import PREDICTIONS_FILE, read_predictions
from lit_seqcls.compare.reference import SKIPPED, reference_row
from lit_seqcls.compare.results import RunResult
from lit_seqcls.plugins import build_datamodule

pytest.importorskip("sklearn")


@pytest.fixture
def data(small_synthetic_kwargs) -> dict:
    """A config's ``data:`` section, as a run's ``config.yaml`` holds it."""
    args = {**small_synthetic_kwargs, "task": "majority"}  # bag-of-words friendly
    return {"class_path": "datamodules.SyntheticDataModule", "init_args": args}


def _finished_run(tmp_path, data) -> RunResult:
    log_dir = tmp_path / "cmp" / "runs" / "gru-seed0" / "lightning_logs" / "version_0"
    log_dir.mkdir(parents=True)
    (log_dir / "config.yaml").write_text(json.dumps({"data": data}))  # JSON is YAML
    return RunResult("gru", 0, run_dir=str(log_dir.parents[1]), status="ok")


def test_reference_trains_on_the_runs_training_split_and_writes_paired_predictions(tmp_path, data):
    row = reference.run_reference(data, tmp_path / "ref")
    index, labels, preds = read_predictions(tmp_path / "ref" / "test_predictions.jsonl")
    dm = build_datamodule([data])
    test = dm.splits["test"]
    assert index.tolist() == list(range(len(test)))  # every test row once, in input order
    assert labels == [dm.class_names[y] for y in test["label"]]
    assert row.reference and row.status == "ok" and row.params > 0
    assert row.test_acc == pytest.approx(np.mean(np.array(labels) == np.array(preds)))
    assert row.test_acc > 0.5  # the counting task is easy for a bag of words
    # The same numbers as calling it directly (deterministic; the validation rows held out).
    _, p, _, _ = reference.fit_predict(dm)
    assert [dm.class_names[i] for i in p] == preds and len(dm.splits["train"]) < 240


def test_reference_row_reads_a_finished_run_and_is_reused(tmp_path, data, monkeypatch, capsys):
    runs = [_finished_run(tmp_path, data)]
    row = reference_row("tfidf-svm", runs, tmp_path / "cmp")
    assert row.status == "ok" and row.encoder == "tfidf-svm" and row.reference
    assert "Reference row: test acc" in capsys.readouterr().out

    def must_not_run(*args):
        raise AssertionError("a finished reference row with the same data is reused")

    monkeypatch.setattr(reference, "run_reference", must_not_run)
    assert reference_row("tfidf-svm", runs, tmp_path / "cmp") == row
    # Other data settings: computed again (here: the stand-in that fails), never reused.
    data["init_args"]["test_size"] = 30
    (next((tmp_path / "cmp").glob("runs/gru-seed0/**/config.yaml"))).write_text(
        json.dumps({"data": data})
    )
    assert reference_row("tfidf-svm", runs, tmp_path / "cmp").status.startswith("failed: ")


def test_a_finished_reference_row_moved_with_its_comparison_is_reused(tmp_path, data, monkeypatch):
    """Its record names the predictions file by the path it was written at; copied elsewhere
    (another machine, a repository) the comparison's folder is still one finished row."""
    runs = [_finished_run(tmp_path, data)]
    reference_row("tfidf-svm", runs, tmp_path / "cmp")
    shutil.move(tmp_path / "cmp", tmp_path / "moved")
    runs[0].run_dir = str(tmp_path / "moved" / "runs" / "gru-seed0")

    def must_not_run(*args):
        raise AssertionError("a finished reference row with the same data is reused")

    monkeypatch.setattr(reference, "run_reference", must_not_run)
    row = reference_row("tfidf-svm", runs, tmp_path / "moved")
    assert row.status == "ok"
    assert row.predictions == str(tmp_path / "moved" / "runs" / "tfidf-svm" / PREDICTIONS_FILE)


def test_reference_row_is_optional(tmp_path, data, monkeypatch, capsys):
    runs = [_finished_run(tmp_path, data)]
    assert reference_row("none", runs, tmp_path / "cmp") is None
    waiting = reference_row("tfidf-svm", [RunResult("gru", 0, status="fit failed")], tmp_path)
    assert waiting.status.startswith("not run yet") and waiting.reference
    monkeypatch.setattr(reference, "sklearn_available", lambda: False)
    skipped = reference_row("tfidf-svm", runs, tmp_path / "cmp")
    assert skipped.status == SKIPPED == "reference row skipped: pip install lit-seqcls[baselines]"
    assert capsys.readouterr().out.count(SKIPPED) == 1


def test_compare_has_the_reference_row_by_default_and_none_turns_it_off():
    from lit_seqcls.compare.runner import _parse

    assert _parse([])[0].reference == "tfidf-svm"
    assert _parse(["--reference", "none"])[0].reference == "none"
    with pytest.raises(SystemExit):
        _parse(["--reference", "bm25"])


# ---- multi-label data: one LinearSVC per label, label sets as the reporter writes them ----------
TAGS = {"db": ["sql", "query", "index"], "net": ["tcp", "router"], "web": ["html", "css"]}
# (text, true labels, what the reference predicts): one extra label (row 3), one text whose words
# tell no label (row 4: the empty set), one with two labels.
TAG_TEST = [
    ("sql query the a", ["db"], "db"),
    ("tcp router of", ["net"], "net"),
    ("html css and", ["web"], "web"),
    ("sql tcp the", ["db"], "db|net"),
    ("and of the a", ["web"], ""),
    ("index html the", ["db", "web"], "db|web"),
]


def _tag_rows(n: int) -> list[dict]:
    """Texts whose words tell their labels (every label set of the three, in turn)."""
    rows = []
    for i in range(n):
        labels = [name for bit, name in enumerate(TAGS) if (i % 8) >> bit & 1]
        words = [TAGS[name][(i + k) % len(TAGS[name])] for name in labels for k in range(2)]
        filler = ["the", "a", "of", "and"]
        rows.append({"text": " ".join(words + filler[i % 3 :]), "label": labels})
    return rows


@pytest.fixture
def tag_data(tmp_path) -> dict:
    """A ``data:`` section of multi-label JSON Lines files (label lists)."""
    files = {}
    test = [{"text": t, "label": y} for t, y, _ in TAG_TEST]
    for split, rows in (("train", _tag_rows(64)), ("test", test)):
        files[split] = str(tmp_path / f"{split}.jsonl")
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = {"data_files": files, "cache_dir": str(tmp_path / "cache"), "seed": 0}
    return {"class_path": "datamodules.TextDataModule", "init_args": args}


def test_multi_label_reference_predicts_label_sets_and_scores_them(tmp_path, tag_data):
    runs = [_finished_run(tmp_path, tag_data)]
    row = reference_row("tfidf-svm", runs, tmp_path / "cmp")
    assert row.status == "ok", row.status
    index, labels, preds = read_predictions(Path(row.predictions))
    assert index.tolist() == list(range(len(TAG_TEST)))
    assert labels == ["|".join(y) for _, y, _ in TAG_TEST]  # as the reporter writes them
    assert preds == [p for _, _, p in TAG_TEST]
    # By hand: pairs right 1+1+1+1+0+2 = 6, extra 1 (row 3), missed 1 (row 4).
    tp, fp, fn = 6, 1, 1
    assert row.test_f1_micro == pytest.approx(2 * tp / (2 * tp + fp + fn))  # 12/14
    assert row.test_acc == pytest.approx(4 / 6)  # subset accuracy: rows 3 and 4 are wrong
    # Per label: db 1, net 2·1/(2·1+1), web 2·2/(2·2+1).
    assert row.test_f1 == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)
    assert row.test_ece is None  # no probabilities
    assert row.params > 0 and row.params % len(TAGS) == 0  # an SVM per label, of equal size
    assert "micro-F1 0.857" in row.summary()


def test_multi_label_scores_of_0_1_rows():
    y = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]])
    p = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]])  # 2 pairs right, 1 extra, 1 missed
    scores = reference.multilabel_scores(y, p)
    assert scores["test_f1_micro"] == pytest.approx(4 / 6)
    assert scores["test_acc"] == pytest.approx(1 / 3)  # the empty set matched: right
    assert scores["test_f1"] == pytest.approx((1 + 0 + 1) / 3)
