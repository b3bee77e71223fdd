"""Two DDP processes (CPU, gloo): tokenization happens once and both ranks see one vocabulary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

COUNTING = """
import hashlib, os
from datamodules import TextDataModule

LOG = os.environ["COUNT_LOG"]


class CountingDataModule(TextDataModule):
    def _encode(self, split, fingerprint_):
        with open(LOG, "a") as f:
            f.write(f"encode {os.getpid()}\\n")
        return super()._encode(split, fingerprint_)

    def setup(self, stage=None):
        super().setup(stage)
        vocab = hashlib.sha256(repr(sorted(self.tokenizer.get_vocab().items())).encode())
        with open(LOG, "a") as f:
            f.write(f"vocab {os.getpid()} {self.trainer.global_rank} {vocab.hexdigest()}\\n")
"""

pytestmark = pytest.mark.ddp


def test_ddp_tokenizes_once_and_every_rank_has_the_same_vocabulary(tmp_path):
    (tmp_path / "counting_dm.py").write_text(COUNTING)
    rows = [{"text": f"{w} film {i % 13}", "label": w} for i, w in enumerate(["good", "bad"] * 60)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    log = tmp_path / "count.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "COUNT_LOG": str(log),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "offline",
    }
    result = subprocess.run(
        [sys.executable, "-m", "lit_seqcls", "fit", "--data", "counting_dm.CountingDataModule",
         "--data.data_files.train", "train.jsonl", "--data.batch_size", "8",
         "--config", str(CONFIGS / "model" / "cnn.yaml"), "--model.embedding_dim", "8",
         "--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml"), "--trainer.max_epochs", "1",
         "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    lines = [line.split() for line in log.read_text().splitlines()]
    encoders = {pid for kind, pid, *_ in lines if kind == "encode"}
    vocabs = {(rank, digest) for kind, _, rank, digest in (x for x in lines if x[0] == "vocab")}
    assert len(encoders) == 1  # one process tokenized (train + validation), once
    assert sum(1 for x in lines if x[0] == "encode") == 2
    assert {rank for rank, _ in vocabs} == {"0", "1"}
    assert len({digest for _, digest in vocabs}) == 1
    assert len(list((tmp_path / "hf" / "lit_seqcls" / "tokenizers").glob("*.json"))) == 1
