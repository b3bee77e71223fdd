"""Secrets from the environment never reach config.yaml, W&B, checkpoints or logs.

Measured with fake ``WANDB_API_KEY`` and ``HF_TOKEN``: nothing lit-seqcls, Lightning or W&B
(offline) writes holds them. What could still leak one is a user pasting it into an option (a
path, a run name): the CLI refuses such a configuration before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from lit_seqcls.cli import main
from lit_seqcls.runtime import AtomicCheckpointIO
from lit_seqcls.runtime.secrets import SecretInConfigError, find_secrets, secret_values

WANDB_KEY = "fake0wandb0api0key0" + "7" * 21  # W&B keys are 40 characters
HF_TOKEN = "hf_FakeTokenForTheSecretsTest0123"


@pytest.fixture(autouse=True)
def _fake_secrets(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)  # WANDB_MODE=offline (conftest) still wins
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    yield
    import wandb

    wandb.finish()


def _files_holding_secrets(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {name}" for name, value in
                      (("WANDB_API_KEY", WANDB_KEY), ("HF_TOKEN", HF_TOKEN))
                      if value.encode() in data]  # fmt: skip
    return found


def test_a_run_writes_no_secret_anywhere(tmp_path, capfd, tiny_wandb_fit_args):
    main(["fit", *tiny_wandb_fit_args, "--trainer.max_epochs=1"])
    import wandb

    wandb.finish()  # everything W&B writes is on disk before the scan
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    # What is scanned: the config, hparams, metrics, checkpoints, W&B's run file and logs.
    assert {"config.yaml", "hparams.yaml", "metrics.csv", "last.ckpt", "debug.log"} <= written
    assert any(name.endswith(".wandb") for name in written)
    assert _files_holding_secrets(tmp_path) == []
    out, err = capfd.readouterr()
    assert WANDB_KEY not in out + err and HF_TOKEN not in out + err


def test_a_secret_pasted_into_an_option_is_refused_before_anything_is_written(
    tmp_path, tiny_wandb_fit_args
):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *tiny_wandb_fit_args, f"--trainer.default_root_dir=runs/{HF_TOKEN}"])
    message = str(exit_.value.code)
    assert message.startswith("lit-seqcls: error: Refusing to write this configuration: ")
    assert "trainer.default_root_dir (the value of $HF_TOKEN)" in message
    assert HF_TOKEN not in message  # the message names the variable, never the value
    assert not (tmp_path / "runs").exists() and not (tmp_path / "logs").exists()


def test_a_checkpoint_holding_a_secret_is_not_written(tmp_path):
    checkpoint = {"state_dict": {"w": torch.ones(1)}, "hyper_parameters": {"note": WANDB_KEY}}
    with pytest.raises(SecretInConfigError, match=r"hyper_parameters\.note \(the value of"):
        AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "a.ckpt")
    assert not (tmp_path / "a.ckpt").exists()


def test_secrets_are_the_values_of_credential_variables():
    env = {
        "HF_TOKEN": HF_TOKEN, "WANDB_API_KEY": WANDB_KEY, "AWS_SECRET_ACCESS_KEY": "s" * 40,
        "GITHUB_TOKEN": "ghp_" + "x" * 36, "DB_PASSWORD": "hunter2hunter2",
        "TOKENIZERS_PARALLELISM": "false-but-long", "WANDB_IDENTITY_TOKEN_FILE": "/run/token",
        "HF_HOME": "/home/me/.cache/huggingface", "SHORT_TOKEN": "abc",
    }  # fmt: skip
    assert sorted(secret_values(env).values()) == [
        "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "GITHUB_TOKEN", "HF_TOKEN", "WANDB_API_KEY",
    ]  # fmt: skip
    assert find_secrets({"a": [{"b": f"x{HF_TOKEN}y"}]}, secret_values(env)) == [
        ("a[0].b", "HF_TOKEN")
    ]
