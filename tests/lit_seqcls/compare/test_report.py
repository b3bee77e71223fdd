"""The comparison table's statistics: intervals, p-values against the best, ties, the reference."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lit_seqcls.compare import load_results, write_report
from lit_seqcls.compare.predictions import write_predictions
from lit_seqcls.compare.reference import SKIPPED
from lit_seqcls.compare.results import RunResult

N = 600
LABELS = np.random.default_rng(0).integers(0, 2, N)
HARD = np.random.default_rng(1).permutation(N)  # examples in the order runs get them wrong


def _run(tmp_path, encoder, seed, accuracy, reference=False, index_shift=0, shift=0) -> RunResult:
    # Runs share their hard examples, as real models do: each gets wrong the hardest ones its
    # accuracy allows, give or take a few (seeds and ``shift`` move the window).
    start = 5 * seed + shift
    wrong = HARD[start : start + round((1 - accuracy) * N)]
    preds = LABELS.copy()
    preds[wrong] = 1 - LABELS[wrong]
    names = ["neg", "pos"]
    path = write_predictions(
        tmp_path / "runs" / f"{encoder}-seed{seed}" / "test_predictions.jsonl",
        (
            {"index": i + index_shift, "label": names[y], "pred": names[p]}
            for i, (y, p) in enumerate(zip(LABELS, preds, strict=True))
        ),
    )
    acc = float((preds == LABELS).mean())
    return RunResult(
        encoder,
        seed,
        status="ok",
        test_acc=acc,
        test_f1=acc,
        params=100,
        train_time_s=10.0,
        predictions=str(path),
        reference=reference,
    )


def _rows(tmp_path) -> dict[str, dict[str, str]]:
    with (tmp_path / "comparison.csv").open(encoding="utf-8") as f:
        return {r["encoder"]: r for r in csv.DictReader(f)}


def test_table_gives_intervals_p_values_ties_and_marks_the_reference(tmp_path):
    results = [
        _run(tmp_path, "gru", 0, 0.90),
        _run(tmp_path, "gru", 1, 0.90),
        _run(tmp_path, "cnn", 0, 0.70),
        _run(tmp_path, "cnn", 1, 0.72),
        _run(tmp_path, "lstm", 0, 0.895, shift=4),  # a little worse, not always
        _run(tmp_path, "lstm", 1, 0.895, shift=4),
        _run(tmp_path, "tfidf-svm", 0, 0.97, reference=True),
    ]
    write_report(results, tmp_path, title="unit")
    rows = _rows(tmp_path)
    # The best is the encoder with the highest mean accuracy; the reference row never is.
    assert rows["gru"]["tied_with_best"] == "best" and rows["gru"]["p_vs_best_acc"] == ""
    assert rows["cnn"]["tied_with_best"] == "no" and float(rows["cnn"]["p_vs_best_acc"]) < 0.001
    assert rows["lstm"]["tied_with_best"] == "yes" and float(rows["lstm"]["p_vs_best_acc"]) >= 0.05
    assert rows["tfidf-svm"]["reference"] == "True" and rows["tfidf-svm"]["tied_with_best"] == "no"
    for row in rows.values():
        low, high = float(row["acc_ci_low"]), float(row["acc_ci_high"])
        assert low <= float(row["test_acc_mean"]) <= high and high - low < 0.1
        assert float(row["f1_ci_low"]) <= float(row["test_f1_mean"]) <= float(row["f1_ci_high"])
    assert rows["cnn"]["acc_test"] == "permutation"  # two seeds each
    assert rows["tfidf-svm"]["acc_test"] == "permutation"  # one seed against two

    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    header = next(line for line in markdown.splitlines() if line.startswith("| encoder"))
    for column in ("acc 95% CI", "F1 95% CI", "p vs best (acc / F1)", "tied with best"):
        assert f"| {column} |" in header
    assert "| tfidf-svm (reference) |" in markdown
    assert "| cnn | 0.710 ± 0.014 | 0.6" in markdown  # interval right after the score
    footnote = next(line for line in markdown.splitlines() if line.startswith("Statistics:"))
    for words in ("2,000 resamples", "two-level bootstrap", "sign-flip permutation test",
                  "best row (gru", "p ≥ 0.05", "post-hoc"):  # fmt: skip
        assert words in footnote

    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["statistics"] == footnote.removeprefix("Statistics: ")
    assert [r["tied_with_best"] for r in saved["encoders"]] == ["best", "no", "yes", "no"]
    assert [r.encoder for r in load_results(tmp_path)] == [r.encoder for r in results]


def test_one_seed_uses_exact_mcnemar_and_unpaired_runs_are_left_out_with_a_note(tmp_path):
    results = [
        _run(tmp_path, "gru", 0, 0.9),
        _run(tmp_path, "cnn", 0, 0.88),
        _run(tmp_path, "rnn", 0, 0.8, index_shift=1),  # other test rows: cannot be paired
        RunResult("tfidf-svm", 0, status=SKIPPED, reference=True),
    ]
    write_report(results, tmp_path)
    rows = _rows(tmp_path)
    assert rows["cnn"]["acc_test"] == "McNemar exact"
    assert rows["rnn"]["acc_ci_low"] == "" and rows["rnn"]["tied_with_best"] == ""
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "exact McNemar" in markdown and "two-level" not in markdown
    assert "Left out of the statistics: rnn seed 0: other test examples" in markdown
    assert markdown.count(SKIPPED) == 1  # said once, in the reference row's status


def test_an_encoder_alone_gets_intervals_but_no_test(tmp_path):
    write_report([_run(tmp_path, "gru", 0, 0.9)], tmp_path)
    (row,) = _rows(tmp_path).values()
    assert float(row["acc_ci_low"]) < float(row["test_acc_mean"]) < float(row["acc_ci_high"])
    assert row["p_vs_best_acc"] == "" and row["tied_with_best"] == ""
    assert "| gru | 0.9" in (tmp_path / "comparison.md").read_text(encoding="utf-8")


def test_without_an_encoder_the_reference_row_is_not_the_best(tmp_path):
    results = [
        RunResult("gru", 0, status="fit failed (exit 1)"),
        _run(tmp_path, "tfidf-svm", 0, 0.9, reference=True),
    ]
    write_report(results, tmp_path)
    row = _rows(tmp_path)["tfidf-svm"]
    assert row["acc_ci_low"] != "" and row["tied_with_best"] == "" and row["p_vs_best_acc"] == ""


@pytest.mark.parametrize("damage", ["", "{not json\n"])
def test_a_missing_or_damaged_predictions_file_leaves_the_run_out(tmp_path, damage):
    broken = _run(tmp_path, "cnn", 0, 0.8)
    with open(broken.predictions, "w", encoding="utf-8") as f:
        f.write(damage)
    if not damage:
        broken.predictions = ""
    write_report([_run(tmp_path, "gru", 0, 0.9), broken], tmp_path)
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "Left out of the statistics: cnn seed 0:" in markdown
