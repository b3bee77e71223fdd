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


def _three_encoders_and_the_reference(tmp_path) -> list:
    """gru best, cnn clearly worse, lstm a little worse (not always), and a reference row that
    scores highest but is never the best; two seeds each."""
    return [
        _run(tmp_path, "gru", 0, 0.90),
        _run(tmp_path, "gru", 1, 0.90),
        _run(tmp_path, "cnn", 0, 0.70),
        _run(tmp_path, "cnn", 1, 0.72),
        _run(tmp_path, "lstm", 0, 0.895, shift=4),
        _run(tmp_path, "lstm", 1, 0.895, shift=4),
        _run(tmp_path, "tfidf-svm", 0, 0.97, reference=True),
    ]


def test_table_gives_intervals_p_values_ties_and_marks_the_reference(tmp_path):
    results = _three_encoders_and_the_reference(tmp_path)
    write_report(results, tmp_path, title="unit")
    rows = _rows(tmp_path)
    # The best is the encoder with the highest mean accuracy; the reference row never is.
    assert rows["gru"]["tied_with_best"] == "best" and rows["gru"]["p_vs_best_acc"] == ""
    assert rows["cnn"]["tied_with_best"] == "no" and float(rows["cnn"]["p_vs_best_acc"]) < 0.001
    assert rows["lstm"]["tied_with_best"] == "yes" and float(rows["lstm"]["p_vs_best_acc"]) >= 0.05
    # The reference scores above the best encoder: "no" alone would read as worse.
    reference = rows["tfidf-svm"]
    assert reference["reference"] == "True" and reference["tied_with_best"] == "no (higher)"
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
                  "best encoder row (gru, the highest mean test accuracy of the encoders",
                  "p ≥ 0.05", "post-hoc",
                  "The reference row tfidf-svm has a higher test accuracy than the best encoder "
                  "(0.970 against 0.900; p < 0.001, a significant difference"):  # fmt: skip
        assert words in footnote
    assert "| tfidf-svm (reference) | 0.970 |" in markdown and "| no (higher) |" in markdown

    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["statistics"]["method"] == footnote.removeprefix("Statistics: ")
    ties = ["best", "no", "yes", "no (higher)"]
    assert [r["tied_with_best"] for r in saved["encoders"]] == ties
    assert [r.encoder for r in load_results(tmp_path)] == [r.encoder for r in results]


def test_every_pair_of_rows_gets_an_accuracy_test_in_three_places(tmp_path):
    results = _three_encoders_and_the_reference(tmp_path)
    write_report(results, tmp_path)
    with (tmp_path / "pairwise.csv").open(encoding="utf-8") as f:
        pairs = {(r["row"], r["other"]): r for r in csv.DictReader(f)}
    names = ["gru", "cnn", "lstm", "tfidf-svm"]
    assert list(pairs) == [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = _rows(tmp_path)
    for name in ("cnn", "lstm", "tfidf-svm"):  # the test against the best is the same test
        assert float(pairs["gru", name]["p_value"]) == float(rows[name]["p_vs_best_acc"])
        assert pairs["gru", name]["test"] == rows[name]["acc_test"]
    # Not against the best: cnn is far below lstm and the reference.
    assert float(pairs["cnn", "lstm"]["p_value"]) < 0.001
    difference = float(rows["cnn"]["test_acc_mean"]) - float(rows["lstm"]["test_acc_mean"])
    assert float(pairs["cnn", "lstm"]["acc_difference"]) == pytest.approx(difference)
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert [(t["row"], t["other"]) for t in saved["statistics"]["pairwise"]] == list(pairs)

    lines = (tmp_path / "comparison.md").read_text(encoding="utf-8").splitlines()
    top = lines.index("| p (acc) | cnn | lstm | tfidf-svm |")  # upper triangle, 2 digits
    p_lstm = float(pairs["gru", "lstm"]["p_value"])
    assert lines[top + 2].startswith(f"| gru | {float(pairs['gru', 'cnn']['p_value']):.2g} | ")
    assert f" | {p_lstm:.2g} | " in lines[top + 2]
    assert lines[top + 3].startswith("| cnn |  | ") and lines[top + 4].startswith("| lstm |  |  | ")


def test_one_row_has_no_pairs_and_an_empty_pairwise_csv(tmp_path):
    write_report([_run(tmp_path, "gru", 0, 0.9)], tmp_path)
    header = (tmp_path / "pairwise.csv").read_text(encoding="utf-8").splitlines()
    assert header == ["row,other,acc_difference,p_value,test"]
    assert "| p (acc) |" not in (tmp_path / "comparison.md").read_text(encoding="utf-8")


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


# ---- optional scores: micro-F1 (multi-label) and the calibration error --------------------------
def _header(tmp_path) -> str:
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    return next(line for line in markdown.splitlines() if line.startswith("| encoder"))


def _csv_columns(path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return next(csv.reader(f))


def test_single_label_runs_without_calibration_keep_the_old_columns(tmp_path):
    write_report([_run(tmp_path, "gru", 0, 0.9), _run(tmp_path, "cnn", 0, 0.8)], tmp_path)
    header = _header(tmp_path)
    assert "| tied with best | wall time |" in header  # nothing between them
    for column in ("micro-F1", "ECE"):
        assert column not in header
    for table in ("comparison.csv", "runs.csv"):
        columns = _csv_columns(tmp_path / table)
        assert not [c for c in columns if "micro" in c or "ece" in c], table
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "subset accuracy" not in markdown and "calibration" not in markdown


def test_calibration_errors_get_columns_with_mean_and_std_over_seeds(tmp_path):
    results = [_run(tmp_path, "gru", s, 0.9) for s in (0, 1)]
    results[0].test_ece, results[1].test_ece = 0.010, 0.020
    results[0].test_ece_raw, results[1].test_ece_raw = 0.050, 0.070
    results.append(_run(tmp_path, "tfidf-svm", 0, 0.8, reference=True))  # no probabilities
    write_report(results, tmp_path)
    header = _header(tmp_path)
    assert "| tied with best | ECE | raw ECE | wall time |" in header and "micro-F1" not in header
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    row = next(line for line in markdown.splitlines() if line.startswith("| gru |"))
    assert "| 0.015 ± 0.007 | 0.060 ± 0.014 |" in row
    reference = next(line for line in markdown.splitlines() if line.startswith("| tfidf-svm"))
    assert "| — | — |" in reference
    assert "ECE: expected calibration error (15 equal-width bins)" in markdown
    rows = _rows(tmp_path)
    assert float(rows["gru"]["test_ece_mean"]) == pytest.approx(0.015)
    assert float(rows["gru"]["test_ece_raw_std"]) == pytest.approx(0.01414, abs=1e-5)
    assert rows["tfidf-svm"]["test_ece_mean"] == ""
    assert "test_f1_micro_mean" not in rows["gru"]
    with (tmp_path / "runs.csv").open(encoding="utf-8") as f:
        runs = list(csv.DictReader(f))
    assert [r["test_ece"] for r in runs] == ["0.01", "0.02", ""]
    assert list(runs[0])[2:7] == ["test_acc", "test_f1", "test_ece", "test_ece_raw", "wall_time_s"]


def _multi_label_run(tmp_path, encoder, rows, reference=False, names=()) -> RunResult:
    """A multi-label run's predictions as the reporter writes them: label sets "a|b", and a
    probability per class name in ``names`` (the model's; the reference row gives none)."""
    probs = {"probs": dict.fromkeys(names, 0.5)} if names else {}
    path = write_predictions(
        tmp_path / "runs" / encoder / "test_predictions.jsonl",
        ({"index": i, "label": y, "pred": p, **probs} for i, (y, p) in enumerate(rows)),
    )
    exact = sum(y == p for y, p in rows) / len(rows)
    return RunResult(
        encoder,
        0,
        status="ok",
        test_acc=exact,
        test_f1=0.7,
        test_f1_micro=0.8,
        test_ece=None if reference else 0.03,
        test_ece_raw=None if reference else 0.09,
        train_time_s=10.0,
        predictions=str(path),
        reference=reference,
    )


def test_multi_label_rows_get_a_micro_f1_column_and_are_paired_with_the_reference(tmp_path):
    truth = ["db", "net|web", "", "db|web"] * 10
    results = [
        _multi_label_run(tmp_path, "gru", list(zip(truth, truth, strict=True))),
        _multi_label_run(tmp_path, "tfidf-svm", [(y, "db") for y in truth], reference=True),
    ]
    write_report(results, tmp_path)
    header = _header(tmp_path)
    assert "| tied with best | micro-F1 | micro-F1 95% CI | ECE | raw ECE | wall time |" in header
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "| tfidf-svm (reference) |" in markdown and "| 0.800 | " in markdown
    assert "test acc is subset accuracy" in markdown
    assert "count each label's hits" in markdown  # what its F1 CI is of
    assert "Left out of the statistics" not in markdown  # the label sets pair up
    rows = _rows(tmp_path)
    assert rows["tfidf-svm"]["tied_with_best"] == "no" and rows["gru"]["tied_with_best"] == "best"
    assert "has a higher test accuracy than the best encoder" not in markdown  # it is lower
    assert float(rows["gru"]["test_f1_micro_mean"]) == pytest.approx(0.8)
    assert "test_f1_micro" in _csv_columns(tmp_path / "runs.csv")


def test_multi_label_intervals_and_f1_test_are_of_the_per_label_scores(tmp_path):
    # Labels db, net, web, and os that no text has (the model's probabilities name it): the
    # macro-F1 mean counts it as 0, as torchmetrics does. The reference always says "db": F1 of
    # db 2·20/(40 + 20), of the others 0 → macro 1/6, micro 2·20/(40 + 50) = 4/9; subset
    # accuracy 1/4. As whole label sets it would be macro-F1 over 4 sets: (2/5 + 0 + 0 + 0)/4.
    truth = ["db", "net|web", "", "db|web"] * 10
    names = ["db", "net", "web", "os"]
    results = [
        _multi_label_run(tmp_path, "gru", list(zip(truth, truth, strict=True)), names=names),
        _multi_label_run(tmp_path, "tfidf-svm", [(y, "db") for y in truth], reference=True),
    ]
    write_report(results, tmp_path)
    rows = _rows(tmp_path)
    gru, svm = rows["gru"], rows["tfidf-svm"]
    assert (float(gru["f1_ci_low"]), float(gru["f1_ci_high"])) == (0.75, 0.75)  # os: F1 0
    assert (float(gru["f1_micro_ci_low"]), float(gru["f1_micro_ci_high"])) == (1.0, 1.0)
    assert float(svm["f1_ci_low"]) < 1 / 6 < float(svm["f1_ci_high"]) < 0.25
    assert float(svm["f1_micro_ci_low"]) < 4 / 9 < float(svm["f1_micro_ci_high"])
    assert float(svm["acc_ci_low"]) < 1 / 4 < float(svm["acc_ci_high"])
    assert float(svm["p_vs_best_f1"]) < 0.001  # per label far apart
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert (
        f"| {float(svm['f1_micro_ci_low']):.3f}–{float(svm['f1_micro_ci_high']):.3f} |" in markdown
    )


def test_the_runs_record_the_new_scores_and_old_results_files_still_load(tmp_path):
    run = RunResult("gru", 0)
    metrics = {"test/acc": 0.5, "test/f1_macro": 0.4, "test/f1_micro": 0.6, "test/ece": 0.02,
               "test/ece_raw": 0.08, "test/temperature": 1.3}  # fmt: skip
    run.add_test({"metrics": metrics, "examples": {"length": [3], "correct": [1]}})
    assert (run.test_acc, run.test_f1, run.test_f1_micro) == (0.5, 0.4, 0.6)
    assert (run.test_ece, run.test_ece_raw) == (0.02, 0.08)
    single = RunResult("gru", 0)
    single.add_test({"metrics": {"test/acc": 0.5, "test/f1_macro": 0.4},
                     "examples": {"length": [3], "correct": [1]}})  # fmt: skip
    assert (single.test_f1_micro, single.test_ece, single.test_ece_raw) == (None, None, None)

    # A results.json written before these scores existed: its runs load without them.
    old = {"encoder": "gru", "seed": 0, "status": "ok", "test_acc": 0.9, "test_f1": 0.88,
           "train_time_s": 12.0}  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps({"runs": [old], "encoders": []}))
    (loaded,) = load_results(tmp_path)
    assert loaded.test_acc == 0.9 and loaded.test_f1_micro is None and loaded.test_ece is None
    write_report([loaded], tmp_path / "again")  # and reports as before
    assert "ECE" not in _header(tmp_path / "again")


def test_a_class_name_with_a_bar_keeps_label_sets_whole_and_says_so(tmp_path):
    # "a|b" cannot be split into labels when a class is called "c|d": the sets stay classes.
    truth = ["a", "c|d", "", "a|c|d"] * 10
    names = ["a", "c|d"]
    results = [
        _multi_label_run(tmp_path, "gru", list(zip(truth, truth, strict=True)), names=names),
        _multi_label_run(tmp_path, "cnn", [(y, "a") for y in truth], names=names),
    ]
    write_report(results, tmp_path)
    markdown = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "label sets counted as whole classes: a class name holds '|'" in markdown
    assert "f1_micro_ci_low" not in _csv_columns(tmp_path / "comparison.csv")
