"""The console of ``fit`` and ``test``: progress and the phases, none of Lightning's noise."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from lit_seqcls.console import NOISE, quiet_console

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--config", str(ROOT / "configs" / "data" / "synthetic.yaml"),
    "--config", str(ROOT / "configs" / "model" / "cnn.yaml"),
    "--data.init_args.train_size=200", "--data.init_args.test_size=40",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--model.embedding_dim=16",
]  # fmt: skip
# What a user could not act on (lit_seqcls/console.py says why each is noise).
NEVER = [
    "No seed found",  # no warning: the CLI's default seed is 0
    "tensorboardX",
    "litlogger",
    "💡 Tip",
    "dirpath has changed",  # at every `test --ckpt_path`
    "exists and is not empty",
    "LeafSpec",
]


def test_fit_and_test_print_progress_and_phases_only(tmp_path, run_cli):
    fit = run_cli("fit", *TINY, "--trainer.max_epochs=2", cwd=tmp_path)
    (best,) = tmp_path.glob("logs/lightning_logs/version_0/checkpoints/epoch*.ckpt")
    config = tmp_path / "logs" / "lightning_logs" / "version_0" / "config.yaml"
    test = run_cli("test", "--config", str(config), "--ckpt_path", str(best), cwd=tmp_path)
    for console in (fit, test):
        assert [line for line in console.splitlines() if any(n in line for n in NEVER)] == []
    assert "Seed set to 0" in fit and "Epoch 1" in fit and "Best checkpoint" in fit  # progress
    assert "test/acc" in test


def test_quiet_console_restores_the_filters_and_loggers():
    filters = list(warnings.filters)
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch.utilities.rank_zero",)]
    with quiet_console():
        assert len(warnings.filters) == len(filters) + len(NOISE)
    assert warnings.filters == filters and all(not logger.filters for logger in loggers)
