"""The system: ``SequenceClassifier`` owns loss, metrics, optimisation and logging."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import CatMetric, MeanMetric
from torchmetrics.classification import MulticlassF1Score, MultilabelF1Score

from lit_seqcls import calibration as cal
from lit_seqcls.batch import PAD_ID, Batch
from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY, CheckpointError, load_checkpoint
from lit_seqcls.encoders import EncoderFactory, resolve, spec
from lit_seqcls.metrics import (
    ECE,
    ECE_RAW,
    LOSS,
    MULTI_LABEL,
    SINGLE_LABEL,
    STAGES,
    TASKS,
    TEMPERATURE,
    VAL_ACC,
    classification_metrics,
    map_metric,
    metric_name,
    multilabel_metrics,
)
from lit_seqcls.network import ClassifierOutput, TextClassifierNetwork
from lit_seqcls.schedules import LRSchedule, build_schedule, check_schedule
from lit_seqcls.trust import check_checkpoint_hparams
from lit_seqcls.validation import (
    ConfigValueError,
    require_fraction,
    require_open_fraction,
    require_positive_int,
)

__all__ = ["ClassifierOutput", "EncoderFactory", "SequenceClassifier"]


StepOutput = dict[str, Tensor]
"""Every step returns ``loss`` (scalar), detached ``logits`` ``(B, C)`` divided by the model's
``temperature`` (so their softmax is the calibrated probabilities) and ``preds`` ``(B,)``;
multi-label: sigmoid of the logits, and ``preds`` 0/1 ``(B, C)`` (at the tuned thresholds)."""


class SequenceClassifier(L.LightningModule):
    """Trains a ``TextClassifierNetwork`` (embedding → encoder → dropout → head) with cross-entropy.

    The system owns loss, metrics, optimisation, logging and what a checkpoint holds; the network
    (``self.network``, a plain ``nn.Module``) owns the forward pass.

    Args:
        vocab_size: rows of the embedding; linked from the DataModule by the CLI.
        num_classes: size of the output layer; linked from the DataModule by the CLI.
        encoder: an encoder name (``rnn``, ``gru``, ``lstm``, ``bilstm``, ``attention``, ``cnn``,
            ``swem``) with its defaults, or a class with its arguments (``class_path`` /
            ``init_args``; the embedding size is passed for you).
        embedding_dim: size of the token embeddings.
        dropout: dropout on the embeddings and on the pooled text vector.
        word_dropout: in training, drop each word type's embedding (every occurrence in the
            batch) with this probability and scale the kept ones by ``1 / (1 - p)`` (AWD-LSTM's
            embedding dropout); 0 (off) by default, the identity in evaluation.
        pad_id: retired: the pad id is always 0 (``batch.PAD_ID``, checked where a tokenizer is
            loaded). Accepted only so that checkpoints saved with it still load; must be 0.
        class_names: names of the classes in label order (for logs and predictions); linked.
        class_weights: cross-entropy weight per class: ``none``; ``auto`` (inverse class
            frequency of the training split, ``N / (C * n_c)``); or ``{class name: weight}``
            (classes not named keep 1).
        class_counts: texts per class in the training split (for ``class_weights: auto``);
            linked from the DataModule by the CLI.
        label_smoothing: share of each target spread uniformly over all classes (0 to <1).
        calibrate: after each validation epoch, fit a temperature on the validation logits of
            all ranks (``temperature``, kept in checkpoints) and use ``softmax(logits / T)`` for
            predictions, test and the analysis callbacks; ``false`` keeps ``T = 1``.
        task: ``single_label`` (softmax, cross-entropy) or ``multi_label`` (a sigmoid per label,
            binary cross-entropy; ``class_weights: auto`` then gives each label the
            ``pos_weight`` negatives / positives of the training split, a dictionary gives the
            named labels' ``pos_weight``; ``label_smoothing`` pulls targets towards 0.5).
            Linked from the DataModule (lists of labels make the data multi-label). Multi-label
            models tune a decision threshold per label on the validation split after each
            validation epoch (maximising that label's F1; ``thresholds``, kept in checkpoints)
            and ``calibrate`` fits one temperature over all labels' logits.
        optimizer: optimizer factory; AdamW (torch defaults) unless configured. Adam and AdamW
            with ``fused`` and ``foreach`` unset run torch's fused kernel on CPU and CUDA
            (``_fused_where_unset``); ``fused: false`` opts out.
        lr_scheduler: optional learning-rate scheduler factory, stepped every epoch.
        lr_schedule: a per-step schedule by name instead of ``lr_scheduler``:
            ``warmup_cosine`` (linear warm-up over ``warmup_steps``, then a cosine decay to 0 at
            the run's last step, ``trainer.estimated_stepping_batches``); see ``schedules.py``.
        warmup_steps: optimizer steps of linear warm-up for ``lr_schedule``.

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
        class_weights: cal.ClassWeights = "none",
        class_counts: dict[str, int] | None = None,
        label_smoothing: float = 0.0,
        calibrate: bool = True,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        word_dropout: float = 0.0,
        lr_schedule: LRSchedule | None = None,
        warmup_steps: int = 0,
        task: str = SINGLE_LABEL,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigValueError(f"task must be one of {list(TASKS)}, got {task!r:.40}")
        require_positive_int("vocab_size", vocab_size)
        require_positive_int("num_classes", num_classes)
        require_positive_int("embedding_dim", embedding_dim)
        require_fraction("dropout", dropout)
        if label_smoothing:
            require_open_fraction("label_smoothing", label_smoothing)
        _check_optimization(optimizer, lr_scheduler)
        check_schedule(lr_schedule, warmup_steps, has_scheduler=lr_scheduler is not None)
        if pad_id != PAD_ID:
            raise ConfigValueError(
                f"pad_id must be {PAD_ID}: the padding id is fixed, leave the argument out "
                f"(got {pad_id!r})"
            )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"got {len(class_names)} class_names for num_classes={num_classes}")
        # Under LightningCLI the hparams are the parsed config (plain data); from Python we keep
        # the encoder as a plain-data spec so checkpoints load with `weights_only=True`.
        self.save_hyperparameters(ignore=["encoder", "optimizer", "lr_scheduler", "pad_id"])
        self.network = TextClassifierNetwork(
            vocab_size,
            num_classes,
            resolve(encoder, embedding_dim),
            embedding_dim,
            dropout,
            word_dropout=word_dropout,
        )
        if "encoder" not in self.hparams:
            plain = isinstance(encoder, str | dict)
            self.hparams["encoder"] = encoder if plain else spec(self.network.encoder)
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.label_smoothing = float(label_smoothing)
        self.calibrate = calibrate
        self.multi_label = task == MULTI_LABEL
        # The loss weights follow from the hyper-parameters (not saved: rebuilt on load); with
        # `auto` and no linked counts (a plain Trainer) they come from the DataModule in `setup`.
        # Multi-label `auto` needs the number of training texts too: always from `setup`.
        auto_later = self.multi_label and class_weights == "auto"
        weights = (
            None if auto_later else cal.class_weights(class_weights, self.class_names, class_counts)
        )
        self.register_buffer("loss_weight", weights, persistent=False)  # (C,) or None
        if self.multi_label:  # per-label decision thresholds, tuned on validation
            self.register_buffer("thresholds", torch.full((num_classes,), 0.5))
        # 1.0 = uncalibrated; fitted after each validation epoch, saved in the state_dict.
        self.register_buffer("temperature", torch.tensor(1.0))
        # Plain data of the last calibration per stage (ECE, bins, coverage curve), for the
        # analysis callbacks, `predict --predictions.min_confidence` and the checkpoint.
        self.calibration: dict[str, dict[str, Any]] = {}
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_schedule, self.warmup_steps = lr_schedule, warmup_steps
        # Plain data from the DataModule (tokenizer JSON, class names, ...), saved in checkpoints
        # so that a checkpoint alone turns raw text into predictions.
        self.text_pipeline: dict[str, Any] | None = None

        # Metric objects are modules (their states move with the model); keyed by stage.
        build = multilabel_metrics if self.multi_label else classification_metrics
        self.metrics = nn.ModuleDict({_key(s): build(num_classes, s) for s in STAGES})
        # Multi-label mean average precision (of probabilities, not 0/1 predictions).
        self.map_metrics = nn.ModuleDict(
            {_key(s): map_metric(num_classes, s) for s in ("val", "test") if self.multi_label}
        )
        self.losses = nn.ModuleDict({_key(s): MeanMetric() for s in STAGES})
        self.test_f1_per_class = (
            MultilabelF1Score(num_classes, average=None)
            if self.multi_label
            else MulticlassF1Score(num_classes, average=None)
        )
        # Every evaluated text's raw logits and label, gathered across ranks at epoch end.
        self.eval_logits = nn.ModuleDict(
            {_key(s): CatMetric(nan_strategy="disable") for s in ("val", "test")}
        )
        self.eval_labels = nn.ModuleDict(
            {_key(s): CatMetric(nan_strategy="disable") for s in ("val", "test")}
        )

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's ``load_from_checkpoint``, after checking the file's hyper-parameters.

        Lightning rebuilds the model from ``hyper_parameters`` through jsonargparse, which calls
        whatever a ``class_path`` there names; ``lit_seqcls.trust`` refuses anything but the
        model's own arguments as plain data first (see docs/security.md).
        """
        if isinstance(checkpoint_path, str | Path) and Path(checkpoint_path).is_file():
            check_checkpoint_hparams(load_checkpoint(checkpoint_path), checkpoint_path, cls)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def setup(self, stage: str) -> None:
        # Duck-typed, so the core never imports `datamodules/`: a DataModule may offer its text
        # pipeline (kept for checkpoints) and pretrained vectors (used to start training).
        try:
            datamodule = self.trainer.datamodule
        except RuntimeError:  # not attached to a Trainer (`setup` called by hand)
            datamodule = None
        pipeline = getattr(datamodule, "text_pipeline", None)
        if pipeline is not None:
            self.text_pipeline = pipeline
        counts = getattr(datamodule, "class_counts", None) if stage == "fit" else None
        auto = self.hparams.get("class_weights") == "auto" and self.loss_weight is None
        if auto and counts and self.multi_label:
            total = getattr(datamodule, "num_train_texts", None)
            if total:
                weights = cal.pos_weights(self.class_names, counts, total)
                self.loss_weight = weights.to(self.device)
        elif auto and counts:
            self.loss_weight = cal.class_weights("auto", self.class_names, counts).to(self.device)
        vectors = getattr(datamodule, "pretrained_embeddings", None) if stage == "fit" else None
        if vectors is not None:
            self.network.load_pretrained_embeddings(vectors)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.text_pipeline is not None:
            checkpoint[TEXT_PIPELINE_KEY] = self.text_pipeline
        if "val" in self.calibration:
            checkpoint[CALIBRATION_KEY] = self.calibration["val"]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Called before the weights are copied (by `load_from_checkpoint` and by a Trainer's
        # `ckpt_path`), so the keys can still be renamed and the sizes checked.
        state_dict = checkpoint.get("state_dict", {})
        _rename_flat_keys(state_dict)
        _check_sizes(state_dict, self.network)
        if state_dict:  # saved before calibration (#18): uncalibrated
            state_dict.setdefault("temperature", torch.tensor(1.0))
        self.text_pipeline = checkpoint.get(TEXT_PIPELINE_KEY, self.text_pipeline)
        if isinstance(checkpoint.get(CALIBRATION_KEY), dict):
            self.calibration["val"] = checkpoint[CALIBRATION_KEY]

    def forward(self, input_ids: Tensor, lengths: Tensor) -> ClassifierOutput:
        """Logits ``(B, C)`` for padded ``input_ids`` ``(B, T)`` with real ``lengths`` ``(B,)``."""
        return self.network(input_ids, lengths)

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
        if self.multi_label:
            probs = (logits.float() / self.temperature).sigmoid()  # (B, C), calibrated
            out = {"probs": probs, "labels": (probs >= self.thresholds).long()}
        else:
            probs = (logits.float() / self.temperature).softmax(dim=-1)  # (B, C), calibrated
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
        batch_size = len(batch)
        if self.multi_label:
            targets = batch.labels.float()  # (B, C) 0/1
            if self.label_smoothing:
                targets = targets * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.loss_weight)
            probs = (logits.detach().float() / self.temperature).sigmoid()  # (B, C)
            preds = (probs >= self.thresholds).long()  # (B, C)
            if stage != "train":  # it keeps every probability: not over the training set
                self.map_metrics[_key(stage)].update(probs, batch.labels.long())
                self.log_dict(
                    self.map_metrics[_key(stage)],
                    on_step=False,
                    on_epoch=True,
                    batch_size=batch_size,
                )
            metric_target = batch.labels.long()
        else:
            loss = F.cross_entropy(
                logits, batch.labels, weight=self.loss_weight, label_smoothing=self.label_smoothing
            )
            preds = logits.argmax(dim=-1)  # (B,)
            metric_target = batch.labels

        # Metric objects accumulate over the epoch and reduce across ranks in `compute`, which
        # Lightning calls on every rank at epoch end; so the epoch values are exact under DDP.
        self.losses[_key(stage)].update(loss.detach(), weight=batch_size)
        self.metrics[_key(stage)].update(preds, metric_target)
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
            self.test_f1_per_class.update(preds, metric_target)
        if stage != "train":
            self.eval_logits[_key(stage)].update(logits.detach().float())
            self.eval_labels[_key(stage)].update(batch.labels)
        # Callbacks (confusion matrix, error analysis) read `logits` in `on_*_batch_end`: divided
        # by the temperature, their softmax is the calibrated probabilities (argmax unchanged).
        return {"loss": loss, "logits": logits.detach() / self.temperature, "preds": preds}

    def on_validation_epoch_end(self) -> None:
        # Before ModelCheckpoint saves (in `on_validation_end`), so every checkpoint holds the
        # temperature fitted for its own weights.
        # `validate` on a checkpoint reports its calibration and keeps its temperature.
        fitting = self.trainer.state.fn == "fit" and not self.trainer.sanity_checking
        self._calibration_epoch_end("val", fit=self.calibrate and fitting)

    def on_test_epoch_end(self) -> None:
        # A vector metric cannot go through `self.log`; compute (a collective: every rank calls it)
        # and log one scalar per class under its name.
        per_class = self.test_f1_per_class.compute()  # (C,)
        for name, value in zip(self.class_names, per_class, strict=True):
            self.log(metric_name("test", f"f1/{name}"), value)
        self.test_f1_per_class.reset()
        self._calibration_epoch_end("test", fit=False)

    def _calibration_epoch_end(self, stage: str, fit: bool) -> None:
        """Gather the stage's logits from every rank (a collective), refit the temperature on
        validation (the same numbers on every rank give the same ``T``), log the ECE before and
        after and keep the report for the callbacks."""
        logits_metric, labels_metric = self.eval_logits[_key(stage)], self.eval_labels[_key(stage)]
        if logits_metric.update_count == 0 and self.trainer.world_size == 1:
            return  # nothing evaluated (under DDP every rank must reach the gather below)
        logits = logits_metric.compute()  # (N, C): every rank's texts, a collective under DDP
        labels = labels_metric.compute().long()
        logits_metric.reset()
        labels_metric.reset()
        if logits.ndim != 2 or len(logits) == 0 or self.trainer.sanity_checking:
            return
        # (N,); multi-label (N, C). torchmetrics squeezes a one-element result to 0-d (a single
        # validation text): the shape comes back from the logits'.
        labels = labels.view(len(logits), -1) if self.multi_label else labels.view(-1)
        if self.multi_label:
            if fit:
                self.temperature.fill_(cal.fit_sigmoid_temperature(logits, labels))
            if stage == "val" and self.trainer.state.fn == "fit":
                # Thresholds for the (calibrated) probabilities; the same gathered numbers on
                # every rank give the same thresholds.
                probs = (logits.float() / self.temperature).sigmoid()
                self.thresholds.copy_(cal.fit_thresholds(probs, labels).to(self.thresholds))
            report = cal.multilabel_calibration_report(
                logits, labels, float(self.temperature), self.thresholds
            )
        elif fit:
            self.temperature.fill_(cal.fit_temperature(logits, labels))
        if not self.multi_label:
            report = cal.calibration_report(logits, labels, float(self.temperature))
        self.calibration[stage] = report
        # The same value on every rank (computed from the gathered logits).
        for name in (ECE_RAW, ECE, TEMPERATURE):
            self.log(metric_name(stage, name), report[name], sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = _fused_where_unset(self.optimizer_factory(self.parameters()))
        if self.lr_schedule is not None:
            # Per step, over this run's optimizer steps; its state is saved in checkpoints.
            total = self.trainer.estimated_stepping_batches
            scheduler = build_schedule(self.lr_schedule, optimizer, self.warmup_steps, total)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
            }
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": VAL_ACC},
        }


# The optimizers whose `fused=None` (torch's default: the per-tensor loop on CPU) is taken to mean
# the fused kernel, on the devices where that kernel has run under this package's tests.
_FUSABLE = (torch.optim.Adam, torch.optim.AdamW)
_FUSED_DEVICES = ("cpu", "cuda")


def _fused_where_unset(optimizer: Optimizer) -> Optimizer:
    """Adam(W) with ``fused``, ``foreach`` and ``differentiable`` left unset, rebuilt with the
    fused kernel (one pass over each tensor instead of a dozen); any other optimizer as it is.

    Same algorithm, rounding aside. It matters because of the embedding table: on one CPU thread
    an AdamW step over a 30,000 × 300 embedding takes ~76 ms per-tensor, ~12 ms fused, and a
    whole swem training step runs 2.1× faster (1.1-1.8× for the other encoders; BENCHMARKS.md).
    ``fused: false`` (or ``foreach``) in the config keeps torch's choice.

    Example:
        >>> params = [nn.Parameter(torch.zeros(2))]
        >>> _fused_where_unset(torch.optim.AdamW(params)).defaults["fused"]
        True
        >>> _fused_where_unset(torch.optim.AdamW(params, fused=False)).defaults["fused"]
        False
    """
    defaults = optimizer.defaults
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if (
        type(optimizer) not in _FUSABLE
        or (defaults.get("fused"), defaults.get("foreach")) != (None, None)
        or defaults.get("differentiable")
        or defaults.get("capturable")
        or not all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params)
    ):
        return optimizer
    # Rebuilt from the constructor's own arguments (AdamW's defaults hold one it does not take).
    accepted = inspect.signature(type(optimizer)).parameters
    settings = {key: value for key, value in defaults.items() if key in accepted}
    groups = [{**group, "fused": True} for group in optimizer.param_groups]  # what step() reads
    return type(optimizer)(groups, **{**settings, "fused": True})


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


# Before the network became its own module (#15) its parts sat on the system: `embedding.weight`
# is now `network.embedding.weight`. Renamed on load, so older checkpoints keep working.
_FLAT_PREFIXES = ("embedding.", "encoder.", "head.")
# The checkpoint key of the last validation calibration report (plain data).
CALIBRATION_KEY = "calibration"


def _rename_flat_keys(state_dict: dict[str, Any]) -> None:
    for key in [k for k in state_dict if k.startswith(_FLAT_PREFIXES)]:
        state_dict[f"network.{key}"] = state_dict.pop(key)


def _check_sizes(state_dict: dict[str, Any], network: TextClassifierNetwork) -> None:
    """A checkpoint of another vocabulary or class count gets a sentence, not torch's dump."""
    saved_vocab = state_dict.get("network.embedding.weight")
    saved_head = state_dict.get("network.head.weight")
    if saved_vocab is None or saved_head is None:
        return
    saved = (saved_vocab.shape[0], saved_head.shape[0])
    built = (network.embedding.num_embeddings, network.head.out_features)
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
