"""The issue's command for real (tiny data): a comparison killed mid-run and rerun ends with every
run equal to an uninterrupted one's, and the same command again trains nothing (fits counted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_seqcls.compare import runner
from lit_seqcls.compare.runs import FIT_DONE_FILE, RECORD_FILE, launches, read_record

pytestmark = pytest.mark.slow

RUNS = ["cnn-seed0", "cnn-seed1", "gru-seed0", "gru-seed1"]


@pytest.fixture
def command(synthetic_config, tiny_synthetic) -> list[str]:
    """The issue's command on tiny data, long enough (~500 steps) to be stopped mid-training."""
    return [
        "--config", synthetic_config, "--encoders", "cnn", "gru", "--seeds", "0", "1",
        "--trainer.max_epochs", "1", "--jobs", "2", *tiny_synthetic,
        "--data.init_args.train_size=4000", "--data.init_args.batch_size=8",
        "--model.encoder.init_args.hidden_size=8", "--model.encoder.init_args.num_filters=4",
        "--trainer.deterministic=true",
    ]  # fmt: skip


def _fits(out: Path) -> int:
    return sum(e["step"] == "fit" for run in RUNS for e in launches(out / "runs" / run))


def _predictions(run_dir: Path) -> list[dict]:
    path = run_dir / "test_predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _training(out: Path) -> bool:
    """Whether an unfinished run is in the middle of its training: Lightning's CSV logger
    first writes ``metrics.csv`` at step 100 (``flush_logs_every_n_steps``) of ~500."""
    fitting = [r for r in RUNS if not (out / "runs" / r / FIT_DONE_FILE).exists()]
    return any(list((out / "runs" / r).glob("lightning_logs/*/metrics.csv")) for r in fitting)


def test_a_killed_comparison_resumes_to_the_uninterrupted_results(tmp_path, command):
    killed = tmp_path / "killed"
    compare = subprocess.Popen(
        [sys.executable, "-m", "lit_seqcls", "compare", *command, "--output_dir", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the compare and its runs
    )
    deadline = time.monotonic() + 1200
    while not (list(killed.glob(f"runs/*/{RECORD_FILE}")) and _training(killed)):
        assert compare.poll() is None and time.monotonic() < deadline, compare.stdout.read()
        time.sleep(0.1)
    os.killpg(compare.pid, signal.SIGTERM)  # after the first run, in another one's training
    output = compare.communicate(timeout=600)[0]
    assert compare.returncode == 128 + signal.SIGTERM, output[-3000:]
    done = [r for r in RUNS if (killed / "runs" / r / RECORD_FILE).exists()]
    assert 1 <= len(done) < len(RUNS), output[-3000:]
    assert list(killed.glob("runs/*/**/interrupted.ckpt")), "no run was stopped mid-fit"

    runner.main([*command, "--output_dir", str(killed)])  # the same command: it completes
    reference = tmp_path / "uninterrupted"
    runner.main([*command, "--output_dir", str(reference)])
    for run in RUNS:
        resumed = read_record(killed / "runs" / run)
        straight = read_record(reference / "runs" / run)
        assert resumed.status == straight.status == "ok"
        assert resumed.test_acc == straight.test_acc and resumed.test_f1 == straight.test_f1
        assert resumed.correct == straight.correct
        assert _predictions(killed / "runs" / run) == _predictions(reference / "runs" / run)
    assert _fits(killed) > len(RUNS)  # some runs needed two fits

    fits = _fits(reference)
    runner.main([*command, "--output_dir", str(reference)])  # the same command again
    assert _fits(reference) == fits  # trained nothing
    assert "| gru |" in (reference / "comparison.md").read_text()
