"""The system: ``SequenceClassifier`` owns loss, metrics, optimisation and logging."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassF1Score

from lit_seqcls.batch import PAD_ID, Batch
from lit_seqcls.checkpoints import CheckpointError, load_checkpoint
from lit_seqcls.encoders import ENCODERS, Encoder
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.metrics import LOSS, STAGES, VAL_ACC, classification_metrics, metric_name
from lit_seqcls.trust import check_checkpoint_hparams
from lit_seqcls.validation import ConfigValueError, require_fraction, require_positive_int

EncoderFactory = Callable[[int], Encoder]
"""Builds an encoder from the embedding size: ``functools.partial(LSTMEncoder, hidden_size=64)``.

On the command line / in YAML it is a ``class_path`` plus ``init_args`` without ``input_size``.
"""


StepOutput = dict[str, Tensor]
"""Every step returns ``loss`` (scalar), detached ``logits`` ``(B, C)`` and ``preds`` ``(B,)``."""


class ClassifierOutput(NamedTuple):
    logits: Tensor  # (B, C)
    attention: Tensor | None  # (B, T), only for encoders that attend


class SequenceClassifier(L.LightningModule):
    """Embedding → encoder → dropout → linear head, trained with cross-entropy.

    Args:
        vocab_size: rows of the embedding; linked from the DataModule by the CLI.
        num_classes: size of the output layer; linked from the DataModule by the CLI.
        encoder: an encoder name (``rnn``, ``gru``, ``lstm``, ``bilstm``, ``attention``, ``cnn``,
            ``swem``) with its defaults, or a class with its arguments (``class_path`` /
            ``init_args``; the embedding size is passed for you).
        embedding_dim: size of the token embeddings.
        dropout: dropout on the embeddings and on the pooled text vector.
        pad_id: the padding token id, whose embedding stays zero; linked from the DataModule.
        class_names: names of the classes in label order (for logs and predictions); linked.
        optimizer: optimizer factory; AdamW (torch defaults) unless configured.
        lr_scheduler: optional learning-rate scheduler factory, stepped every epoch.

    Example:
        >>> model = SequenceClassifier(vocab_size=50, num_classes=3, encoder="gru")
        >>> batch = Batch(torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([3, 1]))
        >>> model(batch.input_ids, batch.lengths).logits.shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        encoder: str | EncoderFactory = "lstm",
        embedding_dim: int = 128,
        dropout: float = 0.3,
        pad_id: int = PAD_ID,
        class_names: list[str] | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        require_positive_int("vocab_size", vocab_size)
        require_positive_int("num_classes", num_classes)
        require_positive_int("embedding_dim", embedding_dim)
        require_fraction("dropout", dropout)
        _check_optimization(optimizer, lr_scheduler)
        _check_encoder_argument(encoder)
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"got {len(class_names)} class_names for num_classes={num_classes}")
        # Under LightningCLI the hparams are the parsed config (plain data); from Python we keep
        # the encoder as a plain-data spec so checkpoints load with `weights_only=True`.
        self.save_hyperparameters(ignore=["encoder", "optimizer", "lr_scheduler"])
        if "encoder" not in self.hparams:
            self.hparams["encoder"] = _encoder_spec(encoder)
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # Plain data from the DataModule (tokenizer JSON, class names, ...), saved in checkpoints
        # so that a checkpoint alone turns raw text into predictions.
        self.text_pipeline: dict[str, Any] | None = None

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = _build_encoder(encoder, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_dim, num_classes)
        self._reset_head()

        # Metric objects are modules (their states move with the model); keyed by stage.
        self.metrics = nn.ModuleDict(
            {_key(s): classification_metrics(num_classes, s) for s in STAGES}
        )
        self.losses = nn.ModuleDict({_key(s): MeanMetric() for s in STAGES})
        self.test_f1_per_class = MulticlassF1Score(num_classes, average=None)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's ``load_from_checkpoint``, after checking the file's hyper-parameters.

        Lightning rebuilds the model from ``hyper_parameters`` through jsonargparse, which calls
        whatever a ``class_path`` there names; ``lit_seqcls.trust`` refuses anything but the
        model's own arguments as plain data first (see docs/security.md).
        """
        if isinstance(checkpoint_path, str | Path) and Path(checkpoint_path).is_file():
            check_checkpoint_hparams(load_checkpoint(checkpoint_path), checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def _reset_head(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        with torch.no_grad():
            self.embedding.weight[self.hparams.pad_id].zero_()
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def setup(self, stage: str) -> None:
        # Duck-typed, so the core never imports `datamodules/`: a DataModule may offer its text
        # pipeline (kept for checkpoints) and pretrained vectors (used to start training).
        datamodule = getattr(self._trainer, "datamodule", None)
        pipeline = getattr(datamodule, "text_pipeline", None)
        if pipeline is not None:
            self.text_pipeline = pipeline
        vectors = getattr(datamodule, "pretrained_embeddings", None) if stage == "fit" else None
        if vectors is not None:
            self.load_pretrained_embeddings(vectors)

    def load_pretrained_embeddings(self, weights: Tensor) -> None:
        """Copy ``weights`` ``(vocab_size, embedding_dim)`` into the embedding (pad row stays 0)."""
        if weights.shape != self.embedding.weight.shape:
            raise ValueError(
                f"pretrained vectors have shape {tuple(weights.shape)} but the embedding is "
                f"{tuple(self.embedding.weight.shape)} (vocab_size, embedding_dim); set "
                f"`--model.embedding_dim {weights.size(1)}` to match the vectors."
            )
        with torch.no_grad():
            self.embedding.weight.copy_(weights)
            self.embedding.weight[self.hparams.pad_id].zero_()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.text_pipeline is not None:
            checkpoint["text_pipeline"] = self.text_pipeline

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Called before the weights are copied: a checkpoint of another vocabulary or class count
        # gets a sentence, not torch's size-mismatch dump.
        _check_sizes(checkpoint.get("state_dict", {}), self.embedding.weight, self.head.weight)
        self.text_pipeline = checkpoint.get("text_pipeline", self.text_pipeline)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> ClassifierOutput:
        """Logits ``(B, C)`` for padded ``input_ids`` ``(B, T)`` with real ``lengths`` ``(B,)``."""
        mask = lengths_to_mask(lengths, input_ids.size(1))  # (B, T)
        embedded = self.dropout(self.embedding(input_ids))  # (B, T, E)
        pooled, attention = self.encoder(embedded, lengths, mask)  # (B, H), (B, T) | None
        logits = self.head(self.dropout(pooled))  # (B, C)
        return ClassifierOutput(logits, attention)

    def training_step(self, batch: Batch, batch_idx: int) -> StepOutput:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> StepOutput:
        return self._common_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> StepOutput:
        return self._common_step(batch, "test")

    def predict_step(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        logits = self(batch.input_ids, batch.lengths).logits
        probs = logits.float().softmax(dim=-1)  # (B, C)
        out = {"probs": probs, "pred": probs.argmax(dim=-1)}
        if batch.index is not None:
            out["index"] = batch.index
        return out

    def _common_step(self, batch: Batch, stage: str) -> StepOutput:
        if batch.labels is None:
            raise ValueError(
                f"the {stage} data has no labels; only `predict` runs on unlabelled text"
            )
        logits = self(batch.input_ids, batch.lengths).logits  # (B, C)
        loss = F.cross_entropy(logits, batch.labels)
        preds = logits.argmax(dim=-1)  # (B,)
        batch_size = len(batch)

        # Metric objects accumulate over the epoch and reduce across ranks in `compute`, which
        # Lightning calls on every rank at epoch end; so the epoch values are exact under DDP.
        self.losses[_key(stage)].update(loss.detach(), weight=batch_size)
        self.metrics[_key(stage)].update(preds, batch.labels)
        on_step = stage == "train"
        if on_step:
            self.log(
                metric_name(stage, LOSS),
                loss,
                on_step=True,
                on_epoch=False,
                prog_bar=True,
                batch_size=batch_size,
            )
        self.log(
            metric_name(stage, f"{LOSS}_epoch" if on_step else LOSS),
            self.losses[_key(stage)],
            on_step=False,
            on_epoch=True,
            batch_size=batch_size,
        )
        self.log_dict(
            self.metrics[_key(stage)],
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "val",
            batch_size=batch_size,
        )
        if stage == "test":
            self.test_f1_per_class.update(preds, batch.labels)
        # Callbacks (confusion matrix, error analysis) read `logits` in `on_*_batch_end`.
        return {"loss": loss, "logits": logits.detach(), "preds": preds}

    def on_test_epoch_end(self) -> None:
        # A vector metric cannot go through `self.log`; compute (a collective: every rank calls it)
        # and log one scalar per class under its name.
        per_class = self.test_f1_per_class.compute()  # (C,)
        for name, value in zip(self.class_names, per_class, strict=True):
            self.log(metric_name("test", f"f1/{name}"), value)
        self.test_f1_per_class.reset()

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": VAL_ACC},
        }


def _check_optimization(
    optimizer: OptimizerCallable, lr_scheduler: LRSchedulerCallable | None
) -> None:
    """Build the optimizer (and scheduler) once on a dummy parameter, so a negative learning rate
    or a bad scheduler argument fails when the model is built, not after the data is prepared."""
    try:
        dummy = optimizer([nn.Parameter(torch.zeros(1))])
        if lr_scheduler is not None:
            lr_scheduler(dummy)
    except ValueError as err:  # torch's own words: "Invalid learning rate: -0.001"
        raise ConfigValueError(f"invalid optimizer or lr_scheduler setting: {err}") from None


def _check_encoder_argument(encoder: Any) -> None:
    spec_ok = (
        isinstance(encoder, dict)
        and isinstance(encoder.get("class_path"), str)
        and isinstance(encoder.get("init_args", {}), dict)
    )
    if not (
        isinstance(encoder, str) or spec_ok or (callable(encoder) and not isinstance(encoder, dict))
    ):
        raise ConfigValueError(
            f"encoder must be a name ({', '.join(ENCODERS)}), a class path, a "
            f"{{class_path, init_args}} dictionary or an Encoder factory; got {encoder!r}"
        )


def _check_sizes(state_dict: dict[str, Any], embedding: Tensor, head: Tensor) -> None:
    saved_vocab = state_dict.get("embedding.weight")
    saved_head = state_dict.get("head.weight")
    if saved_vocab is None or saved_head is None:
        return
    saved = (saved_vocab.shape[0], saved_head.shape[0])
    built = (embedding.shape[0], head.shape[0])
    if saved != built:
        raise CheckpointError(
            f"This checkpoint was trained on other data: a vocabulary of {saved[0]:,} tokens and "
            f"{saved[1]} classes, but the data given builds {built[0]:,} tokens and {built[1]} "
            "classes, so its weights do not fit. Use the data config it was trained with, or "
            "give only `--data.data_files.<split>` files so the checkpoint's own tokenizer and "
            "classes are used (`--data.init_args.from_checkpoint <the checkpoint>`)."
        )


def _key(stage: str) -> str:
    # "train" cannot be a ModuleDict key: it would shadow `nn.Module.train`.
    return f"{stage}_"


def _build_encoder(encoder: EncoderFactory | str | dict, input_size: int) -> Encoder:
    if isinstance(encoder, str) and encoder in ENCODERS:
        return ENCODERS[encoder](input_size)
    if isinstance(encoder, str) and "." not in encoder:
        raise ValueError(
            f"unknown encoder {encoder!r}; choose one of {sorted(ENCODERS)} or give a class_path"
        )
    if isinstance(encoder, str | dict):  # a dotted class path, or a spec read from a checkpoint
        spec = {"class_path": encoder} if isinstance(encoder, str) else encoder
        module, _, name = spec["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name, None)
        if not (isinstance(cls, type) and issubclass(cls, Encoder)):
            raise ValueError(f"{spec['class_path']!r} is not an Encoder class")
        return cls(input_size, **spec.get("init_args", {}))
    built = encoder(input_size)
    if not isinstance(built, Encoder):
        raise TypeError(f"the encoder factory returned {type(built).__name__}, not an Encoder")
    return built


def _encoder_spec(encoder: EncoderFactory | str | dict) -> str | dict:
    """Plain data describing ``encoder`` (a name, or ``class_path`` + ``init_args``)."""
    if isinstance(encoder, str | dict):
        return encoder
    cls, kwargs, part = encoder, {}, encoder
    while isinstance(part, functools.partial):  # possibly nested partials
        kwargs = {**part.keywords, **kwargs}
        # jsonargparse wraps the class as a positional argument of its own helper function.
        classes = [a for a in (part.func, *part.args) if isinstance(a, type)]
        cls = classes[0] if classes else part.func
        part = part.func
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": kwargs}
