"""Does data loading starve the model? The share of training time spent waiting for data (#8.4).

A real ``Trainer.fit`` on the IMDB reviews (``IMDBDataModule`` from a warm cache, batch 64 and
max length 400 as in configs/data/imdb.yaml), timed by Lightning's ``SimpleProfiler``:
``[_TrainingEpochLoop].train_dataloader_next`` (waiting for the next batch: fetch and collate in
the main process, or the wait on a worker) against ``run_training_batch`` (forward, backward,
clipping, optimizer step). Encoders at the shipped sizes: ``cnn`` (the shortest step, so the
largest data share) and ``bilstm``; ``num_workers`` 0 (the DataModules' default), 1 and 2. The
first ``WARMUP`` batches (worker start, one-off allocations) are left out; the configurations
alternate for ``--rounds`` rounds and the round with the fastest steps counts.

On a shared machine the training step slows down more than the data loading does, which makes
the measured share look smaller. The last column is the share against the step time of idle
cores instead (docs/DESIGN.md: bare PyTorch, 2 cores, 100k real tokens/s for the CNN, 20k for
the BiLSTM) with the data wait as measured here: an upper estimate.

    python benchmarks/dataloading.py                     # ../shared/data, ~5 min on 2 cores
    python benchmarks/dataloading.py --steps 40 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import datasets
import lightning as L
from lightning.pytorch.profilers import SimpleProfiler

from datamodules import IMDBDataModule
from lit_seqcls import SequenceClassifier

try:
    from benchmarks.common import ROOT, machine
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT, machine

WARMUP = 3
FETCH, STEP = "[_TrainingEpochLoop].train_dataloader_next", "run_training_batch"
IDLE_TOKENS_PER_S = {"cnn": 100_000, "bilstm": 20_000}  # docs/DESIGN.md, 2 idle cores
# (encoder, num_workers, steps as a fraction of --steps: the BiLSTM step is ~5x longer)
CONFIGS = [("cnn", 0, 1.0), ("cnn", 1, 1.0), ("cnn", 2, 1.0), ("bilstm", 0, 0.4)]


class TokenCounter(L.Callback):
    """Real (non-pad) tokens of every training batch."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tokens.append(int(batch.lengths.sum()))


def fit(dm: IMDBDataModule, encoder: str, workers: int, steps: int) -> dict[str, float]:
    """Mean seconds per batch waiting for data and training, after the warm-up."""
    L.seed_everything(0, verbose=False)
    dm.num_workers = workers
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder=encoder)
    profiler, counter = SimpleProfiler(), TokenCounter()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=WARMUP + steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,  # configs/trainer/default.yaml
        profiler=profiler,
        callbacks=[counter],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    wall = time.perf_counter() - start
    # The fetcher prefetches one batch ahead: the last fetch may come after the last step.
    fetch = profiler.recorded_durations[FETCH][WARMUP : WARMUP + steps]
    step = profiler.recorded_durations[STEP][WARMUP : WARMUP + steps]
    tokens = counter.tokens[WARMUP : WARMUP + steps]
    return {
        "fetch": sum(fetch) / len(fetch),
        "step": sum(step) / len(step),
        "idle_step": sum(tokens) / len(tokens) / IDLE_TOKENS_PER_S[encoder],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--steps", type=int, default=20, help="timed CNN batches per run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        dm = IMDBDataModule(path=str(args.data / "imdb"), cache_dir=cache, batch_size=64)
        dm.prepare_data()
        dm.setup("fit")
        default_workers = dm.num_workers
        best: dict[tuple[str, int], dict[str, float]] = {}
        for _ in range(args.rounds):
            for encoder, workers, share in CONFIGS:
                r = fit(dm, encoder, workers, max(5, round(args.steps * share)))
                key = (encoder, workers)
                best[key] = min(best.get(key, r), r, key=lambda x: x["fetch"] + x["step"])
    print(f"## Data loading during training (IMDB, batch 64)\n\n{machine()}; load average "
          f"{load:.1f} → {os.getloadavg()[0]:.1f}; DataModule default num_workers = "
          f"{default_workers}\n")  # fmt: skip
    print("| encoder | num_workers | waiting for data ms/batch | training step ms/batch "
          "| data share | fit wall s | share vs idle-core step |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (encoder, workers), r in best.items():
        share = r["fetch"] / (r["fetch"] + r["step"])
        idle = r["fetch"] / (r["fetch"] + r["idle_step"])
        mark = " (default)" if workers == default_workers else ""
        print(f"| {encoder} | {workers}{mark} | {1000 * r['fetch']:.1f} | {1000 * r['step']:.0f} "
              f"| {share:.1%} | {r['wall']:.1f} | {idle:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()
