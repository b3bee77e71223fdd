"""The real-text tables in README and docs are generated from committed comparisons (#17)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lit_seqcls.compare.predictions import PREDICTIONS_FILE, read_predictions

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("real_text", ROOT / "benchmarks" / "real_text.py")
real_text = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_text)


def _run(encoder, seed, correct, lengths, **extra):
    return {
        "encoder": encoder,
        "seed": seed,
        "status": "ok",
        "test_acc": float(np.mean(correct)),
        "test_f1": float(np.mean(correct)),
        "correct": list(correct),
        "lengths": list(lengths),
        "wall_time_s": extra.pop("wall", 100.0),
        **extra,
    }


def _results():
    rng = np.random.default_rng(0)
    n = 200
    lengths = rng.integers(10, 800, n)
    good = (rng.random(n) < 0.9).astype(int)
    poor = (rng.random(n) < 0.6).astype(int)
    runs = [
        _run("rnn", 0, poor, np.minimum(lengths, 400), wall=50.0),
        _run(
            "lstm",
            0,
            good,
            np.minimum(lengths, 400),
            test_ece_raw=0.05,
            test_ece=0.01,
            history=[
                {
                    "epoch": 0,
                    "val/acc": 0.80,
                    "val/ece_raw": 0.09,
                    "val/ece": 0.03,
                    "val/temperature": 1.5,
                },
                {
                    "epoch": 1,
                    "val/acc": 0.90,
                    "val/ece_raw": 0.04,
                    "val/ece": 0.02,
                    "val/temperature": 1.25,
                },
                {
                    "epoch": 2,
                    "val/acc": 0.90,
                    "val/ece_raw": 0.07,
                    "val/ece": 0.01,
                    "val/temperature": 2.0,
                },
            ],
        ),
        _run("cnn", 0, poor, lengths, wall=10.0),
        {**_run("tfidf-svm", 0, good, lengths, reference=True), "correct": [], "lengths": []},
    ]
    encoders = [{"encoder": "lstm", "acc_ci_low": 0.85, "acc_ci_high": 0.93}]
    return {"runs": runs, "encoders": encoders, "statistics": {}}


def test_table_shows_each_row_against_the_write_up():
    text = real_text.table("imdb", _results())
    lines = text.splitlines()
    assert lines[0].startswith("| encoder | test acc | 95% CI |") and "write-up" in lines[0]
    lstm = next(line for line in lines if line.startswith("| lstm "))
    assert "0.850–0.930" in lstm and "0.847" in lstm and "0.050 → 0.010" in lstm
    rnn = next(line for line in lines if line.startswith("| rnn "))
    assert "0.782" in rnn and ("yes" in rnn or "**no**" in rnn)
    assert any(line.startswith("| tfidf-svm (TF-IDF + LinearSVC) ") for line in lines)
    # no write-up for 20 Newsgroups: no such columns
    assert "write-up" not in real_text.table("newsgroups", _results()).splitlines()[0]


def test_claims_give_paired_tests_on_the_same_texts():
    lines = real_text.claims(_results())
    cnn = next(line for line in lines if "CNNs are fastest" in line)
    assert "cnn is #1 of 3 by wall time" in cnn and "cnn − lstm:" in cnn
    gated = next(line for line in lines if "Gated RNNs" in line)
    lengths = np.array(_results()["runs"][2]["lengths"])  # cnn's: it kept every token
    cut = int(np.quantile(lengths, 0.8))
    assert f"texts: {int((lengths >= cut).sum()):,} of at least {cut} tokens)" in gated
    assert "lstm − rnn:" in gated
    good, poor = (
        np.array(_results()["runs"][1]["correct"]),
        np.array(_results()["runs"][0]["correct"]),
    )
    d, p, test = real_text.paired(good[None], poor[None])
    assert d == pytest.approx(good.mean() - poor.mean()) and p < 1e-6 and test == "McNemar exact"


def test_calibration_table_reads_the_tested_checkpoints_epoch():
    lines = real_text.calibration(_results()).splitlines()
    assert len(lines) == 3  # head, rule, lstm: the runs without test ECE have no row
    # The best val/acc is epoch 1 (epoch 2 ties it; ModelCheckpoint keeps the first).
    acc = _results()["runs"][1]["test_acc"]
    assert (
        lines[2]
        == f"| lstm | 0 | {acc:.3f} | 0.900 | 1.250 | 0.040 → 0.020 | 0.050 → 0.0100 | yes |"
    )
    missed = _results()
    missed["runs"][1]["test_ece"] = 0.021
    assert real_text.calibration(missed).splitlines()[2].endswith("| **no** |")


def test_replace_renews_only_the_marked_block():
    text = "a\n<!-- real-text:imdb -->\nold\n<!-- /real-text:imdb -->\nb\n"
    new = real_text.replace(text, {"imdb": "new table", "claims": "x"})
    assert new == "a\n<!-- real-text:imdb -->\nnew table\n<!-- /real-text:imdb -->\nb\n"
    assert real_text.replace(new, {"imdb": "new table"}) == new
    empty = "<!-- real-text:imdb -->\n<!-- /real-text:imdb -->\n"  # a block not generated yet
    assert (
        real_text.replace(empty, {"imdb": "t"})
        == "<!-- real-text:imdb -->\nt\n<!-- /real-text:imdb -->\n"
    )


def test_the_committed_tables_are_generated_from_the_committed_results():
    if not real_text.blocks():
        pytest.skip("no docs/results/<dataset>/results.json committed yet")
    assert real_text.main(["--check"]) == 0


def test_kept_runs_are_of_the_shipped_configs_and_their_predictions_give_their_scores():
    """The finished runs kept in the repository (``benchmarks/keep_runs.py``), which a later
    ``compare`` reuses, ran the configs shipped now, and their predictions are their scores."""
    kept = sorted(ROOT.glob("docs/results/*/runs/*/result.json"))
    shipped = ROOT / "lit_seqcls" / "configs"
    for path in kept:
        record = json.loads(path.read_text(encoding="utf-8"))
        for config in record["command"]["configs"]:
            name = config["path"].split("lit_seqcls/configs/")[-1]
            now = hashlib.sha256((shipped / name).read_bytes()).hexdigest()
            assert now == config["sha256"], (
                f"{path.parent.name} ran {name} as it was then, and the shipped file has changed "
                "since: its results no longer describe the shipped settings. Run it again, or "
                f"remove {path.parent} and the tables built from it."
            )
        _, labels, preds = read_predictions(path.parent / PREDICTIONS_FILE)
        accuracy = np.mean(np.array(labels) == np.array(preds))
        assert accuracy == pytest.approx(record["result"]["test_acc"], abs=1e-6), path
