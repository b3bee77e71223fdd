"""Shared fixtures: tests run offline, write only under tmp_path, and leave no global state."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path, monkeypatch):
    # No test may reach the network or write outside tmp_path (HF caches, W&B runs, logs).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):  # not under ~/
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    # Subprocesses (DDP ranks, CLI runs) get one thread each: two ranks × two threads on two
    # cores made a tiny fit ~25x slower than one thread each.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    yield
    torch.random.set_rng_state(state)
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _quiet_datasets():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def _run_cli(*args: str, cwd, env: dict | None = None, timeout: int = 600) -> str:
    """``python -m lit_seqcls ARGS`` in a new process; its output, or a failure showing its tail."""
    result = subprocess.run(
        [sys.executable, "-m", "lit_seqcls", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    return out


def _wandb_run_ids(root: Path) -> list[str]:
    """The run id of every offline W&B run folder under ``root``/logs/wandb, in folder order.

    Folders are ``offline-run-<time>-<id>``; W&B adds ``-1``, ``-2`` when that name is taken
    (a resumed run that started within the same second as the first).
    """
    folders = sorted((root / "logs" / "wandb").glob("offline-run-*"))
    pattern = r"offline-run-\d{8}_\d{6}-([a-z0-9]+)(?:-\d+)?"
    return [re.fullmatch(pattern, folder.name).group(1) for folder in folders]


@pytest.fixture(scope="session")
def wandb_run_ids():
    """``root -> [run id of each offline W&B run folder under root/logs/wandb]``."""
    return _wandb_run_ids


@pytest.fixture(scope="session")
def run_cli():
    """Runs the CLI in a subprocess, the way a user's job (and Lightning's DDP launcher) does."""
    return _run_cli


@pytest.fixture
def cli_runs(monkeypatch) -> list:
    """The ``SeqClsCLI`` each in-process ``main([...])`` built, in order, to check what it did
    (its ``trainer``, ``model`` and ``datamodule``)."""
    from lit_seqcls import cli

    built: list = []

    class Recorded(cli.SeqClsCLI):
        def __init__(self, *args, **kwargs) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cli, "SeqClsCLI", Recorded)
    return built


@pytest.fixture
def cli_error(capsys):
    """Runs the CLI in this process, expects its one-block error (no traceback); returns it."""

    def run(args: list[str]) -> str:
        from lit_seqcls.cli import main

        with pytest.raises(SystemExit) as exit_:
            main(args)
        message = str(exit_.value.code)
        assert message.startswith("lit-seqcls: error: "), message
        assert "Traceback" not in capsys.readouterr().err
        return message

    return run


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture
def tiny_fit_args() -> list[str]:
    """CLI arguments of a seconds-long fit on synthetic data: a cnn, 120 texts of ~8 words."""
    return [
        "--config", str(CONFIGS / "data" / "synthetic.yaml"),
        "--config", str(CONFIGS / "model" / "cnn.yaml"),
        "--data.init_args.train_size=120", "--data.init_args.test_size=20",
        "--data.init_args.median_length=8", "--data.init_args.max_text_length=20",
        "--model.embedding_dim=8", "--model.encoder.init_args.num_filters=4",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    ]  # fmt: skip


@pytest.fixture
def tiny_wandb_fit_args(tiny_fit_args) -> list[str]:
    """``tiny_fit_args`` with the W&B logger (offline here)."""
    return [*tiny_fit_args, "--config", str(CONFIGS / "logger" / "wandb.yaml")]


TAG_WORDS = {"db": ["sql", "query", "index"], "net": ["tcp", "router"], "web": ["html", "css"]}


def _tag_rows(n: int, seed: int = 0, drop: float = 0.0) -> list[dict]:
    """Multi-label rows whose words tell their labels (some texts have none); ``drop``: the share
    of labelled texts that lose one label, so the words no longer separate the labels exactly."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = [name for name in TAG_WORDS if rng.random() < 0.4]
        words = [rng.choice(TAG_WORDS[name]) for name in labels for _ in range(2)]
        words += rng.choices(["the", "a", "of", "and"], k=3)
        rng.shuffle(words)
        if drop and labels and rng.random() < drop:
            labels.remove(rng.choice(labels))
        rows.append({"text": " ".join(words), "label": labels})
    return rows


@pytest.fixture
def tag_rows():
    """``tag_rows(n, seed=0, drop=0.0)``: multi-label rows over the labels of ``TAG_WORDS``."""
    return _tag_rows


def _validation_logits(model, datamodule) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's raw logits ``(N, C)`` and the labels of every validation text, in eval mode."""
    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            logits.append(model(batch.input_ids, batch.lengths).logits)
            labels.append(batch.labels)
    return torch.cat(logits), torch.cat(labels)


@pytest.fixture
def validation_logits():
    """``validation_logits(model, datamodule)``: what a one-process model sees on validation."""
    return _validation_logits


@pytest.fixture
def small_synthetic_kwargs() -> dict:
    """Arguments for a SyntheticDataModule small enough for a unit test (~1 s to prepare)."""
    return {
        "train_size": 240,
        "test_size": 60,
        "median_length": 12,
        "max_text_length": 40,
        "batch_size": 16,
        "seed": 3,
    }


def pytest_report_header(config):
    return f"torch {torch.__version__}, {os.cpu_count()} CPUs, threads {torch.get_num_threads()}"
