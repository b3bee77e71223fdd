"""What the compare tests share: the synthetic data config, the arguments that make a comparison
of it tiny, and the stand-in ``lit-seqcls`` that counts fits (``fake_lit_seqcls.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lit_seqcls.compare import execution

SYNTHETIC = str(Path(__file__).resolve().parents[3] / "configs" / "data" / "synthetic.yaml")
FAKE = Path(__file__).with_name("fake_lit_seqcls.py")


@pytest.fixture(scope="session")
def synthetic_config() -> str:
    """The shipped synthetic data config (the keyword task), as ``--config`` takes it."""
    return SYNTHETIC


@pytest.fixture(scope="session")
def tiny_synthetic() -> tuple[str, ...]:
    """``fit`` overrides that make a run on ``synthetic_config`` take seconds: 160 training and
    40 test texts of about 8 words, embedding 8. Tests add encoders, seeds and epochs (later
    arguments win, e.g. ``--data.init_args.train_size=4000``)."""
    return (
        "--data.init_args.train_size=160",
        "--data.init_args.test_size=40",
        "--data.init_args.median_length=8",
        "--data.init_args.max_text_length=20",
        "--model.embedding_dim=8",
    )


@pytest.fixture
def fits(monkeypatch, tmp_path):
    """Runs and tuning trials use the stand-in ``lit-seqcls``; returns a function giving the fits
    started so far, one ``"<encoder class> <seed> <--ckpt_path>"`` line each."""
    monkeypatch.setattr(execution, "PROGRAM", (sys.executable, str(FAKE)))
    counter = tmp_path / "fits.txt"
    monkeypatch.setenv("FAKE_FIT_COUNTER", str(counter))
    return lambda: counter.read_text().splitlines() if counter.exists() else []
