"""Two CPU processes (DDP, gloo): one W&B run, every validation text counted exactly once.

Run with ``pytest -m ddp``; the CLI runs in new processes the way a user's job does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from callbacks import AttentionMapLogger
from datamodules import SyntheticDataModule

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
DATA = {"train_size": 330, "test_size": 53, "median_length": 10, "max_text_length": 30}
ARGS = [
    "fit",
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml"),
    "--config", str(CONFIGS / "logger" / "wandb.yaml"),
    "--config", str(CONFIGS / "callbacks" / "analysis.yaml"),
    *[f"--data.init_args.{k}={v}" for k, v in DATA.items()],
    "--data.init_args.batch_size=16", "--trainer.max_epochs=2",
    "--model.embedding_dim=16", "--model.encoder.init_args.hidden_size=16",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]  # fmt: skip

pytestmark = pytest.mark.ddp


@pytest.fixture(scope="module")
def ddp_fit(tmp_path_factory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("ddp")
    result = subprocess.run(
        [sys.executable, "-m", "lit_seqcls", *ARGS],
        cwd=workdir, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    return workdir, out


def _last_table(run_dir: Path, key: str) -> dict:
    files = sorted(
        (run_dir / "files" / "media" / "table").glob(f"{key}_[0-9]*.table.json"),
        key=lambda p: int(p.name[len(Path(key).name) + 1 :].split("_")[0]),
    )
    return json.loads(files[-1].read_text())


def test_one_job_is_one_wandb_run_and_other_ranks_write_nothing(ddp_fit):
    workdir, out = ddp_fit
    assert len(list(workdir.rglob("offline-run-*"))) == 1
    assert len(list(workdir.rglob("run-*.wandb"))) == 1
    assert [p.name for p in (workdir / "logs" / "lightning_logs").iterdir()] == ["version_0"]
    assert out.count("upload it later with: wandb sync") == 1


def test_the_confusion_matrix_counts_every_validation_text_once(ddp_fit):
    workdir, _ = ddp_fit
    (run_dir,) = workdir.rglob("offline-run-*")
    val_size = len(SyntheticDataModule(**DATA).splits["validation"])
    table = _last_table(run_dir, "val/confusion_matrix_counts")
    assert sum(sum(row[1:]) for row in table["data"]) == val_size  # not half, not more
    lengths = _last_table(run_dir, "val/accuracy_by_length_table")
    assert sum(row[lengths["columns"].index("texts")] for row in lengths["data"]) == val_size


def test_the_token_weight_examples_are_those_one_process_picks(ddp_fit):
    workdir, _ = ddp_fit
    (run_dir,) = workdir.rglob("offline-run-*")
    picked = [row[0] for row in _last_table(run_dir, "val/token_weights")["data"]]

    dm = SyntheticDataModule(**DATA, batch_size=16)
    alone = AttentionMapLogger()  # the defaults, as in configs/callbacks/analysis.yaml

    class _Trainer:
        sanity_checking, world_size = False, 1

    for batch in dm.val_dataloader():
        alone.on_validation_batch_end(_Trainer(), None, None, batch, 0)
    alone._select(_Trainer())
    assert picked == [ex["index"] for ex in alone.selected]
    assert torch.tensor(picked).unique().numel() == len(picked) == alone.num_examples
