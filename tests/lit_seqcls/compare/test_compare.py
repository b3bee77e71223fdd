"""``lit-seqcls compare``: a real two-encoder run with one failure, and the report on its own."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lit_seqcls.cli import main
from lit_seqcls.compare import PLOTS, RunResult, accuracy_by_length, load_results, write_report
from lit_seqcls.compare.runner import _parse
from lit_seqcls.encoders import ENCODERS

EPOCHS = ["--trainer.max_epochs", "2"]  # the space-separated form must pass through too


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_compare_runs_each_encoder_reports_a_failure_and_writes_table_and_plots(
    tmp_path, capsys, synthetic_config, tiny_synthetic
):
    # Encoder arguments go only to encoders that take them: the RNN gets hidden_size, the CNN
    # gets kernel_sizes, which this value makes it reject; the comparison goes on without it.
    out = tmp_path / "cmp"
    encoder_args = [
        "--model.encoder.init_args.hidden_size=8",
        "--model.encoder.init_args.kernel_sizes",
        "[0]",
    ]
    main(
        [
            "compare",
            "--config",
            synthetic_config,
            "--encoders",
            "cnn",
            "rnn",
            "--output_dir",
            str(out),
            *tiny_synthetic,
            *EPOCHS,
            *encoder_args,
        ]
    )
    printed = capsys.readouterr()
    assert "[2/2] rnn (seed 0): epoch 2/2" in printed.out
    assert "left)" in printed.out
    assert "[1/2] cnn (seed 0): fit failed" in printed.out

    rows = {r["encoder"]: r for r in _read_csv(out / "comparison.csv")}
    assert list(rows) == ["cnn", "rnn", "tfidf-svm"]
    assert rows["cnn"]["status"].startswith("seed 0: fit failed")
    assert rows["cnn"]["test_acc_mean"] == ""
    rnn = rows["rnn"]
    assert rnn["status"] == "ok"
    assert 0.0 <= float(rnn["test_acc_mean"]) <= 1.0
    assert 0.0 <= float(rnn["test_f1_mean"]) <= 1.0
    assert float(rnn["samples_per_s_mean"]) > 0 and float(rnn["tokens_per_s_mean"]) > 0
    assert int(rnn["encoder_params"]) == 2 * 8 * 8 + 2 * 8  # E = H = 8: W_ih, W_hh, two biases
    assert int(rnn["params"]) > int(rnn["encoder_params"])
    assert float(rnn["train_time_s_mean"]) > 0

    markdown = (out / "comparison.md").read_text()
    assert "| rnn |" in markdown and "| cnn |" in markdown and "fit failed" in markdown
    for name in PLOTS:
        assert (out / f"compare_{name}.png").stat().st_size > 10_000

    # Per-example test predictions, paired statistics, and the linear reference row.
    predictions = (out / "runs" / "rnn-seed0" / "test_predictions.jsonl").read_text()
    assert [json.loads(line)["index"] for line in predictions.splitlines()] == list(range(40))
    assert float(rnn["acc_ci_low"]) <= float(rnn["test_acc_mean"]) <= float(rnn["acc_ci_high"])
    assert rnn["tied_with_best"] == "best"  # the reference row is never the best
    reference = rows["tfidf-svm"]
    assert reference["reference"] == "True" and reference["status"] == "ok"
    assert (
        reference["tied_with_best"] in ("yes", "no", "no (higher)")
        and reference["p_vs_best_acc"] != ""
    )
    assert "| tfidf-svm (reference) |" in markdown and "Statistics: 95% CIs" in markdown

    (result,) = [r for r in load_results(out) if r.encoder == "rnn"]
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert {h["val_texts"] for h in result.history} == {16}  # 10% of 160 texts, every epoch
    # The history holds each epoch's own calibration, not the previous epoch's.
    logged = _read_csv(out / "runs" / "rnn-seed0" / "lightning_logs" / "version_0" / "metrics.csv")
    temperatures = [float(r["val/temperature"]) for r in logged if r.get("val/temperature")]
    assert [h["val/temperature"] for h in result.history] == pytest.approx(temperatures)
    assert len(result.lengths) == len(result.correct) == 40  # every test text, once
    assert sum(result.correct) / 40 == pytest.approx(result.test_acc, abs=1e-6)
    fit_log = (out / "runs" / "rnn-seed0" / "fit.log").read_text()
    assert "--seed_everything=0" in fit_log and "hidden_size=8" in fit_log
    assert "kernel_sizes" not in fit_log.splitlines()[0]
    cnn_log = (out / "runs" / "cnn-seed0" / "fit.log").read_text()
    assert "hidden_size" not in cnn_log.splitlines()[0] and "kernel_sizes must be" in cnn_log


def _result(encoder: str, seed: int, acc: float, ok: bool = True) -> RunResult:
    if not ok:
        return RunResult(encoder, seed, status="test failed (exit 1)")
    history = [
        {"epoch": e, "val/acc": acc - 0.1 / (e + 1), "val/loss": 1 / (e + 1)} for e in range(3)
    ]
    return RunResult(
        encoder,
        seed,
        status="ok",
        test_acc=acc,
        test_f1=acc - 0.05,
        train_time_s=10.0 + seed,
        params=1000,
        encoder_params=400,
        samples_per_s=100.0,
        tokens_per_s=3000.0,
        wall_time_s=20.0 + seed,
        time_to_best_s=5.0,
        peak_rss_mb=500.0 + 100 * seed,
        hardware={"cpu": "Test CPU", "cores": 2, "threads": 1, "device": "cpu"},
        history=history,
        lengths=[1, 5, 9, 30, 80, 120],
        correct=[1, 1, 1, 1, 0, int(acc > 0.8)],
    )


def test_report_gives_mean_and_std_over_seeds_and_keeps_partial_failures(tmp_path):
    results = [
        _result("lstm", 0, 0.90),
        _result("lstm", 1, 0.80),
        _result("lstm", 2, 0.70),
        _result("rnn", 0, 0.50),
        _result("rnn", 1, 0.0, ok=False),
    ]
    write_report(results, tmp_path, title="unit", command="lit-seqcls compare --seeds 0 1 2")
    rows = {r["encoder"]: r for r in _read_csv(tmp_path / "comparison.csv")}
    assert float(rows["lstm"]["test_acc_mean"]) == pytest.approx(0.80)
    assert float(rows["lstm"]["test_acc_std"]) == pytest.approx(0.10)  # sample std (n - 1)
    assert rows["lstm"]["test_acc"] == "0.800 ± 0.100"
    assert float(rows["lstm"]["train_time_s_mean"]) == pytest.approx(11.0)
    assert rows["rnn"]["status"] == "ok 1/2; seed 1: test failed (exit 1)"
    assert rows["rnn"]["test_acc"] == "0.500"  # one successful seed: no ± shown
    assert len(_read_csv(tmp_path / "runs.csv")) == 5
    markdown = (tmp_path / "comparison.md").read_text()
    # No per-example predictions in these records: no intervals, no tests.
    assert "| lstm | 0.800 ± 0.100 | — | 0.750 ± 0.100 | — | — | — |" in markdown
    assert "Mean ± std over 3 seeds" in markdown
    # Length buckets pool the seeds; the failed run is left out. The last bucket holds the
    # 120-token texts, right for lstm seeds 0 (0.9 > 0.8) only, and for no rnn run.
    buckets, accuracy = accuracy_by_length(results)
    assert buckets[-1][1] == 120 and list(accuracy) == ["lstm", "rnn"]
    assert accuracy["lstm"][-1] == pytest.approx(1 / 3) and accuracy["rnn"][-1] == 0.0
    assert "| lstm | " in markdown.split("Test accuracy by text length")[1]
    assert [r.test_acc for r in load_results(tmp_path)] == [0.9, 0.8, 0.7, 0.5, None]


def test_the_tables_show_what_each_run_cost_and_on_what_hardware(tmp_path):
    gpu = {
        "cpu": "Test CPU",
        "cores": 16,
        "threads": 16,
        "gpu": "NVIDIA H100",
        "peak_gpu_mem_mb": 42.0,
    }
    results = [
        _result("lstm", 0, 0.9),
        _result("lstm", 1, 0.8),
        replace(_result("cnn", 0, 0.7), hardware=gpu),
    ]
    write_report(results, tmp_path, title="unit")
    markdown = (tmp_path / "comparison.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| encoder"))
    for column in ("wall time", "time to best val", "params (encoder)", "peak memory", "tokens/s"):
        assert f"| {column} |" in header
    # Means over seeds: wall 20 and 21 s, best val at 5 s, peak 500 and 600 MB.
    assert "| 20 s | 5.0 s | 1,000 (400) | 550 MB | 3,000 | ok |" in markdown
    assert (
        "Hardware: Test CPU (2 cores), 1 thread per process; "
        "NVIDIA H100 GPU; Test CPU (16 cores), 16 threads per process." in markdown
    )
    runs = _read_csv(tmp_path / "runs.csv")
    assert [float(r["wall_time_s"]) for r in runs] == [20.0, 21.0, 20.0]
    assert runs[1]["time_to_best_s"] == "5.0" and runs[1]["peak_rss_mb"] == "600.0"
    assert runs[2]["peak_gpu_mem_mb"] == "42.0" and runs[2]["hardware"].startswith("NVIDIA H100")


def test_arguments_pass_through_to_fit_except_the_ones_compare_owns():
    options, passthrough = _parse(
        ["--config", "a.yaml", "--trainer.max_epochs", "3", "--seeds", "1", "2"]
    )
    assert options.config == ["a.yaml"] and options.seeds == [1, 2]
    assert passthrough == ["--trainer.max_epochs", "3"]
    assert options.encoders == list(ENCODERS)  # every encoder by default
    with pytest.raises(SystemExit):
        _parse(["--model.encoder=lit_seqcls.encoders.CNNEncoder"])
    with pytest.raises(SystemExit):
        _parse(["--encoders", "transformer"])


def test_compare_without_encoder_arguments_selects_the_encoder_class(
    tmp_path, synthetic_config, tiny_synthetic
):
    # A bare `--model.encoder=<class path>` is read as an encoder name (a string) and fails;
    # compare must select the class with `--model.encoder.class_path`.
    out = tmp_path / "cmp"
    args = ["--config", synthetic_config, "--encoders", "gru", *tiny_synthetic, *EPOCHS]
    main(["compare", *args, "--output_dir", str(out)])
    rows = {r["encoder"]: r for r in csv.DictReader((out / "comparison.csv").open())}
    assert rows["gru"]["status"] == "ok"


def test_report_shows_an_encoder_without_parameters_of_its_own(tmp_path):
    # swem pools the embeddings and owns no parameters: 0 is a count, not a missing value (the
    # table used to crash formatting it as None).
    results = [replace(_result("swem", seed, 0.7), encoder_params=0) for seed in (0, 1)]
    write_report(results, tmp_path, title="unit", command="lit-seqcls compare --encoders swem")
    assert _read_csv(tmp_path / "comparison.csv")[0]["encoder_params"] == "0"
    assert "| 1,000 (0) |" in (tmp_path / "comparison.md").read_text()


def test_report_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    # A run's status and folder are text; a spreadsheet would run one starting with "=" or "@".
    bad = RunResult("gru", 1, run_dir="@SUM(A1:A9)", status='=HYPERLINK("http://x","ok")')
    write_report([_result("gru", 0, 0.9), bad], tmp_path)
    rows = _read_csv(tmp_path / "runs.csv")
    assert rows[1]["status"] == "'" + bad.status and rows[1]["run_dir"] == "'@SUM(A1:A9)"
    assert rows[0]["test_acc"] == "0.9" and rows[0]["status"] == "ok"  # numbers stay numbers
