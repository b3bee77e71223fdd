"""The DataModule contract, run over every shipped DataModule (as the encoders' contract is).

Each case builds its source on tiny local files (the hub sources on the fixtures in the hub's
layout) with its own cache, and checks what the model and the trainer rely on: the batch schema,
disjoint splits, the same data for the same seed, DDP sharding (two simulated ranks, no
processes) and a warm start from the cache that rebuilds nothing and gives the same ids.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import datamodules
from datamodules import (
    IMDBDataModule,
    NewsgroupsDataModule,
    SyntheticDataModule,
    TextClassificationDataModule,
    TextDataModule,
)
from lit_seqcls.batch import PAD_ID, Batch
from lit_seqcls.text import BucketBatchSampler, tokenizer_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COMMON = {"batch_size": 8, "seed": 3}
EVAL_SPLITS = ("validation", "test")


def _synthetic(tmp_path: Path, **kwargs) -> TextClassificationDataModule:
    return SyntheticDataModule(
        train_size=80,
        test_size=30,
        median_length=8,
        max_text_length=20,
        num_filler_words=100,
        **kwargs,
    )


def _text(tmp_path: Path, **kwargs) -> TextClassificationDataModule:
    files = {}
    for split, n in (("train", 60), ("test", 18)):
        rows = [
            {"text": f"{split} text {i} is {('good', 'bad', 'so so')[i % 3]}" + " word" * (i % 7),
             "label": ("good", "bad", "so so")[i % 3]}
            for i in range(n)
        ]  # fmt: skip
        path = tmp_path / f"{split}.jsonl"
        if not path.exists():
            path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        files[split] = str(path)
    return TextDataModule(data_files=files, **kwargs)


def _imdb(tmp_path: Path, **kwargs) -> TextClassificationDataModule:
    return IMDBDataModule(path=str(FIXTURES / "imdb"), **kwargs)


def _newsgroups(tmp_path: Path, **kwargs) -> TextClassificationDataModule:
    return NewsgroupsDataModule(path=str(FIXTURES / "20_newsgroups"), **kwargs)


SOURCES: dict[str, tuple[type, Callable[..., TextClassificationDataModule]]] = {
    "synthetic": (SyntheticDataModule, _synthetic),
    "text": (TextDataModule, _text),
    "imdb": (IMDBDataModule, _imdb),
    "newsgroups": (NewsgroupsDataModule, _newsgroups),
}


def _build(name: str, tmp_path: Path, cache: str = "cache", **kwargs):
    """The source ``name`` with ``COMMON`` settings and its cache under ``tmp_path/cache``."""
    make = SOURCES[name][1]
    return make(tmp_path, **{**COMMON, "cache_dir": str(tmp_path / cache), **kwargs})


def _rows(dm: TextClassificationDataModule, split: str) -> dict[int, list[int]]:
    """Row index → the ids the loader serves for it (evaluation order, every row once)."""
    loader = dm.val_dataloader() if split == "validation" else dm.test_dataloader()
    return {
        int(i): ids[:length].tolist()
        for batch in loader
        for i, ids, length in zip(batch.index, batch.input_ids, batch.lengths, strict=True)
    }


def _sharded(sampler: BucketBatchSampler, rank: int, world: int = 2) -> BucketBatchSampler:
    """``sampler`` as rank ``rank`` of ``world`` builds it (what Lightning's DDP re-creation
    leaves: the same plan settings, its rank and world size)."""
    return BucketBatchSampler(
        sampler.lengths,
        batch_size=sampler.batch_size,
        max_tokens=sampler.max_tokens,
        shuffle=sampler.shuffle,
        pool_size=sampler.pool_size,
        padding_noise=sampler.padding_noise,
        seed=sampler.seed,
        num_replicas=world,
        rank=rank,
    )


def test_every_shipped_datamodule_is_in_the_contract():
    shipped = {
        cls
        for name in datamodules.__all__
        if inspect.isclass(cls := getattr(datamodules, name))
        and issubclass(cls, TextClassificationDataModule)
        and cls is not TextClassificationDataModule
    }
    assert shipped == {cls for cls, _ in SOURCES.values()}


@pytest.fixture(params=sorted(SOURCES))
def source(request) -> str:
    return request.param


def test_batches_have_the_batch_schema(source, tmp_path):
    dm = _build(source, tmp_path)
    dm.setup()
    loaders = {
        "train": dm.train_dataloader(),
        "validation": dm.val_dataloader(),
        "test": dm.test_dataloader(),
    }
    for split, loader in loaders.items():
        rows = len(dm.splits[split])
        for batch in loader:
            assert isinstance(batch, Batch)
            assert batch.input_ids.dtype == batch.lengths.dtype == torch.long
            assert batch.labels.dtype == batch.index.dtype == torch.long
            size, width = batch.input_ids.shape
            assert batch.lengths.shape == batch.labels.shape == batch.index.shape == (size,)
            assert 1 <= size <= (dm.batch_size if split == "train" else dm.eval_batch_size)
            assert batch.lengths.min() >= 1 and batch.lengths.max() == width
            assert dm.max_length is None or width <= dm.max_length
            mask = batch.mask
            assert (batch.input_ids[~mask] == PAD_ID).all(), f"{split}: padding is not {PAD_ID}"
            assert (batch.input_ids[mask] != PAD_ID).all(), f"{split}: a real token has id 0"
            assert (batch.input_ids < dm.vocab_size).all()
            assert ((batch.labels >= 0) & (batch.labels < dm.num_classes)).all()
            assert ((batch.index >= 0) & (batch.index < rows)).all()


def test_splits_are_disjoint_and_each_evaluation_row_is_served_once(source, tmp_path):
    dm = _build(source, tmp_path)
    raw = dm.load_splits()
    texts = {split: dm.texts(split) for split in ("train", *EVAL_SPLITS)}
    # Row by row, as multisets (real data repeats some texts, e.g. empty posts): the carved
    # validation split and train partition the source's train split; test is the source's own.
    assert "validation" not in raw, "every source here has its validation split carved"
    carved = Counter(texts["train"]) + Counter(texts["validation"])
    assert carved == Counter(raw["train"]["text"]), f"{source}: a row is in both, or lost"
    assert Counter(texts["test"]) == Counter(raw["test"]["text"])
    dm.setup()
    for split in EVAL_SPLITS:
        assert sorted(_rows(dm, split)) == list(range(len(texts[split])))
    served = Counter(int(i) for batch in dm.train_dataloader() for i in batch.index)
    assert served == Counter(range(len(texts["train"]))), "one process: every row once"


def test_the_same_seed_gives_the_same_data(source, tmp_path):
    # Separate caches, so the second module builds everything again instead of reading it.
    first, again = _build(source, tmp_path, "a"), _build(source, tmp_path, "b")
    other = _build(source, tmp_path, "c", seed=COMMON["seed"] + 1)
    for dm in (first, again):
        dm.setup()
    assert tokenizer_json(first.tokenizer) == tokenizer_json(again.tokenizer)
    for split in ("train", *EVAL_SPLITS):
        assert first.texts(split) == again.texts(split)
    for split in EVAL_SPLITS:
        assert _rows(first, split) == _rows(again, split)
    plans = [dm.train_dataloader().batch_sampler.global_plan(epoch=1) for dm in (first, again)]
    assert plans[0] == plans[1]
    # Another seed draws another validation split (every source here carves one from train);
    # reading the splits builds no tokenizer.
    assert first.texts("validation") != other.texts("validation")


def test_two_ranks_get_equal_disjoint_shards_that_cover_each_split(source, tmp_path):
    dm = _build(source, tmp_path)
    dm.setup()
    for split, loader in (
        ("train", dm.train_dataloader()),
        ("validation", dm.val_dataloader()),
        ("test", dm.test_dataloader()),
    ):
        rows = len(dm.splits[split])
        shards = [list(_sharded(loader.batch_sampler, rank)) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1]) > 0, f"{split}: unequal step counts"
        counts = Counter(i for shard in shards for batch in shard for i in batch)
        assert set(counts) == set(range(rows)), f"{split}: the shards miss rows"
        if split == "train":
            # To even out the step counts, whole batches from the plan's start may repeat on the
            # other rank (at most one batch for two ranks); nothing else is shared.
            assert sum(counts.values()) - rows <= dm.batch_size
        else:
            ranks = [{i for batch in shard for i in batch} for shard in shards]
            assert not ranks[0] & ranks[1] and sum(counts.values()) == rows


def test_a_warm_start_reads_the_cache_and_gives_the_same_ids(source, tmp_path, monkeypatch):
    cold = _build(source, tmp_path)
    cold.setup()
    expected = {split: _rows(cold, split) for split in EVAL_SPLITS}

    def rebuilt(*args, **kwargs):
        raise AssertionError("a warm start trained a tokenizer or tokenized again")

    monkeypatch.setattr(TextClassificationDataModule, "_train_tokenizer", rebuilt)
    monkeypatch.setattr(TextClassificationDataModule, "_encode", rebuilt)
    warm = _build(source, tmp_path)
    warm.setup()
    assert tokenizer_json(warm.tokenizer) == tokenizer_json(cold.tokenizer)
    assert {split: _rows(warm, split) for split in EVAL_SPLITS} == expected
    train = [batch.index.tolist() for batch in warm.train_dataloader()]
    assert train == [batch.index.tolist() for batch in cold.train_dataloader()]
