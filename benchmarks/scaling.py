"""Scaling with data: time and memory at 10k, 50k and 200k synthetic documents (#8.6).

Each size runs in a fresh process with an empty cache: ``SyntheticDataModule`` (``keyword``
task, median 30 words, batch 64) generates and checks its splits, trains the tokenizer,
tokenizes into the Arrow cache, then one epoch of the training loader alone (the data path) and
one training epoch of a small CNN (embedding 32, 32 filters of width 3, one torch thread: the
fit itself, kept cheap so that 200k documents fit the time budget). The cost must grow linearly
in tokens: the table gives seconds per million tokens and its ratio to the smallest size.

Memory: peak RSS of the process while preparing, and PSS/USS of the process (and loader
workers) during the data epoch, from /proc/<pid>/smaps_rollup.

    python benchmarks/scaling.py                     # ~5 min on 2 cores
    python benchmarks/scaling.py --sizes 10000 50000
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

import datasets
import lightning as L
import numpy as np
import torch

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.encoders import CNNEncoder

try:
    from benchmarks.common import ROOT, machine
    from benchmarks.data_pipeline import PeakMemory, children, memory, peak_rss
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT, machine
    from data_pipeline import PeakMemory, children, memory, peak_rss


def one_size(size: int, cache: str) -> dict[str, float]:
    """Every phase for ``size`` documents (run in a fresh process)."""
    torch.set_num_threads(1)
    sampler = PeakMemory()
    sampler.start()
    dm = SyntheticDataModule(train_size=size, test_size=size // 10, batch_size=64, cache_dir=cache)
    t = {"start": time.perf_counter()}
    _ = dm.splits
    t["splits"] = time.perf_counter()
    _ = dm.vocab_size
    t["tokenizer"] = time.perf_counter()
    dm.prepare_data()
    dm.setup("fit")
    t["encode"] = time.perf_counter()
    prepare_peak = {**sampler.stop(), **peak_rss()}
    lengths = np.asarray(dm._encoded["train"]["length"][:])
    loader, samples = dm.train_dataloader(), []
    for step, _ in enumerate(loader):
        if step % 200 == 50:
            samples.append([memory("self"), *(memory(p) for p in children())])
    t["data_epoch"] = time.perf_counter()
    L.seed_everything(0, verbose=False)
    cnn = functools.partial(CNNEncoder, num_filters=32, kernel_sizes=(3,))
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder=cnn, embedding_dim=32)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    before_fit = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    t["train_epoch"] = time.perf_counter()
    marks = list(t.values())
    phases = {k: b - a for k, a, b in zip(list(t)[1:], marks, marks[1:], strict=False)}
    phases["train_epoch"] = t["train_epoch"] - before_fit
    return {
        **phases,
        "docs": size + size // 10,
        "train_docs": len(lengths),
        "train_tokens": int(lengths.sum()),
        "all_tokens": int(sum(sum(s["length"][:]) for s in dm._encoded.values())),
        "prepare_peak_rss": prepare_peak["main_peak_rss"],
        "iterate_pss": max(sum(p["pss"] for p in s) for s in samples),
        "iterate_uss": max(sum(p["uss"] for p in s) for s in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    if args.one:
        print(json.dumps(one_size(args.one, args.cache)))
        return
    load, results = os.getloadavg()[0], {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "HF_HOME": f"{tmp}/hf_home", "OMP_NUM_THREADS": "1"}
            run = subprocess.run(
                [sys.executable, __file__, "--one", str(size), "--cache", f"{tmp}/cache"],
                env=env, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            if run.returncode != 0:
                raise RuntimeError(run.stderr[-3000:])
            results[size] = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"## Scaling with synthetic data\n\n{machine()} (1 used by the fit); load average "
          f"{load:.1f} → {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| train size | docs (all splits) | tokens (all) | train tokens | generate + check s "
          "| tokenizer s | tokenize + cache s | data epoch s | train epoch s "
          "| peak RSS preparing MiB | Σ PSS iterating MiB | Σ USS iterating MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in results.items():
        print(f"| {size:,} | {r['docs']:,} | {r['all_tokens']:,} | {r['train_tokens']:,} "
              f"| {r['splits']:.1f} | {r['tokenizer']:.1f} | {r['encode']:.1f} "
              f"| {r['data_epoch']:.1f} | {r['train_epoch']:.1f} | {r['prepare_peak_rss']:.0f} "
              f"| {r['iterate_pss']:.0f} | {r['iterate_uss']:.0f} |")  # fmt: skip
    first = results[args.sizes[0]]
    print("\nSeconds per million tokens (× the smallest size; 1.0 = linear in tokens):\n")
    print("| train size | generate + check | tokenizer | tokenize + cache | data epoch "
          "| train epoch |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for size, r in results.items():
        cells = []
        for phase, tokens in (("splits", "all_tokens"), ("tokenizer", "train_tokens"),
                              ("encode", "all_tokens"), ("data_epoch", "train_tokens"),
                              ("train_epoch", "train_tokens")):  # fmt: skip
            per = r[phase] / r[tokens] * 1e6
            cells.append(f"{per:.2f} (×{per / (first[phase] / first[tokens] * 1e6):.2f})")
        print(f"| {size:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
