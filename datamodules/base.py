"""The base every data source subclasses: raw splits in, tokenized bucketed dataloaders out.

A plugin implements two things: ``load_splits()`` (a ``datasets.DatasetDict`` with a ``text``
string column and an integer ``label`` column) and ``class_names``. Everything after that is
shared: schema checks, normalisation, a validation split carved from train when missing, the
tokenizer (trained on the training split only, or loaded), tokenization cached as Arrow, and
length-bucketed loaders.

Caching: the tokenizer and the tokenized splits are stored under ``cache_dir`` keyed by a
fingerprint of the source (``source_fingerprint()``), the tokenizer and the preprocessing
settings. Every rank computes the same key; the first to get the file lock builds, the others
wait and read. So a second run with the same config trains no tokenizer and tokenizes nothing,
and changing any setting that affects the ids builds a new entry.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import datasets
import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_info
from tokenizers import Tokenizer
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules import schema
from datamodules.caching import cache_root, dataset_entry, fingerprint, text_entry
from datamodules.datasets_internals import dataset_fingerprint
from datamodules.overlap import warn_about_shared_texts
from datamodules.pipeline import encode_split, read_checkpoint_pipeline
from lit_seqcls.batch import collate
from lit_seqcls.checkpoints import TEXT_PIPELINE_VERSION, CheckpointError
from lit_seqcls.metrics import MULTI_LABEL, SINGLE_LABEL
from lit_seqcls.runtime.lightning_internals import restored_batches_in_epoch
from lit_seqcls.text import (
    TRAINERS,
    TRUNCATION_SIDES,
    BucketBatchSampler,
    ResumableDataLoader,
    TokenizerKind,
    TruncationSide,
    UnicodeForm,
    load_tokenizer,
    load_vectors,
    tokenizer_json,
)
from lit_seqcls.validation import (
    ConfigValueError,
    require_fraction,
    require_non_negative_int,
    require_open_fraction,
    require_positive_int,
)

TEXT, LABEL = schema.TEXT, schema.LABEL
TRAIN, VAL, TEST, PREDICT = "train", "validation", "test", "predict"
# `<br />` and tag-like `<i>`, `</a href=...>`; not "a < b and c > d" (no letter right after `<`).
_HTML_TAG = re.compile(r"<\s*br\s*/?\s*>|</?[a-zA-Z][^<>]{0,40}>")


class TextClassificationDataModule(L.LightningDataModule):
    """Shared pipeline for text classification data sources (subclass it; see module docstring).

    Args:
        batch_size: texts per training batch (per device); with ``max_tokens``, the most texts.
        eval_batch_size: texts per validation/test/predict batch; default ``2 × batch_size``.
        max_tokens: batch by a token budget instead of a fixed count: a batch's padded size
            (longest text × texts) stays within it (evaluation uses twice the budget). Keeps
            memory flat when lengths vary a lot.
        max_length: truncate texts to this many tokens (``None``: no limit).
        truncation_side: which tokens a text longer than ``max_length`` keeps: its first
            (``right``, cut at the right) or its last (``left``). A recurrent encoder reads its
            final state right after the last token, so ``left`` suits it on long reviews.
        max_vocab_size: cap on the tokenizer's vocabulary, special tokens included (3 to
            10,000,000: the model's embedding has one row per entry).
        min_frequency: words seen fewer times in the training split become ``[UNK]``.
        lowercase: lowercase before tokenizing.
        unicode_normalization: unicode normal form applied before tokenizing, or ``None``.
        tokenizer_file: a ``tokenizer.json`` (path, or its JSON text) to use instead of training
            one; it must map ``[PAD]`` to id 0 and define ``[UNK]``.
        tokenizer_type: what to train on the training split: ``word`` (word-level) or ``bpe``
            (byte-pair encoding: rare words become subwords, not ``[UNK]``).
        strip_html: replace HTML tags such as ``<br />`` with a space before tokenizing.
        vectors: pretrained word vectors (GloVe / word2vec text format, optionally ``.gz``) to
            initialise the model's embedding; its dimension must equal ``embedding_dim``.
        cache_dir: where tokenizers and tokenized splits are cached; default
            ``$LIT_SEQCLS_CACHE`` or ``$HF_HOME/lit_seqcls``.
        from_checkpoint: a checkpoint whose text pipeline (tokenizer, class names, max length,
            normalisation) this module reuses, to test or predict with that model on new files.
        val_fraction: share of the training split held out for validation when the source has
            no validation split (carved with ``seed``, so the same on every run and rank).
        pool_size: bucketing pool, in batches: larger pads less, shuffles less.
        padding_noise: ±fraction of length noise when bucketing, for more varied batches (off
            by default: pools are redrawn every epoch, and 0.1 quadruples the padding on IMDB).
        pad_to_multiple_of: round each batch's width up (8 helps tensor cores on GPU).
        num_workers: DataLoader worker processes.
        seed: seed for the validation split and the batch plan.
    """

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_tokens: int | None = None,
        max_length: int | None = 512,
        truncation_side: TruncationSide = "right",
        max_vocab_size: int = 30_000,
        min_frequency: int = 1,
        lowercase: bool = True,
        unicode_normalization: UnicodeForm | None = "NFKC",
        tokenizer_file: str | None = None,
        tokenizer_type: TokenizerKind = "word",
        strip_html: bool = False,
        vectors: str | None = None,
        cache_dir: str | None = None,
        from_checkpoint: str | None = None,
        val_fraction: float = 0.1,
        pool_size: int = 50,
        padding_noise: float = 0.0,
        pad_to_multiple_of: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_settings(locals())  # here, so the CLI stops at instantiation, before any data
        schema.check_vocabulary_settings(max_vocab_size, min_frequency)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_tokens = max_tokens
        self.max_length = max_length
        self.truncation_side = truncation_side
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
        if truncation_side not in TRUNCATION_SIDES:
            raise ConfigValueError(
                f"truncation_side must be one of {list(TRUNCATION_SIDES)}, got {truncation_side!r}"
            )
        if tokenizer_type not in TRAINERS:
            raise ValueError(
                f"tokenizer_type must be one of {sorted(TRAINERS)}, got {tokenizer_type!r}"
            )
        self.tokenizer_file = tokenizer_file
        self.tokenizer_type = tokenizer_type
        self.strip_html = strip_html
        self.vectors = vectors
        self.vectors_coverage: float | None = None
        self.cache_dir = cache_dir
        self.from_checkpoint = from_checkpoint
        self.checkpoint_class_names: list[str] | None = None
        self.checkpoint_task: str | None = None
        if from_checkpoint is not None:
            # The model's own pipeline wins: its ids, length limit and classes are what it knows.
            pipeline = read_checkpoint_pipeline(from_checkpoint)
            self.tokenizer_file = pipeline["tokenizer"]
            self.max_length = pipeline["max_length"]
            self.truncation_side = pipeline["truncation_side"]
            self.strip_html = pipeline["strip_html"]
            self.checkpoint_class_names = list(pipeline["class_names"])
            self.checkpoint_task = str(pipeline.get("task", SINGLE_LABEL))
        self._vectors: Tensor | None = None
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

    def source_fingerprint(self) -> Any:
        """Plain data that changes whenever the raw data does (part of every cache key).

        The default hashes what ``load_splits()`` returned (``datasets`` fingerprints); a source
        that can tell cheaper (a hub id and revision, file digests) overrides it.
        """
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "splits": {name: dataset_fingerprint(ds) for name, ds in self.splits.items()},
        }

    def describe(self, split: str) -> str:
        """Where ``split`` comes from, for error messages (a subclass names its files)."""
        return f"{type(self).__name__} split {split!r}"

    def input_files(self) -> list[Path]:
        """Every local file this module reads, so that no output is ever written over one.

        Here the checkpoint of ``from_checkpoint``, ``vectors`` and a ``tokenizer_file`` given
        as a path; a subclass adds its data files (``super().input_files() + ...``).
        """
        tokenizer = self.tokenizer_file  # a path, or JSON text (from a checkpoint, or given)
        tokenizer = None if (tokenizer or "{").lstrip().startswith("{") else tokenizer
        return [Path(p).expanduser() for p in (self.from_checkpoint, self.vectors, tokenizer) if p]

    def normalize(self, text: str) -> str:
        """Clean-up applied before tokenizing; a subclass may extend it (then say so in its docs:
        only ``strip_html`` travels with the checkpoint)."""
        return _HTML_TAG.sub(" ", text) if self.strip_html else text

    @property
    def multi_label(self) -> bool:
        """Is every label a set of classes (``Batch.labels`` multi-hot ``(B, C)``)? A plugin with
        multi-label data overrides this (and gives each row's ``label`` as a list of indices)."""
        return self.checkpoint_task == MULTI_LABEL

    # ---- what the model is linked to (cheap to read; LightningCLI reads them before setup) ----
    @property
    def label_task(self) -> str:
        """``single_label`` or ``multi_label`` (linked to the model's ``task``; not named
        ``task``, which ``SyntheticDataModule`` uses for its kind of synthetic data)."""
        return MULTI_LABEL if self.multi_label else SINGLE_LABEL

    @property
    def num_classes(self) -> int:
        schema.check_class_limit(self.class_names, self.describe(TRAIN))
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def class_counts(self) -> dict[str, int] | None:
        """Texts per class in the training split (``class_weights: auto`` weighs by them), or
        ``None`` without one (a checkpoint's pipeline on new files).

        Read from the tokenized cache (built here if missing, as ``setup`` would), so every
        rank gets the same counts and a warm start still loads no raw text.
        """
        if self.from_checkpoint is not None:
            return None
        self.setup()
        assert self._encoded is not None
        train = self._encoded.get(TRAIN)
        if train is None or LABEL not in train.column_names:
            return None
        if self.multi_label:  # texts holding each label
            labels = [i for row in train[LABEL] for i in row]
            counts = np.bincount(np.asarray(labels, np.int64), minlength=len(self.class_names))
        else:
            counts = np.bincount(train.with_format("numpy")[LABEL], minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts, strict=True)}

    @property
    def num_train_texts(self) -> int | None:
        """Texts in the training split (multi-label ``class_weights: auto`` needs it), or
        ``None`` without one; from the tokenized cache, like ``class_counts``."""
        if self.from_checkpoint is not None:
            return None
        self.setup()
        assert self._encoded is not None
        train = self._encoded.get(TRAIN)
        return None if train is None else len(train)

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer: given, cached, or trained on the training split (then cached)."""
        if self._tokenizer is None:
            if self.tokenizer_file is not None:
                self._tokenizer = load_tokenizer(self.tokenizer_file)
                schema.check_vocabulary_size(self._tokenizer.get_vocab_size(), self.tokenizer_file)
            else:
                self._tokenizer = self._cached_or_trained_tokenizer()
        return self._tokenizer

    @property
    def splits(self) -> datasets.DatasetDict:
        """Raw splits after schema checks, with ``validation`` carved from train if missing."""
        if self._splits is None:
            self._splits = self._checked_splits(self.load_splits())
        return self._splits

    @property
    def text_pipeline(self) -> dict[str, Any]:
        """Everything needed to turn raw text into model input, as plain data (for checkpoints)."""
        return {
            "version": TEXT_PIPELINE_VERSION,
            "tokenizer": tokenizer_json(self.tokenizer),
            "max_length": self.max_length,
            "truncation_side": self.truncation_side,
            "strip_html": self.strip_html,
            "class_names": list(self.class_names),
            "task": self.label_task,
            # The module that reads raw files for `lit-seqcls predict --ckpt_path` alone.
            "datamodule": "datamodules.TextDataModule",
        }

    @property
    def pretrained_embeddings(self) -> Tensor | None:
        """``(vocab_size, dim)`` rows from ``vectors`` in token-id order, or ``None``.

        The model reads this in ``setup("fit")`` to initialise its embedding.
        """
        if self.vectors is None:
            return None
        if self._vectors is None:
            vec = load_vectors(self.vectors, self.tokenizer.get_vocab(), seed=self.seed)
            rank_zero_info(
                f"Pretrained vectors {self.vectors}: {vec.found:,} of the vocabulary's words "
                f"found (coverage {vec.coverage:.1%})."
            )
            self.vectors_coverage = vec.coverage
            self._vectors = vec.weights
        return self._vectors

    # ---- Lightning hooks --------------------------------------------------------------------
    def prepare_data(self) -> None:
        # Local rank zero only: tokenize once and write the shared cache; the others read it.
        self._cached_or_encoded()

    def setup(self, stage: str | None = None) -> None:
        if self._encoded is None:
            self._encoded = self._cached_or_encoded()

    def train_dataloader(self) -> DataLoader:
        _quiet_tokenizers_in_workers(self.num_workers)
        return self._loader(TRAIN, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        _quiet_tokenizers_in_workers(self.num_workers)
        return self._loader(VAL, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        _quiet_tokenizers_in_workers(self.num_workers)
        return self._loader(TEST, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        _quiet_tokenizers_in_workers(self.num_workers)
        return self._loader(self.predict_split, shuffle=False)

    @property
    def predict_split(self) -> str:
        """The split ``predict`` runs on: ``predict`` if the source has one, else ``test``."""
        names = self._encoded if self._encoded is not None else self.splits
        return PREDICT if PREDICT in names else TEST

    def texts(self, split: str) -> list[str]:
        """The raw texts of ``split`` in row order (``Batch.index`` points into this list)."""
        return list(self.splits[split][TEXT])

    def state_dict(self) -> dict[str, Any]:
        # Plain data only (`torch.load(weights_only=True)`); the model keeps the full pipeline,
        # so only a digest of the tokenizer is kept here, to check a resumed run against it.
        return {"tokenizer_sha256": _sha256(tokenizer_json(self.tokenizer))}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("tokenizer_sha256")
        if saved is None and "tokenizer" in state_dict:  # checkpoints from before the digest
            saved = _sha256(tokenizer_json(load_tokenizer(state_dict["tokenizer"])))
        if saved is not None and saved != _sha256(tokenizer_json(self.tokenizer)):
            raise CheckpointError(
                "The checkpoint was trained with a different vocabulary than this data config "
                "builds (the tokenizer differs), so its token ids would be wrong. Use the same "
                "data config (source, tokenizer settings, seed) as for training, or pass "
                "`--data.from_checkpoint <the checkpoint>` to reuse its tokenizer."
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
        budget = self.max_tokens if shuffle or self.max_tokens is None else 2 * self.max_tokens
        resume_epoch, resume_batches = resume_point(self.trainer) if shuffle else (None, 0)
        sampler = BucketBatchSampler(
            dataset.with_format("numpy")["length"],
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            max_tokens=budget,
            shuffle=shuffle,
            pool_size=self.pool_size,
            padding_noise=self.padding_noise,
            seed=self.seed,
            resume_epoch=resume_epoch,
            resume_batches=resume_batches,
        )
        # Resumable: Lightning then knows a mid-epoch restart continues exactly (bucketing.py).
        return (ResumableDataLoader if shuffle else DataLoader)(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(
                collate,
                pad_to_multiple_of=self.pad_to_multiple_of,
                num_labels=len(self.class_names) if self.multi_label else None,
            ),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _cached_or_trained_tokenizer(self) -> Tokenizer:
        settings = {
            "kind": self.tokenizer_type,
            "vocab": self.max_vocab_size,
            "min_frequency": self.min_frequency,
            "lowercase": self.lowercase,
            "unicode": self.unicode_normalization,
            "html": self.strip_html and _HTML_TAG.pattern,
            "val_fraction": self.val_fraction,  # the tokenizer sees train minus validation
            "seed": self.seed,
        }
        # The key needs no raw split: a warm start reads the entry without loading the source.
        key = fingerprint(self.source_fingerprint(), settings)
        path = self._cache / "tokenizers" / f"{key}.json"
        return load_tokenizer(text_entry(path, lambda: tokenizer_json(self._train_tokenizer())))

    def _train_tokenizer(self) -> Tokenizer:
        if TRAIN not in self.splits:
            raise ValueError(
                f"{type(self).__name__}: there is no 'train' split to train the tokenizer on. "
                "Give training data, or `tokenizer_file` / `from_checkpoint` to reuse one."
            )
        train = self.splits[TRAIN]
        rank_zero_info(f"Training a {self.tokenizer_type} tokenizer on {len(train):,} texts ...")
        return TRAINERS[self.tokenizer_type](
            (self.normalize(t) for t in train[TEXT]),
            vocab_size=self.max_vocab_size,
            min_frequency=self.min_frequency,
            lowercase=self.lowercase,
            unicode_normalization=self.unicode_normalization,
            length=len(train),
        )

    def _cached_or_encoded(self) -> datasets.DatasetDict:
        key = fingerprint(
            self.source_fingerprint(),
            tokenizer_json(self.tokenizer),
            {
                "max_length": self.max_length,
                "truncation_side": self.truncation_side,
                "html": self.strip_html and _HTML_TAG.pattern,
            },
            {"val_fraction": self.val_fraction, "seed": self.seed},
        )
        path = self._cache / "encoded" / key

        def build() -> datasets.DatasetDict:
            rank_zero_info(f"Tokenizing {type(self).__name__} into the cache {path} ...")
            return datasets.DatasetDict(
                {name: self._encode(split, f"{key}-{name}") for name, split in self.splits.items()}
            )

        return dataset_entry(path, build)

    @property
    def _cache(self):
        return cache_root(self.cache_dir)

    def _encode(self, split: datasets.Dataset, fingerprint_: str) -> datasets.Dataset:
        # Normalise and tokenize straight into Arrow (see datamodules.pipeline).
        return encode_split(
            split,
            self.tokenizer,
            self.normalize,
            self.max_length,
            fingerprint_,
            self.truncation_side,
        )

    def _checked_splits(self, raw: datasets.DatasetDict) -> datasets.DatasetDict:
        for name, split in raw.items():
            schema.check_not_empty(split, self.describe(name))
            schema.check_texts(split, self.describe(name))
            if name != PREDICT:
                schema.check_class_limit(self.class_names, self.describe(TRAIN))
                schema.check_labels(split, self.describe(name), self.class_names, self.multi_label)
        warn_about_shared_texts(raw, self.describe)  # before a validation split is carved
        if TRAIN in raw:
            schema.check_several_classes(
                raw[TRAIN], self.describe(TRAIN), self.class_names, self.multi_label
            )
            if VAL not in raw:
                schema.check_room_for_validation(
                    raw[TRAIN], self.describe(TRAIN), self.val_fraction
                )
                parts = raw[TRAIN].train_test_split(test_size=self.val_fraction, seed=self.seed)
                raw = datasets.DatasetDict({**raw, TRAIN: parts["train"], VAL: parts["test"]})
        return raw


# The range of each numeric argument (``max_vocab_size`` and ``min_frequency``: ``schema``).
_SETTINGS = {
    "batch_size": require_positive_int,
    "eval_batch_size": require_positive_int,
    "max_tokens": require_positive_int,
    "max_length": require_positive_int,
    "val_fraction": require_open_fraction,
    "pool_size": require_positive_int,
    "padding_noise": require_fraction,
    "pad_to_multiple_of": require_positive_int,
    "num_workers": require_non_negative_int,
    "seed": require_non_negative_int,
}
_UNSET_ALLOWED = {"eval_batch_size", "max_tokens", "max_length"}  # None: 2 × batch_size, no limit


def _check_settings(arguments: dict[str, Any]) -> None:
    """Raise a ``ConfigValueError`` naming the first numeric argument outside its range.

    Example:
        >>> _check_settings({**dict.fromkeys(_SETTINGS, 1), "val_fraction": 0.1, "max_length": 0})
        Traceback (most recent call last):
        ...
        lit_seqcls.validation.ConfigValueError: max_length must be a positive integer, got 0
    """
    for name, check in _SETTINGS.items():
        if arguments[name] is not None or name not in _UNSET_ALLOWED:
            check(name, arguments[name])


def resume_point(trainer: L.Trainer | None) -> tuple[int | None, int]:
    """``(epoch, batches trained in it)`` when ``trainer`` resumes mid-epoch, else ``(None, 0)``.

    Lightning restores its loop progress from the checkpoint before it asks for the training
    dataloader, so the loop itself is the record of where the interrupted epoch stopped; the
    sampler only has to skip that many of its batches (``BucketBatchSampler.resume_batches``).
    The loop's progress is private Lightning state, read through its fence
    (``lit_seqcls.runtime.lightning_internals``).
    """
    if trainer is None:
        return None, 0
    done = restored_batches_in_epoch(trainer)
    if done == 0:
        return None, 0
    return trainer.current_epoch, done


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _quiet_tokenizers_in_workers(num_workers: int) -> None:
    # Tokenizing ran (in Rust threads) before the loaders fork their workers, which never
    # tokenize; saying so up front keeps `tokenizers` from warning (and from deadlock) in them.
    if num_workers > 0:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
