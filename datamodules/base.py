"""The base every data source subclasses: raw splits in, tokenized bucketed dataloaders out.

A plugin implements two things: ``load_splits()`` (a ``datasets.DatasetDict`` with a ``text``
string column and an integer ``label`` column) and ``class_names``. Everything after that is
shared: schema checks, normalisation, a validation split carved from train when missing, the
tokenizer (trained on the training split only), tokenization, and length-bucketed loaders.
"""

from __future__ import annotations

import functools
from typing import Any

import datasets
import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from lit_seqcls.batch import PAD_ID, collate
from lit_seqcls.bucketing import BucketBatchSampler
from lit_seqcls.tokenization import UnicodeForm, encode, train_word_tokenizer

TEXT, LABEL = "text", "label"
TRAIN, VAL, TEST, PREDICT = "train", "validation", "test", "predict"


class TextClassificationDataModule(L.LightningDataModule):
    """Shared pipeline for text classification data sources (subclass it; see module docstring).

    Args:
        batch_size: texts per training batch (per device).
        eval_batch_size: texts per validation/test/predict batch; default ``2 × batch_size``.
        max_length: truncate texts to this many tokens (``None``: no limit).
        max_vocab_size: cap on the tokenizer's vocabulary, special tokens included.
        min_frequency: words seen fewer times in the training split become ``[UNK]``.
        lowercase: lowercase before tokenizing.
        unicode_normalization: unicode normal form applied before tokenizing, or ``None``.
        val_fraction: share of the training split held out for validation when the source has
            no validation split (carved with ``seed``, so the same on every run and rank).
        pool_size: bucketing pool, in batches: larger pads less, shuffles less.
        padding_noise: ±fraction of length noise when bucketing, so batches vary between epochs.
        pad_to_multiple_of: round each batch's width up (8 helps tensor cores on GPU).
        num_workers: DataLoader worker processes.
        seed: seed for the validation split and the batch plan.
    """

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int | None = 512,
        max_vocab_size: int = 30_000,
        min_frequency: int = 1,
        lowercase: bool = True,
        unicode_normalization: UnicodeForm | None = "NFKC",
        val_fraction: float = 0.1,
        pool_size: int = 50,
        padding_noise: float = 0.1,
        pad_to_multiple_of: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_length = max_length
        self.max_vocab_size = max_vocab_size
        self.min_frequency = min_frequency
        self.lowercase = lowercase
        self.unicode_normalization = unicode_normalization
        self.val_fraction = val_fraction
        self.pool_size = pool_size
        self.padding_noise = padding_noise
        self.pad_to_multiple_of = pad_to_multiple_of
        self.num_workers = num_workers
        self.seed = seed
        self._tokenizer: Tokenizer | None = None
        self._splits: datasets.DatasetDict | None = None
        self._encoded: datasets.DatasetDict | None = None

    # ---- what a plugin provides -------------------------------------------------------------
    def load_splits(self) -> datasets.DatasetDict:
        """The raw splits (``train`` required; ``validation``, ``test``, ``predict`` optional)."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        """Class names in label order: label ``i`` is ``class_names[i]``."""
        raise NotImplementedError

    def normalize(self, text: str) -> str:
        """Source-specific clean-up applied before tokenizing (e.g. HTML); identity by default."""
        return text

    # ---- what the model is linked to (cheap to read; LightningCLI reads them before setup) ----
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, trained on the training split the first time it is needed."""
        if self._tokenizer is None:
            train = self.splits[TRAIN]
            rank_zero_info(f"Training a word-level tokenizer on {len(train):,} training texts ...")
            self._tokenizer = train_word_tokenizer(
                (self.normalize(t) for t in train[TEXT]),
                vocab_size=self.max_vocab_size,
                min_frequency=self.min_frequency,
                lowercase=self.lowercase,
                unicode_normalization=self.unicode_normalization,
                length=len(train),
            )
        return self._tokenizer

    @property
    def splits(self) -> datasets.DatasetDict:
        """Raw splits after schema checks, with ``validation`` carved from train if missing."""
        if self._splits is None:
            self._splits = self._checked_splits(self.load_splits())
        return self._splits

    # ---- Lightning hooks --------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._encoded is None:
            self._encoded = datasets.DatasetDict(
                {name: self._encode(split) for name, split in self.splits.items()}
            )

    def train_dataloader(self) -> DataLoader:
        return self._loader(TRAIN, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(VAL, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(TEST, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)

    @property
    def predict_split(self) -> str:
        """The split ``predict`` runs on: ``predict`` if the source has one, else ``test``."""
        return PREDICT if PREDICT in self.splits else TEST

    def texts(self, split: str) -> list[str]:
        """The raw texts of ``split`` in row order (``Batch.index`` points into this list)."""
        return list(self.splits[split][TEXT])

    def state_dict(self) -> dict[str, Any]:
        # Plain data only: checkpoints must load with `torch.load(weights_only=True)`.
        return {"tokenizer": self.tokenizer.to_str(), "class_names": list(self.class_names)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("tokenizer") not in (None, self.tokenizer.to_str()):
            raise ValueError(
                "The checkpoint was trained with a different vocabulary than this data config "
                "builds (the tokenizer differs), so its token ids would be wrong. Use the same "
                "data "
                "config (source, max_vocab_size, min_frequency, lowercase, seed) as for training."
            )

    # ---- internals ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        assert self._encoded is not None
        if split not in self._encoded:
            raise ValueError(
                f"{type(self).__name__} has no {split!r} split (it has {sorted(self._encoded)})."
            )
        dataset = self._encoded[split]
        sampler = BucketBatchSampler(
            dataset.with_format("numpy")["length"],
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle,
            pool_size=self.pool_size,
            padding_noise=self.padding_noise,
            seed=self.seed,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(collate, pad_to_multiple_of=self.pad_to_multiple_of),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _encode(self, split: datasets.Dataset) -> datasets.Dataset:
        def encode_batch(rows: dict[str, list], indices: list[int]) -> dict[str, list]:
            ids = encode(self.tokenizer, [self.normalize(t) for t in rows[TEXT]], self.max_length)
            return {"input_ids": ids, "length": [len(x) for x in ids], "index": indices}

        keep = [c for c in (LABEL,) if c in split.column_names]
        drop = [c for c in split.column_names if c not in keep]
        return split.map(encode_batch, batched=True, with_indices=True, remove_columns=drop)

    def _checked_splits(self, raw: datasets.DatasetDict) -> datasets.DatasetDict:
        if TRAIN not in raw:
            raise ValueError(
                f"{type(self).__name__}: the source has no 'train' split ({sorted(raw)})."
            )
        for name, split in raw.items():
            _check_schema(name, split, self.num_classes, labelled=name != PREDICT)
        if VAL not in raw:
            parts = raw[TRAIN].train_test_split(test_size=self.val_fraction, seed=self.seed)
            raw = datasets.DatasetDict({**raw, TRAIN: parts["train"], VAL: parts["test"]})
        return raw


def _check_schema(split: str, ds: datasets.Dataset, num_classes: int, labelled: bool) -> None:
    """Raise a ValueError naming the split, row and field of the first bad value."""
    if TEXT not in ds.column_names:
        raise ValueError(f"split {split!r} has no {TEXT!r} column (columns: {ds.column_names})")
    for row, text in enumerate(ds[TEXT]):
        if not isinstance(text, str):
            raise ValueError(
                f"split {split!r}, row {row}, field {TEXT!r}: expected a string, got {text!r}"
            )
    if not labelled:
        return
    if LABEL not in ds.column_names:
        raise ValueError(f"split {split!r} has no {LABEL!r} column (columns: {ds.column_names})")
    for row, label in enumerate(ds[LABEL]):
        if not isinstance(label, int) or not 0 <= label < num_classes:
            raise ValueError(
                f"split {split!r}, row {row}, field {LABEL!r}: expected a class index in "
                f"[0, {num_classes}), got {label!r}"
            )
