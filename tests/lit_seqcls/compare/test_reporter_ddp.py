"""The reporter's per-example test predictions under real DDP (2 CPU processes, gloo).

Run with ``pytest -m ddp``. Each rank tests its own share of the test set; the predictions file
must still hold every test example once, in input order, and equal a one-process test's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"
TINY = [
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--data.init_args.train_size=200", "--data.init_args.test_size=53",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--data.init_args.batch_size=16",
    "--model.embedding_dim=16", "--model.encoder.init_args.hidden_size=16",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]  # fmt: skip
DDP = ["--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml")]
REPORTER = "--trainer.callbacks+=lit_seqcls.compare.ComparisonReporter"

pytestmark = pytest.mark.ddp


def test_ddp_test_predictions_hold_every_example_once_as_on_one_process(tmp_path, run_cli):
    out = run_cli("fit", *TINY, "--trainer.max_epochs=1", cwd=tmp_path)
    ckpt = tmp_path / re.search(r"--ckpt_path (\S+\.ckpt)", out).group(1)
    rows = {}
    for name, extra in (("one", []), ("two", DDP)):
        run_dir = tmp_path / name
        args = [*TINY, *extra, REPORTER, f"--trainer.default_root_dir={run_dir}"]
        run_cli("test", *args, "--ckpt_path", str(ckpt), cwd=tmp_path)
        lines = (run_dir / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
        rows[name] = [json.loads(line) for line in lines]
    assert [r["index"] for r in rows["two"]] == list(range(53))
    assert [(r["label"], r["pred"]) for r in rows["two"]] == [
        (r["label"], r["pred"]) for r in rows["one"]
    ]


def test_ddp_epoch_events_count_the_validation_texts_of_every_rank(tmp_path, run_cli):
    events = {}
    for name, extra in (("one", []), ("two", DDP)):
        args = [*TINY, *extra, REPORTER, f"--trainer.default_root_dir={tmp_path / name}"]
        out = run_cli("fit", *args, "--trainer.max_epochs=1", cwd=tmp_path)
        lines = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("@@compare")]
        events[name] = [e for e in map(json.loads, lines) if e["event"] == "epoch"]
    assert [e["val_texts"] for e in events["one"]] == [20]  # 10% of 200 training texts
    assert [e["val_texts"] for e in events["two"]] == [20]  # both ranks' shards, once each
