"""The linear reference row: TF-IDF + LinearSVC on the runs' own splits, optional, reused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lit_seqcls.compare import reference
from lit_seqcls.compare.predictions import read_predictions
from lit_seqcls.compare.reference import SKIPPED, reference_row
from lit_seqcls.compare.results import RunResult

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
    dm = reference.datamodule(data)
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
