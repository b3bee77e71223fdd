"""The callback ``lit-seqcls compare`` adds to each run: progress lines and a summary file.

Each child ``fit``/``test`` process prints one ``@@compare {json}`` line per event on stdout (the
parent reads them to show progress) and writes what the comparison needs into the run's log dir:
``compare_fit.json`` (training time, throughput, parameter counts, validation history) and
``compare_test.json`` (test metrics and per-example length and correctness, for accuracy by
length), and into the run's folder (``default_root_dir``) ``test_predictions.jsonl``: every test
example's true and predicted class and probabilities, gathered from every rank, in input order
(``lit_seqcls.compare.predictions``; the report's paired statistics read it). It measures only;
it changes nothing in training. Its counts and clock are part of the
checkpoint (``state_dict``), so a run resumed with ``--ckpt_path auto`` reports the whole run:
the validation history, the training time (without the time it was stopped) and the throughput.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lit_seqcls.compare.predictions import PREDICTIONS_FILE, class_name, write_predictions
from lit_seqcls.runtime.distributed import gather_objects

EVENT_PREFIX = "@@compare "
FIT_FILE = "compare_fit.json"
VAL_TEXTS = "val_texts"  # the history's and the epoch event's count of validation texts
TEST_FILE = "compare_test.json"


class ComparisonReporter(Callback):
    """Reports epochs, timing, throughput and per-example test results of one run.

    Training throughput counts the time inside training batches (forward, backward, optimizer
    step) only, not data loading or validation: it compares the encoders, not the input pipeline.
    Under DDP only rank zero reports, and its counts cover its own shard.

    Example:
        >>> reporter = ComparisonReporter()
        >>> reporter.train_samples, reporter.history
        (0, [])
    """

    def __init__(self) -> None:
        self.train_samples = 0
        self.train_tokens = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, float]] = []
        # (index, length, label, pred, probabilities) of every test example of this rank
        self.examples: list[tuple[int | None, int, int, int, list[float]]] = []
        self._fit_start = 0.0
        self._batch_start = 0.0
        self._elapsed_before = 0.0  # fit time of the attempts before a resume
        self._val_texts = 0  # texts of this rank's current validation pass

    def state_dict(self) -> dict[str, Any]:
        # Plain data: checkpoints load with `weights_only=True`.
        return {
            "train_samples": self.train_samples,
            "train_tokens": self.train_tokens,
            "train_seconds": self.train_seconds,
            "history": self.history,
            "elapsed": self._elapsed(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_samples = state_dict["train_samples"]
        self.train_tokens = state_dict["train_tokens"]
        self.train_seconds = state_dict["train_seconds"]
        self.history = list(state_dict["history"])
        self._elapsed_before = state_dict["elapsed"]

    def _elapsed(self) -> float:
        """Seconds of ``fit`` so far, over every attempt of a resumed run."""
        running = time.perf_counter() - self._fit_start if self._fit_start else 0.0
        return self._elapsed_before + running

    # -- fit -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()
        self._emit(trainer, "fit_start", max_epochs=trainer.max_epochs)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_seconds += time.perf_counter() - self._batch_start
        self.train_samples += len(batch)
        self.train_tokens += int(batch.lengths.sum())

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_texts = 0

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._val_texts += len(batch)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not `on_validation_epoch_end`: Lightning runs the callbacks' before the model's, whose
        # own (the temperature and ECE of this epoch) would then be the previous epoch's. Here
        # every epoch-end hook has run, and ModelCheckpoint (always last) saves this entry.
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        # How many texts the validation scores rest on (every rank's shard): tuning says how
        # far apart two of them must be to differ by more than this split's noise.
        metrics[VAL_TEXTS] = sum(gather_objects(trainer, self._val_texts))
        elapsed = self._elapsed()  # read by `RunResult` for the time to the best validation score
        self.history.append({"epoch": trainer.current_epoch, "elapsed": elapsed, **metrics})
        self._emit(
            trainer,
            "epoch",
            epoch=trainer.current_epoch + 1,
            max_epochs=trainer.max_epochs,
            elapsed=elapsed,
            **metrics,
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The encoder is the model's `network.encoder` (or, in older models, `encoder`).
        network = getattr(pl_module, "network", pl_module)
        encoder = getattr(network, "encoder", None)
        ckpt = trainer.checkpoint_callback
        summary = {
            "train_time_s": self._elapsed(),
            "train_step_time_s": self.train_seconds,
            "train_samples": self.train_samples,
            "train_tokens": self.train_tokens,
            "samples_per_s": self.train_samples / max(self.train_seconds, 1e-9),
            "tokens_per_s": self.train_tokens / max(self.train_seconds, 1e-9),
            "params": sum(p.numel() for p in pl_module.parameters()),
            "encoder_params": (
                None if encoder is None else sum(p.numel() for p in encoder.parameters())
            ),
            "epochs": trainer.current_epoch,
            "best_model_path": ckpt.best_model_path if ckpt is not None else "",
            "history": self.history,
            "log_dir": trainer.log_dir,
            "device": _device(trainer),
        }
        self._write(trainer, FIT_FILE, summary)

    # -- test ------------------------------------------------------------------------------
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        # The model's test step returns its logits, so no second forward pass is needed.
        index = batch.index.tolist() if batch.index is not None else [None] * len(batch)
        logits = outputs["logits"].float()
        multi = outputs["preds"].ndim == 2  # multi-label: 0/1 rows, a sigmoid per label
        probs = logits.sigmoid() if multi else logits.softmax(dim=-1)  # (B, C)
        rows = zip(
            index,
            batch.lengths.tolist(),
            batch.labels.tolist(),
            outputs["preds"].tolist(),
            probs.tolist(),
            strict=True,
        )
        self.examples.extend(rows)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
        }
        # Every rank's share (a collective: every rank calls it); DDP evaluation never repeats
        # an example (docs/DESIGN.md, "Equal counts"), so each test example is here once.
        examples = [row for part in gather_objects(trainer, self.examples) for row in part]
        examples.sort(key=lambda r: (r[0] is None, r[0] or 0))
        predictions = Path(trainer.default_root_dir) / PREDICTIONS_FILE
        if trainer.is_global_zero:
            names = getattr(pl_module, "class_names", None)
            write_predictions(predictions, (_prediction(row, names) for row in examples))
        self._write(
            trainer,
            TEST_FILE,
            {
                "metrics": metrics,
                "examples": {
                    "index": [r[0] for r in examples],
                    "length": [r[1] for r in examples],
                    "correct": [int(r[2] == r[3]) for r in examples],
                },
                "predictions": str(predictions.resolve()),
            },
        )

    # -- output ----------------------------------------------------------------------------
    def _write(self, trainer: L.Trainer, name: str, payload: dict[str, Any]) -> None:
        # `trainer.log_dir` is a collective under DDP (a broadcast): read it on every rank.
        path = Path(trainer.log_dir or ".") / name
        if not trainer.is_global_zero:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload), encoding="utf-8")
        self._emit(trainer, "wrote", file=name, path=str(path.resolve()))

    @staticmethod
    def _emit(trainer: L.Trainer, event: str, **fields: Any) -> None:
        if trainer.is_global_zero:
            print(EVENT_PREFIX + json.dumps({"event": event, **fields}), flush=True)


def _device(trainer: L.Trainer) -> dict[str, Any]:
    """What the run trained on: device type, torch threads, and a GPU's name and peak memory."""
    device = trainer.strategy.root_device
    info: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return info


def _prediction(row: tuple, class_names: list[str] | None) -> dict[str, Any]:
    """One line of ``test_predictions.jsonl``: classes by name (by id without names)."""
    index, _, label, pred, probs = row
    names = class_names or [str(i) for i in range(len(probs))]
    return {
        "index": index,
        "label": class_name(label, names),  # multi-label: the label set "a|b"
        "pred": class_name(pred, names),
        "probs": {name: round(p, 6) for name, p in zip(names, probs, strict=True)},
    }
