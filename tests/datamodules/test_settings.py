"""Numeric DataModule arguments are checked in the constructors, before any data is read.

Before: ``max_length=0`` trained on ``[UNK]`` alone, a negative one raised OverflowError inside
``tokenizers``, ``num_workers=-1`` failed in the DataLoader and ``num_filler_words=5000`` never
returned (there are 2,940 distinct made-up words).
"""

from __future__ import annotations

import sys

import pytest

from datamodules import SyntheticDataModule, TextDataModule
from lit_seqcls.cli import main
from lit_seqcls.validation import ConfigValueError

BAD_SHARED = [  # (argument, value, message): the arguments every DataModule takes
    ("max_length", 0, r"max_length must be a positive integer, got 0"),
    ("max_length", -5, r"max_length must be a positive integer, got -5"),
    ("batch_size", 0, r"batch_size must be a positive integer, got 0"),
    ("batch_size", 2.5, r"batch_size must be a positive integer, got 2\.5"),
    ("eval_batch_size", 0, r"eval_batch_size must be a positive integer, got 0"),
    ("max_tokens", -1, r"max_tokens must be a positive integer, got -1"),
    ("pool_size", 0, r"pool_size must be a positive integer, got 0"),
    ("pad_to_multiple_of", 0, r"pad_to_multiple_of must be a positive integer, got 0"),
    ("num_workers", -1, r"num_workers must be an integer >= 0, got -1"),
    ("seed", -3, r"seed must be an integer >= 0, got -3"),
    ("seed", True, r"seed must be an integer >= 0, got True"),
    ("val_fraction", 0.0, r"val_fraction must be a number in \(0, 1\), got 0\.0"),
    ("val_fraction", 1.0, r"val_fraction must be a number in \(0, 1\), got 1\.0"),
    ("val_fraction", float("nan"), r"val_fraction must be a number in \(0, 1\), got nan"),
    ("padding_noise", 1.0, r"padding_noise must be a number in \[0, 1\), got 1\.0"),
    ("max_vocab_size", 2, r"max_vocab_size=2 is out of range"),
    ("min_frequency", -1, r"min_frequency=-1 must be a whole number"),
]


@pytest.mark.parametrize(("argument", "value", "message"), BAD_SHARED)
def test_bad_shared_arguments_are_refused_by_name_before_any_data_is_read(argument, value, message):
    with pytest.raises(ConfigValueError, match=message):
        SyntheticDataModule(**{argument: value})
    with pytest.raises(ConfigValueError, match=message):  # not "never_read.jsonl does not exist"
        TextDataModule(data_files={"train": "never_read.jsonl"}, **{argument: value})


BAD_SYNTHETIC = [
    ("num_classes", 1, r"num_classes must be an integer >= 2, got 1"),
    ("train_size", 0, r"train_size must be a positive integer, got 0"),
    ("test_size", -1, r"test_size must be a positive integer, got -1"),
    ("median_length", 0, r"median_length must be a positive integer, got 0"),
    ("min_length", 40, r"need min_length <= median_length <= max_text_length, got 40 <= 30 <= 300"),
    ("length_spread", -0.5, r"length_spread must be a finite number >= 0, got -0\.5"),
    ("num_filler_words", 5_000, r"num_filler_words must be at most 2,940 .* got 5,000"),
]


@pytest.mark.parametrize(("argument", "value", "message"), BAD_SYNTHETIC)
def test_bad_synthetic_arguments_are_refused_by_name(argument, value, message):
    with pytest.raises(ConfigValueError, match=message):
        SyntheticDataModule(**{argument: value})


def test_unset_optional_limits_and_the_edges_of_each_range_are_accepted():
    dm = SyntheticDataModule(
        max_length=None, eval_batch_size=None, max_tokens=None, batch_size=1, num_workers=0,
        seed=0, val_fraction=0.999, padding_noise=0.0, min_frequency=0, num_filler_words=2_940,
    )  # fmt: skip
    assert dm.max_length is None and dm.eval_batch_size == 2


def test_the_cli_refuses_a_bad_setting_at_instantiation_before_reading_data(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    args = ["fit", "--data", "datamodules.TextDataModule", "--data.data_files.train",
            str(tmp_path / "never_read.jsonl"), "--data.init_args.delimiter", ";",
            "--data.init_args.max_length", "0", "--trainer.fast_dev_run=1"]  # fmt: skip
    with pytest.raises(SystemExit, match=r"max_length must be a positive integer, got 0"):
        main(args)
