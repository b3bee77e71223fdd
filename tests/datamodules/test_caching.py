"""Tokenizer and tokenized splits are built once and found again; a relevant change rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

import datamodules.base as base
from datamodules import TextDataModule
from lit_seqcls.text.tokenization import tokenizer_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def calls(monkeypatch):
    counts = {"encode": 0, "train": 0}
    encode, trainers = base.encode_split, dict(base.TRAINERS)

    def counting_encode(*args, **kwargs):
        counts["encode"] += 1
        return encode(*args, **kwargs)

    def counting(kind):
        def train(*args, **kwargs):
            counts["train"] += 1
            return trainers[kind](*args, **kwargs)

        return train

    monkeypatch.setattr(base, "encode_split", counting_encode)
    monkeypatch.setattr(base, "TRAINERS", {k: counting(k) for k in trainers})
    return counts


@pytest.fixture
def files(tmp_path):
    rows = [{"text": f"{w} film {i}", "label": w} for i, w in enumerate(["good", "bad"] * 30)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows))
    return {"train": str(train)}


def _prepared(files, **kwargs) -> TextDataModule:
    dm = TextDataModule(data_files=files, **{"batch_size": 8, **kwargs})
    _ = dm.vocab_size  # what the CLI links read first
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_second_run_trains_no_tokenizer_and_tokenizes_nothing(files, calls):
    first = _prepared(files)
    assert calls["train"] == 1 and calls["encode"] > 0
    calls.update(encode=0, train=0)
    second = _prepared(files)
    assert calls == {"encode": 0, "train": 0}
    assert tokenizer_json(second.tokenizer) == tokenizer_json(first.tokenizer)
    assert second._encoded["train"]["input_ids"] == first._encoded["train"]["input_ids"]


@pytest.mark.parametrize("source", ["files", "hub layout"])
def test_a_warm_start_reads_no_raw_split(files, source, monkeypatch):
    """The second start reads only cache entries: no split loaded, checked or re-read."""
    from datamodules import IMDBDataModule

    def make():
        if source == "files":
            return TextDataModule(data_files=files, batch_size=8)
        return IMDBDataModule(path=str(FIXTURES / "imdb"), batch_size=8)

    first = make()
    _ = first.vocab_size, first.num_classes
    first.prepare_data()
    first.setup("fit")

    def no_raw_read(self):
        raise AssertionError("a warm start loaded the raw splits")

    monkeypatch.setattr(TextDataModule, "load_splits", no_raw_read)
    second = make()
    assert (second.vocab_size, second.class_names) == (first.vocab_size, first.class_names)
    second.prepare_data()
    second.setup("fit")
    assert second.predict_split == first.predict_split
    assert second._encoded["train"]["input_ids"] == first._encoded["train"]["input_ids"]
    assert sum(len(b.labels) for b in second.train_dataloader()) == len(second._encoded["train"])


@pytest.mark.parametrize(
    "change",
    [
        {"max_length": 3},
        {"truncation_side": "left"},
        {"min_frequency": 2},
        {"tokenizer_type": "bpe"},
        {"lowercase": False},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_changed_setting_rebuilds(files, calls, change):
    _prepared(files)
    calls.update(encode=0, train=0)
    _prepared(files, **change)
    assert calls["encode"] > 0
    truncation_only = {"max_length", "truncation_side"} >= change.keys()  # not in the vocab
    assert calls["train"] == (0 if truncation_only else 1)


def test_changed_file_contents_rebuild_and_unrelated_settings_do_not(files, calls):
    _prepared(files)
    calls.update(encode=0, train=0)
    _prepared(files, batch_size=16, num_workers=0, pool_size=7)  # batching is not cached
    assert calls == {"encode": 0, "train": 0}
    with open(files["train"], "a") as f:
        f.write('\n{"text": "one more good film", "label": "good"}')
    _prepared(files)
    assert calls["train"] == 1 and calls["encode"] > 0


def test_cache_dir_is_used_and_holds_plain_files(files, tmp_path):
    _prepared(files, cache_dir=str(tmp_path / "mycache"))
    assert list((tmp_path / "mycache" / "tokenizers").glob("*.json"))
    assert list((tmp_path / "mycache" / "encoded").glob("*/dataset_dict.json"))


def test_cached_ids_are_the_tokenizers_own_in_any_number_of_chunks(tmp_path, monkeypatch):
    import datasets

    from datamodules import IMDBDataModule, pipeline
    from lit_seqcls.text.tokenization import UNK_ID

    dm = IMDBDataModule(path=str(FIXTURES / "imdb"), max_length=64, include_unsupervised=True)
    dm.prepare_data()
    dm.setup("fit")
    tok = dm.tokenizer
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 7)  # several chunks, the last one short
    for name, split in dm.splits.items():
        texts = [dm.normalize(t) for t in split["text"]]
        tok.enable_truncation(64)  # the ids before the fast path: the tokenizer alone
        before = [e.ids or [UNK_ID] for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
        assert dm._encoded[name]["input_ids"][:] == before
        chunked = pipeline.encode_split(split, tok, dm.normalize, 64)
        assert chunked["input_ids"][:] == before
        assert chunked["length"][:] == [len(ids) for ids in before]
        assert chunked["index"][:] == list(range(len(split)))
        # int32 ids survive into the Dataset (Arrow type and features), and to disk
        assert chunked.features["input_ids"] == datasets.List(datasets.Value("int32"))
        assert chunked.data.schema.field("input_ids").type == pa.list_(pa.int32())
        assert chunked.data.schema.field("length").type == pa.int32()
        chunked.save_to_disk(str(tmp_path / name))
        again = datasets.load_from_disk(str(tmp_path / name))
        assert again.data.schema.field("input_ids").type == pa.list_(pa.int32())
        if "label" in split.column_names:
            assert chunked["label"][:] == split["label"][:]
            assert chunked.features["label"] == split.features["label"]
