"""A tiny checkpoint per encoder, written as ``lit-seqcls fit`` writes one (plain data, with its
text pipeline), without training: export must match whatever weights the network has."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY, TEXT_PIPELINE_VERSION
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.text.tokenization import tokenizer_json, train_word_tokenizer

ENCODER_ARGS = {
    "rnn": {"hidden_size": 8},
    "gru": {"hidden_size": 8},
    "lstm": {"hidden_size": 8},
    "bilstm": {"hidden_size": 8},
    "attention": {"hidden_size": 8, "attention_dim": 6},
    "cnn": {"num_filters": 4},  # kernels 3, 4, 5: wider than the shortest texts
    "swem": {},
}
CORPUS = [
    "a great film with a fine cast",
    "the plot was dull and far too long",
    "Loved it! <br /><br />Would watch again",
    "café crème, naïve résumé",
    "worst acting i have seen in years",
    "an ok movie",
]
CLASSES = ["neg", "pos", "meh"]
MAX_LENGTH = 12


def encoder_spec(name: str, args: dict | None = None) -> dict:
    from lit_seqcls.encoders import ENCODERS

    cls = ENCODERS[name]
    args = ENCODER_ARGS.get(name, {}) if args is None else args  # new encoder: its defaults
    return {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": args}


def write_checkpoint(
    path: Path,
    encoder: str = "gru",
    *,
    max_length: int | None = MAX_LENGTH,
    truncation_side: str = "right",
    strip_html: bool = True,
    seed: int = 0,
    extra: dict | None = None,
    encoder_args: dict | None = None,
) -> Path:
    """A checkpoint of an untrained model with a word tokenizer trained on ``CORPUS``."""
    tokenizer = train_word_tokenizer(CORPUS)
    torch.manual_seed(seed)
    model = SequenceClassifier(
        tokenizer.get_vocab_size(), len(CLASSES), encoder=encoder_spec(encoder, encoder_args),
        embedding_dim=8, dropout=0.0, class_names=CLASSES,
    )  # fmt: skip
    model.text_pipeline = {
        "version": TEXT_PIPELINE_VERSION,
        "tokenizer": tokenizer_json(tokenizer),
        "max_length": max_length,
        "truncation_side": truncation_side,
        "strip_html": strip_html,
        "class_names": CLASSES,
        "datamodule": "datamodules.TextDataModule",
    }
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        TEXT_PIPELINE_KEY: model.text_pipeline,
        **(extra or {}),
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers and constants above, for the test modules (conftest is not importable)."""
    return SimpleNamespace(
        write_checkpoint=write_checkpoint, CORPUS=CORPUS, CLASSES=CLASSES, MAX_LENGTH=MAX_LENGTH
    )


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return write_checkpoint(tmp_path / "model.ckpt")
