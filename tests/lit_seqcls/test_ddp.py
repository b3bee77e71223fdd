"""Real multi-process DDP on CPU (gloo, 2 processes): training, exact evaluation and prediction.

Run with ``pytest -m ddp``. Each test starts ``lit-seqcls`` in a new process group, the way a
user's job does, so rank-zero-only code paths and collectives are exercised for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
TINY = [
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--data.init_args.train_size=330", "--data.init_args.test_size=53",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--data.init_args.batch_size=16",
    "--model.embedding_dim=16", "--model.encoder.init_args.hidden_size=16",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]  # fmt: skip
DDP = ["--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml")]

pytestmark = pytest.mark.ddp


def _metrics(out: str) -> dict[str, float]:
    # Lightning's results table: "  test/acc   0.93...". The number must start with a digit, or
    # a warning that mentions "test/..." would match.
    number = r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    return {k: float(v) for k, v in re.findall(r"│?\s*(val/\S+|test/\S+)\s+│?\s*" + number, out)}


@pytest.fixture(scope="module")
def ddp_checkpoint(tmp_path_factory, run_cli) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("ddp")
    out = run_cli("fit", *TINY, *DDP, "--trainer.max_epochs=2", cwd=workdir)
    ckpt = re.search(r"--ckpt_path (\S+\.ckpt)", out).group(1)
    assert "Best checkpoint" in out and out.count("Best checkpoint") == 1  # rank zero only
    return workdir, workdir / ckpt


def test_ddp_fit_ends_on_every_rank_and_saves_a_checkpoint(ddp_checkpoint):
    _, ckpt = ddp_checkpoint
    assert ckpt.is_file()


def test_validation_metrics_do_not_depend_on_the_number_of_processes(ddp_checkpoint, run_cli):
    workdir, ckpt = ddp_checkpoint
    one = _metrics(run_cli("validate", *TINY, "--ckpt_path", str(ckpt), cwd=workdir))
    two = _metrics(run_cli("validate", *TINY, *DDP, "--ckpt_path", str(ckpt), cwd=workdir))
    assert {"val/acc", "val/f1_macro", "val/loss"} <= set(one)
    assert one.keys() == two.keys()
    for key in one:
        assert two[key] == pytest.approx(one[key], abs=1e-6), key


def test_test_metrics_with_token_budgets_are_equal_on_1_2_and_3_processes(ddp_checkpoint, run_cli):
    # 53 test texts (odd, not divisible by 2 or 3), batched by a token budget.
    workdir, ckpt = ddp_checkpoint
    budget = ["--data.init_args.max_tokens=60", "--ckpt_path", str(ckpt)]
    results = [
        _metrics(run_cli("test", *TINY, *budget, "--trainer.accelerator=cpu",
                         f"--trainer.devices={n}",
                         *(["--trainer.strategy=ddp"] if n > 1 else []), cwd=workdir))
        for n in (1, 2, 3)
    ]  # fmt: skip
    assert {"test/acc", "test/f1_macro", "test/loss"} <= set(results[0])
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key, value in results[0].items():
            assert other[key] == pytest.approx(value, abs=1e-6), key


def test_ddp_predict_writes_every_input_exactly_once_in_order(ddp_checkpoint, tmp_path, run_cli):
    workdir, ckpt = ddp_checkpoint
    output = tmp_path / "preds.jsonl"
    run_cli("predict", *TINY, *DDP, "--ckpt_path", str(ckpt), "--predictions.output", str(output),
         cwd=workdir)  # fmt: skip
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(53))


UNEVEN = """
import lightning as L, torch
from torch.utils.data import DataLoader
from lit_seqcls import SequenceClassifier, collate
from lit_seqcls.runtime import BatchTelemetry  # holds the check; the CLI adds it to every trainer

class Uneven(L.LightningDataModule):
    def train_dataloader(self):
        rank = self.trainer.global_rank
        rows = [{"input_ids": [2, 3], "label": 0}] * (4 + 2 * rank)  # rank 1 has more batches
        return DataLoader(rows, batch_size=2, collate_fn=collate)

trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False,
                    use_distributed_sampler=False, limit_val_batches=0,
                    callbacks=[BatchTelemetry()])
trainer.fit(SequenceClassifier(10, 2, encoder="cnn", embedding_dim=4), Uneven())
"""


def test_uneven_batch_counts_fail_fast_with_a_message_instead_of_hanging(tmp_path):
    script = tmp_path / "uneven.py"
    script.write_text(UNEVEN)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "different numbers of training batches (rank 0: 2, rank 1: 3)" in result.stderr
