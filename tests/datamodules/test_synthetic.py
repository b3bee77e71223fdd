import re
from collections import Counter

import datasets
import numpy as np
import pytest

from datamodules import SyntheticDataModule, TextClassificationDataModule


@pytest.mark.parametrize("task", ["keyword", "majority", "order"])
def test_labels_are_what_the_text_says(task, small_synthetic_kwargs):
    dm = SyntheticDataModule(task=task, **small_synthetic_kwargs)
    for text, label in zip(dm.texts("test"), dm.splits["test"]["label"], strict=True):
        words = text.split()
        if task == "keyword":
            assert [w for w in words if re.fullmatch(r"topic\d", w)] == [f"topic{label}"]
        elif task == "majority":
            counts = Counter(w for w in words if re.fullmatch(r"mood\d", w))
            (top, n), *rest = counts.most_common()
            assert top == f"mood{label}" and all(m < n for _, m in rest)
        else:
            assert (words.index("alpha") < words.index("omega")) == (label == 0)


def test_deterministic_by_seed_and_different_across_seeds(small_synthetic_kwargs):
    a = SyntheticDataModule(**small_synthetic_kwargs)
    b = SyntheticDataModule(**small_synthetic_kwargs)
    c = SyntheticDataModule(**{**small_synthetic_kwargs, "seed": 4})
    assert a.texts("train") == b.texts("train") and a.texts("test") == b.texts("test")
    assert a.tokenizer.to_str() == b.tokenizer.to_str()
    assert a.texts("train") != c.texts("train")


def test_splits_sizes_and_disjoint_validation(small_synthetic_kwargs):
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"train": 216, "validation": 24, "test": 60}
    assert not set(dm.texts("train")) & set(dm.texts("validation"))


def test_lengths_have_a_long_tail():
    dm = SyntheticDataModule(train_size=3000, test_size=10, median_length=20, max_text_length=200)
    lengths = np.array([len(t.split()) for t in dm.texts("train")])
    assert 15 <= np.median(lengths) <= 25
    assert lengths.max() > 3 * np.median(lengths)
    assert lengths.min() >= 1


def test_links_are_available_before_setup(small_synthetic_kwargs):
    dm = SyntheticDataModule(task="order", **small_synthetic_kwargs)
    assert dm.num_classes == 2 and dm.class_names == ["alpha_first", "omega_first"]
    assert dm.vocab_size > 10


def test_dataloaders_yield_bucketed_batches(small_synthetic_kwargs):
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert sum(len(b) for b in batches) == 216
    assert all(b.lengths.min() >= 1 and b.input_ids.size(1) == b.lengths.max() for b in batches)
    indices = sorted(i for b in dm.val_dataloader() for i in b.index.tolist())
    assert indices == list(range(24))


def test_checkpoint_state_round_trips_and_rejects_a_different_vocabulary(small_synthetic_kwargs):
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    state = dm.state_dict()
    SyntheticDataModule(**small_synthetic_kwargs).load_state_dict(state)
    other = SyntheticDataModule(**{**small_synthetic_kwargs, "max_vocab_size": 50})
    with pytest.raises(ValueError, match="different vocabulary"):
        other.load_state_dict(state)


class _Rows(TextClassificationDataModule):
    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = rows

    @property
    def class_names(self):
        return ["neg", "pos"]

    def load_splits(self):
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(self.rows)})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"text": "ok", "label": 0}, {"text": "bad", "label": 2}],
            r"split 'train', row 2, field 'label': label 2 was never seen in training",
        ),
        ([{"txt": "ok", "label": 0}], r"no 'text' column"),
        ([{"text": "ok"}], r"no 'label' column"),
    ],
)
def test_bad_rows_are_named_by_split_row_and_field(rows, message):
    with pytest.raises(ValueError, match=message):
        _ = _Rows(rows).splits


def test_empty_text_becomes_one_token():
    dm = _Rows(
        [{"text": t, "label": i % 2} for i, t in enumerate(["", "  ", "a b", "c"] * 5)],
        batch_size=4,
    )
    dm.setup()
    assert min(len(ids) for ids in dm._encoded["train"]["input_ids"]) == 1


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown task"):
        SyntheticDataModule(task="nope")
    with pytest.raises(ValueError, match="val_fraction"):
        SyntheticDataModule(val_fraction=1.5)
