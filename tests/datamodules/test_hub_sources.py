"""IMDB and 20 Newsgroups through the real loading code, from fixtures in the exact hub layouts."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import pytest

from datamodules import IMDBDataModule, NewsgroupsDataModule
from datamodules.imdb import IMDB_HUB_ID, IMDB_REVISION
from datamodules.newsgroups import NEWSGROUPS_HUB_ID

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IMDB = str(FIXTURES / "imdb")
NEWSGROUPS = str(FIXTURES / "20_newsgroups")


def test_the_fixtures_have_the_hub_schemas():
    imdb = datasets.load_dataset(IMDB, "plain_text")
    assert sorted(imdb) == ["test", "train", "unsupervised"]
    assert imdb["train"].features["label"] == datasets.ClassLabel(names=["neg", "pos"])
    assert set(imdb["unsupervised"]["label"]) == {-1}
    news = datasets.load_dataset(NEWSGROUPS)
    assert news["train"].column_names == ["text", "label", "label_text"]


def test_defaults_point_at_the_hub_with_a_pinned_revision():
    dm = IMDBDataModule()
    assert (dm.path, dm.name, dm.revision) == (IMDB_HUB_ID, "plain_text", IMDB_REVISION)
    assert len(IMDB_REVISION) == 40
    news = NewsgroupsDataModule()
    assert news.path == NEWSGROUPS_HUB_ID and re.fullmatch("[0-9a-f]{40}", news.revision)


def test_imdb_from_a_local_copy():
    dm = IMDBDataModule(path=IMDB, val_fraction=0.2)
    assert dm.class_names == ["neg", "pos"]
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 96, "validation": 24, "test": 60}
    raw = datasets.load_dataset(IMDB, "plain_text")["train"]
    assert any("<br />" in t for t in raw["text"])
    assert "<br" not in " ".join(dm.normalize(t) for t in dm.texts("train"))
    dm.setup()
    vocab = dm.tokenizer.get_vocab()
    assert "br" not in vocab


def test_imdb_unsupervised_reviews_are_only_ever_predicted():
    dm = IMDBDataModule(path=IMDB, include_unsupervised=True)
    assert dm.predict_split == "predict"
    assert dm.splits["predict"].column_names == ["text"]  # label -1 dropped: never in the loss
    assert len(dm.splits["predict"]) == 20
    dm.setup()
    assert all(b.labels is None for b in dm.predict_dataloader())


def test_imdb_unsupervised_as_a_labelled_split_is_refused():
    dm = IMDBDataModule(path=IMDB)
    dm.split = {"train": "unsupervised"}
    with pytest.raises(
        ValueError, match=r"split 'train'.*row 1, field 'label': label -1 is negative"
    ):
        _ = dm.splits


def test_newsgroups_from_a_local_copy_takes_class_names_from_label_text():
    dm = NewsgroupsDataModule(path=NEWSGROUPS)
    assert dm.num_classes == 20
    assert dm.class_names[:3] == ["alt.atheism", "comp.graphics", "comp.os.ms-windows.misc"]
    raw = datasets.load_dataset(NEWSGROUPS)["test"]
    test = dm.splits["test"]
    assert [dm.class_names[y] for y in test["label"]] == raw["label_text"]
