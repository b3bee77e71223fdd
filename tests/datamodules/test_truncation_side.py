"""`truncation_side`: which end of a long text is kept, carried by the checkpoint to `predict`."""

from __future__ import annotations

import json

import pytest
import torch

from datamodules import TextDataModule
from datamodules.pipeline import read_checkpoint_pipeline
from lit_seqcls.checkpoints import TEXT_PIPELINE_VERSION as PIPELINE_VERSION
from lit_seqcls.text.tokenization import tokenizer_json, train_word_tokenizer
from lit_seqcls.validation import ConfigValueError


@pytest.fixture
def train_file(tmp_path):
    rows = [{"text": f"opening words {i} then the verdict {w}", "label": w} for i, w in
            enumerate(["good", "bad"] * 10)]  # fmt: skip
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


@pytest.mark.parametrize(("side", "kept"), [("right", "opening words"), ("left", "verdict good")])
def test_the_datamodule_keeps_the_chosen_end(train_file, tmp_path, side, kept):
    dm = TextDataModule(
        data_files={"train": train_file},
        max_length=2,
        truncation_side=side,
        cache_dir=str(tmp_path / "cache"),
        val_fraction=0.5,
    )
    dm.prepare_data()
    dm.setup("fit")
    texts = [dm.tokenizer.decode(ids) for ids in dm._encoded["train"]["input_ids"]]
    assert all(len(t.split()) == 2 for t in texts)
    assert sum(t in (kept, kept.replace("good", "bad")) for t in texts) == len(texts)
    assert dm.text_pipeline["truncation_side"] == side


def test_an_unknown_side_is_refused_before_any_data_is_read(train_file):
    with pytest.raises(ConfigValueError, match="truncation_side must be one of"):
        TextDataModule(data_files={"train": train_file}, truncation_side="middle")


def _checkpoint(tmp_path, **pipeline):
    path = tmp_path / "model.ckpt"
    tokenizer = tokenizer_json(train_word_tokenizer(["a b c"]))
    base = {"tokenizer": tokenizer, "max_length": 4, "strip_html": False, "class_names": ["x", "y"]}
    torch.save({"text_pipeline": {**base, **pipeline}}, path)
    return path


def test_a_version_1_checkpoint_kept_the_first_tokens(tmp_path):
    assert read_checkpoint_pipeline(_checkpoint(tmp_path, version=1))["truncation_side"] == "right"


def test_a_damaged_side_in_a_checkpoint_is_refused_naming_the_field(tmp_path):
    path = _checkpoint(tmp_path, version=PIPELINE_VERSION, truncation_side="os.system")
    with pytest.raises(ValueError, match=r"model\.ckpt: text pipeline field 'truncation_side'"):
        read_checkpoint_pipeline(path)


def test_a_checkpoint_from_a_newer_pipeline_is_refused(tmp_path):
    path = _checkpoint(tmp_path, version=PIPELINE_VERSION + 1, truncation_side="left")
    with pytest.raises(ValueError, match="upgrade lit-seqcls"):
        read_checkpoint_pipeline(path)
