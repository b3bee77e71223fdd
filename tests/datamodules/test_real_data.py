"""The real local copies under ../shared/data load through the same code (opt in: -m data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules import IMDBDataModule, NewsgroupsDataModule

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is not here (a fresh clone has none)"),
]


def test_imdb_local_copy():
    dm = IMDBDataModule(path=str(DATA / "imdb"), include_unsupervised=True)
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"train": 22_500, "validation": 2_500, "test": 25_000, "predict": 50_000}
    assert dm.class_names == ["neg", "pos"]
    assert sorted(set(dm.splits["test"]["label"])) == [0, 1]


def test_newsgroups_local_copy():
    dm = NewsgroupsDataModule(path=str(DATA / "20_newsgroups"))
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes["train"] + sizes["validation"] == 11_314 and sizes["test"] == 7_532
    assert dm.num_classes == 20 and dm.class_names[-1] == "talk.religion.misc"
