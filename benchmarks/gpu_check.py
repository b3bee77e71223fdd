"""GPU check: every encoder trains with bf16 on one GPU and with DDP on all visible GPUs.

For each encoder it runs a fixed number of optimizer steps on the offline synthetic data,
checks that no loss is NaN/inf and that the loss goes down, and reports real (non-pad) tokens/s.
Then DDP scaling efficiency = tokens/s on N GPUs / (N × tokens/s on one GPU), with the same
per-GPU batch (weak scaling). Exits non-zero if any check fails. Expected to take 2-4 minutes
(an estimate: it has only been dry-run on CPU).

    python benchmarks/gpu_check.py                       # one GPU, then DDP on all visible GPUs
    python benchmarks/gpu_check.py --steps 300 --json gpu_check.json
    python benchmarks/gpu_check.py --accelerator cpu --precision 32-true --steps 20 --devices 2
                                                         # dry run of the code path on CPU

Each configuration runs in its own process (``torchrun`` for DDP), which runs every encoder in
turn; the parent collects the JSON each one writes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

ENCODERS = ("rnn", "gru", "lstm", "bilstm", "attention", "cnn", "swem")
WARMUP = 20  # steps not timed: CUDA kernels autotune, allocator warms up


def main() -> None:
    args = _parser().parse_args()
    if args.worker:
        _worker(args)
        return
    gpus = args.devices or (torch.cuda.device_count() if args.accelerator == "gpu" else 2)
    if args.accelerator == "gpu" and gpus == 0:
        sys.exit("gpu_check: no CUDA device visible (use --accelerator cpu for a dry run)")
    runs = {1: _launch(args, 1)}
    if gpus > 1:
        runs[gpus] = _launch(args, gpus)
    failures = _report(runs, gpus)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    sys.exit(1 if failures else 0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per encoder")
    p.add_argument("--batch_size", type=int, default=64, help="texts per GPU per step")
    p.add_argument("--devices", type=int, default=0, help="GPUs for DDP (default: all visible)")
    p.add_argument("--accelerator", default="gpu", choices=["gpu", "cpu"])
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS)
    p.add_argument("--json", help="write all measurements here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def _launch(args: argparse.Namespace, devices: int) -> dict:
    """Run every encoder on ``devices`` processes in a fresh process; return its results."""
    out = Path(tempfile.mkdtemp()) / "result.json"
    worker = [
        __file__, "--worker", "--out", str(out), "--devices", str(devices),
        "--steps", str(args.steps), "--batch_size", str(args.batch_size),
        "--accelerator", args.accelerator, "--precision", args.precision,
        "--encoders", *args.encoders,
    ]  # fmt: skip
    if devices == 1:
        command = [sys.executable, *worker]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={devices}", *worker]  # fmt: skip
    print(f"\n$ {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def _worker(args: argparse.Namespace) -> None:
    from datamodules import SyntheticDataModule
    from lit_seqcls import SequenceClassifier

    torch.set_float32_matmul_precision("high")
    data = SyntheticDataModule(
        train_size=20_000,  # DDP runs may cycle through it more than once: only speed matters
        test_size=200, median_length=64, max_text_length=256,
        batch_size=args.batch_size, pad_to_multiple_of=8, num_workers=2, seed=0,
        cache_dir=tempfile.mkdtemp(),
    )  # fmt: skip
    results = {}
    for name in args.encoders:
        L.seed_everything(0, verbose=False)
        meter = _Meter()
        trainer = L.Trainer(
            accelerator=args.accelerator, devices=args.devices, precision=args.precision,
            strategy="ddp" if args.devices > 1 else "auto", max_steps=args.steps + WARMUP,
            limit_val_batches=0, num_sanity_val_steps=0, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            callbacks=[meter],
        )  # fmt: skip
        model = SequenceClassifier(data.vocab_size, data.num_classes, encoder=name)
        trainer.fit(model, data)
        results[name] = meter.summary(trainer)
        if trainer.is_global_zero:
            print(f"{name:>10} on {args.devices}: {results[name]}", flush=True)
    if int(os.environ.get("RANK", "0")) == 0:
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        Path(args.out).write_text(json.dumps({"device": device, "encoders": results}))


class _Meter(L.Callback):
    """Losses of every step; real tokens and wall time of the steps after ``WARMUP``."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.tokens = 0
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == WARMUP:
            _sync()
            self.start = time.perf_counter()
        if trainer.global_step >= WARMUP:
            self.tokens += int(batch.lengths.sum())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        if trainer.global_step >= trainer.max_steps:  # the last step: stop the clock here,
            _sync()  # not after fit returns (worker shutdown and teardown are not training)
            self.end = time.perf_counter()

    def summary(self, trainer) -> dict:
        seconds = self.end - self.start
        tokens = trainer.strategy.reduce(torch.tensor(float(self.tokens)), reduce_op="sum")
        window = max(1, len(self.losses) // 5)  # first vs last fifth: less noisy than steps
        first, last = self.losses[:window], self.losses[-window:]
        return {
            "tokens_per_s": float(tokens) / seconds,
            "loss_first": sum(first) / len(first),
            "loss_last": sum(last) / len(last),
            "finite": all(math.isfinite(x) for x in self.losses),
            "steps": len(self.losses),
        }


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _report(runs: dict[int, dict], gpus: int) -> list[str]:
    print(f"\ndevice: {runs[1]['device']}   precision, steps: see command lines above")
    header = f"{'encoder':>10} {'1 GPU tok/s':>12} {'loss first→last':>17}"
    if gpus > 1:
        header += f" {f'{gpus} GPU tok/s':>12} {'scaling':>8}"
    print(header)
    failures = []
    for name, one in runs[1]["encoders"].items():
        losses = f"{one['loss_first']:.3f}→{one['loss_last']:.3f}"
        line = f"{name:>10} {one['tokens_per_s']:>12,.0f} {losses:>17}"
        checks = [one]
        if gpus > 1:
            many = runs[gpus]["encoders"][name]
            efficiency = many["tokens_per_s"] / (gpus * one["tokens_per_s"])
            line += f" {many['tokens_per_s']:>12,.0f} {efficiency:>8.0%}"
            checks.append(many)
        for result in checks:
            if not result["finite"]:
                failures.append(f"{name}: a loss was NaN/inf")
            elif result["loss_last"] >= result["loss_first"]:
                failures.append(f"{name}: loss did not decrease ({result})")
        print(line)
    for failure in failures:
        print(f"FAIL {failure}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return failures


if __name__ == "__main__":
    main()
