"""The offline-aware W&B logger, the full config in wandb.config, and resuming the same run."""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from lit_seqcls.cli import main
from lit_seqcls.runtime.wandb_logger import (
    CONFIG_FILE,
    RUN_ID_KEY,
    WandbLogger,
    WandbRunId,
    _reachable,
    resumed_run_id,
)


@pytest.fixture(autouse=True)
def _wandb_isolated(tmp_path, monkeypatch):
    for name in ("DATA_DIR", "CACHE_DIR", "CONFIG_DIR"):
        monkeypatch.setenv(f"WANDB_{name}", str(tmp_path / f"wandb_{name.lower()}"))
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    yield
    import wandb

    wandb.finish()  # an open run would be reused by the next test's logger


@pytest.fixture
def no_mode_no_key(tmp_path, monkeypatch):
    """The user's situation: no WANDB_MODE, no key, no ~/.netrc."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sync_line(caplog) -> str:
    lines = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    return lines[0]


def test_no_credentials_means_offline_with_one_sync_line(no_mode_no_key, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    logger = WandbLogger(save_dir=str(tmp_path / "logs"))
    start = time.monotonic()
    run = logger.experiment
    assert time.monotonic() - start < 30
    assert run.settings.mode == "offline"
    run_dir = Path(run.dir).parent
    line = _sync_line(caplog)
    assert "no W&B credentials" in line and f"wandb sync {run_dir}" in line
    assert run_dir.parent == tmp_path / "logs" / "wandb"


def test_unreachable_server_means_offline_without_waiting(no_mode_no_key, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    assert not _reachable(url, timeout=1.0)
    start = time.monotonic()
    run = WandbLogger(save_dir="logs").experiment
    assert time.monotonic() - start < 30  # W&B alone would wait init_timeout (90 s)
    assert run.settings.mode == "offline"
    assert f"cannot reach {url}" in _sync_line(caplog)


def test_a_failing_wandb_init_falls_back_to_offline(no_mode_no_key, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    import wandb

    calls = []

    def init(**kwargs):
        calls.append(kwargs.get("mode"))
        if kwargs.get("mode") != "offline":
            raise wandb.errors.CommError("server said no")
        return real_init(**kwargs)

    real_init = wandb.init
    monkeypatch.setattr(wandb, "init", init)
    run = WandbLogger(save_dir="logs", mode="online").experiment
    assert calls == [None, "offline"] and run.settings.mode == "offline"
    assert "server said no" in _sync_line(caplog)


def test_the_network_is_checked_once_when_the_logger_is_built(no_mode_no_key, monkeypatch):
    import wandb

    checks = []
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setattr(
        "lit_seqcls.runtime.wandb_logger._reachable", lambda *a: checks.append(a) or False
    )
    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        raise InterruptedError("stand-in for wandb.init")

    monkeypatch.setattr(wandb, "init", init)
    logger = WandbLogger(save_dir="logs", init_timeout=7)
    assert len(checks) == 1 and not calls  # decided up front; no run started yet
    with pytest.raises(InterruptedError):  # offline already: not retried
        logger.experiment  # noqa: B018
    ((kwargs,),) = [calls]
    assert kwargs["mode"] == "offline" and kwargs["settings"].init_timeout == 7
    assert kwargs["dir"] == str(Path("logs").resolve()) and logger.save_dir == "logs"
    assert "anonymous" not in kwargs  # deprecated in wandb, and Lightning always passes it
    assert len(checks) == 1


def test_a_rank_other_than_zero_checks_nothing(no_mode_no_key, monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    monkeypatch.setattr(
        "lit_seqcls.runtime.wandb_logger._credentials_found", lambda *a: pytest.fail("checked")
    )
    WandbLogger(save_dir="logs")


def test_resumed_run_id_reads_the_checkpoint_or_the_requeue_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "a.ckpt"
    torch.save({RUN_ID_KEY: "abc123", "state_dict": {}}, ckpt)
    assert resumed_run_id(ckpt, tmp_path) == resumed_run_id(str(ckpt), tmp_path) == "abc123"
    torch.save({"state_dict": {}}, tmp_path / "b.ckpt")  # written without a W&B logger
    assert resumed_run_id(tmp_path / "b.ckpt", tmp_path) is None
    assert resumed_run_id(tmp_path / "missing.ckpt", tmp_path) is None
    assert resumed_run_id("last", tmp_path) is None
    # A requeued SLURM job: Lightning resumes the highest hpc_ckpt_N.ckpt in default_root_dir.
    for n, run_id in [(2, "older"), (10, "newest")]:
        torch.save({RUN_ID_KEY: run_id}, tmp_path / f"hpc_ckpt_{n}.ckpt")
    assert resumed_run_id(None, tmp_path) is None  # not on SLURM: Lightning starts afresh
    assert resumed_run_id("hpc", tmp_path) == "newest"
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert resumed_run_id(None, tmp_path) == "newest"
    assert resumed_run_id(None, tmp_path / "elsewhere") is None


def test_every_cli_trainer_gets_wandb_run_id_a_no_op_without_wandb():
    from lit_seqcls.cli import cli_kwargs

    (callback,) = [
        c for c in cli_kwargs()["trainer_defaults"]["callbacks"] if isinstance(c, WandbRunId)
    ]
    checkpoint: dict = {}
    callback.on_save_checkpoint(L.Trainer(logger=False), None, checkpoint)
    assert checkpoint == {}  # a no-op without a W&B logger


def test_cli_sends_the_nested_config_and_resume_continues_the_same_run(
    tmp_path, tiny_wandb_fit_args, wandb_run_ids
):
    import wandb

    main(["fit", *tiny_wandb_fit_args, "--trainer.max_epochs=1"])
    run = wandb.run
    config = run.config.as_dict()
    assert config["model"]["embedding_dim"] == 8
    assert config["data"]["init_args"]["train_size"] == 120
    assert "vocab_size" not in config and "embedding_dim" not in config  # no flat duplicates
    saved = Path(run.dir) / CONFIG_FILE
    assert "train_size: 120" in saved.read_text()
    first_id = run.id
    wandb.finish()

    (last,) = (tmp_path / "logs" / "lightning_logs").glob("version_0/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)[RUN_ID_KEY] == first_id
    main(["fit", *tiny_wandb_fit_args, "--trainer.max_epochs=2", "--ckpt_path", str(last)])
    assert wandb.run.id == first_id
    wandb.finish()
    assert wandb_run_ids(tmp_path) == [first_id, first_id]
    # config.yaml holds the command as given: running it again does not continue the run.
    resumed_config = tmp_path / "logs" / "lightning_logs" / "version_1" / "config.yaml"
    assert first_id not in resumed_config.read_text()

    main(["fit", *tiny_wandb_fit_args, "--trainer.max_epochs=1"])  # no checkpoint: a new run
    assert wandb.run.id != first_id


def test_log_model_uploads_the_best_checkpoint_not_last_ckpt_of_every_epoch(
    tmp_path, tiny_wandb_fit_args
):
    import wandb

    # lr 0: val/acc never improves after epoch 0, so the best checkpoint stays epoch 0's while
    # last.ckpt is written after every epoch. Uploaded after it, last.ckpt would take `best`.
    loggers = [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "logs"}},
        {"class_path": "lit_seqcls.runtime.WandbLogger", "init_args": {"log_model": True}},
    ]
    config = tmp_path / "log_model.yaml"
    config.write_text(yaml.safe_dump({"trainer": {"logger": loggers}}))
    args = ["--config", str(config), "--model.optimizer.init_args.lr=0", "--trainer.max_epochs=2"]
    main(["fit", *tiny_wandb_fit_args, *args])
    wandb.finish()
    staged = list((tmp_path / "wandb_data_dir").rglob("staging/*"))
    assert [torch.load(p, weights_only=True)["epoch"] for p in staged] == [0]
