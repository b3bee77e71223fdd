"""Our overhead: ``lit-seqcls fit`` / ``validate`` versus a hand-written PyTorch loop, per encoder.

Both sides train the same model (same seed, so the same initial weights) on the same batches (the
DataModule's own loaders: bucketed, collated, IMDB-like lengths) with the same AdamW and gradient
clipping. Ours is the real CLI (``lit_seqcls.cli.main``, the shipped configs, every default
callback: telemetry, RNG states, checkpointing, progress bar, metrics); the baseline is the loop a
user would write by hand. Timing starts after ``--warmup`` steps and includes fetching the batch.
Training: forward + backward + clip + step. Inference: ``validate`` (logits, loss and the
torchmetrics accuracy/F1) versus a ``torch.inference_mode`` loop computing logits and accuracy.
The two sides alternate for ``--rounds`` rounds and the best round of each counts.

    python benchmarks/overhead.py                          # all six encoders, ~6 min on 2 cores
    python benchmarks/overhead.py --encoders cnn bilstm --steps 30
    python benchmarks/overhead.py --encoders rnn attention --stages inference --rounds 5
"""

from __future__ import annotations

import tempfile
import time
from typing import ClassVar

import lightning as L
import torch

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.cli import main as cli_main

try:
    from benchmarks.common import ROOT, callback_class, machine, step_timing_parser
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT, callback_class, machine, step_timing_parser
ENCODERS = ("rnn", "gru", "lstm", "bilstm", "attention", "cnn")
STAGES = {"train": "fit", "inference": "validate"}  # stage -> the CLI subcommand timed
# IMDB-like lengths (median ~200 words, long tail cut at 512), batch 64, as the issue asks.
DATA = {"median_length": 200, "max_text_length": 512, "train_size": 8000, "test_size": 200}
DATA["eval_batch_size"] = 64  # 800 validation texts: 13 batches, enough to time


class StepTimer(L.Callback):
    """Times training (or validation) batches after the first ``warmup``, fetch included."""

    warmup = 3
    steps = 20
    result: ClassVar[dict[str, float]] = {}

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.tokens = self.count = 0

    def _start(self, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def _end(self, trainer: L.Trainer, batch, batch_idx: int) -> None:
        if batch_idx >= self.warmup:
            self.end = time.perf_counter()
            self.tokens += int(batch.lengths.sum())
            self.count += 1
        if self.count == self.steps:
            trainer.should_stop = True
            self._finish()

    def _finish(self) -> None:
        if self.count and not StepTimer.result:
            StepTimer.result = {"seconds": self.end - self.start, "tokens": self.tokens}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._finish()  # fewer validation batches than steps: time those there are

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start(batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._end(trainer, batch, batch_idx)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._start(batch_idx)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking:
            self._end(trainer, batch, batch_idx)


def ours(encoder: str, subcommand: str, root: str) -> float:
    """Real tokens/s of the CLI's training (``fit``) or evaluation (``validate``) batches."""
    timer = callback_class("overhead", "StepTimer")
    timer.result, timer.steps, timer.warmup = {}, StepTimer.steps, StepTimer.warmup
    args = [
        subcommand,
        *("--config", str(ROOT / "configs/data/synthetic.yaml")),
        *("--config", str(ROOT / f"configs/model/{encoder}.yaml")),
        *[f"--data.init_args.{k}={v}" for k, v in DATA.items()],
        "--trainer.callbacks+=benchmarks.overhead.StepTimer",
        f"--trainer.default_root_dir={root}",
        "--trainer.num_sanity_val_steps=0",
        "--seed_everything=0",
    ]
    if subcommand == "fit":
        args += ["--trainer.limit_val_batches=0", "--trainer.max_epochs=1"]
    cli_main(args)
    return timer.result["tokens"] / timer.result["seconds"]


def hand_written(encoder: str, train: bool) -> float:
    """Real tokens/s of a plain PyTorch loop over the same model, optimizer and batches."""
    L.seed_everything(0, verbose=False)
    dm = SyntheticDataModule(task="keyword", batch_size=64, **DATA)
    dm.prepare_data()
    dm.setup("fit")
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder=encoder)
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    loader = dm.train_dataloader() if train else dm.val_dataloader()
    model.train(train)
    tokens, start = 0, 0.0
    end = time.perf_counter()
    for step, batch in enumerate(loader):
        if step == StepTimer.warmup:
            start, tokens = time.perf_counter(), 0
        if train:
            logits = model(batch.input_ids, batch.lengths).logits
            loss = torch.nn.functional.cross_entropy(logits, batch.labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        else:
            with torch.inference_mode():
                logits = model(batch.input_ids, batch.lengths).logits
                (logits.argmax(-1) == batch.labels).float().mean()
        tokens += int(batch.lengths.sum())
        end = time.perf_counter()
        if step + 1 == StepTimer.warmup + StepTimer.steps:
            break  # validation may have fewer batches: then all of them count, as in ours
    return tokens / (end - start)


def main() -> None:
    parser = step_timing_parser(__doc__, ENCODERS)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    args = parser.parse_args()
    StepTimer.steps, StepTimer.warmup = args.steps, args.warmup
    print(
        f"{machine()}; batch 64, IMDB-like lengths "
        f"(median {DATA['median_length']}), {args.steps} timed steps, best of {args.rounds}"
    )
    print("| encoder | stage | hand-written tokens/s | lit-seqcls tokens/s | overhead |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as root:
        for encoder in args.encoders:
            for stage, subcommand in ((s, STAGES[s]) for s in args.stages):
                base = mine = 0.0
                for _ in range(args.rounds):
                    base = max(base, hand_written(encoder, train=stage == "train"))
                    mine = max(mine, ours(encoder, subcommand, root))
                print(
                    f"| {encoder} | {stage} | {base:,.0f} | {mine:,.0f} "
                    f"| **{(base / mine - 1) * 100:+.1f}%** |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
