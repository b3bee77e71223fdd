"""Padding and training throughput of batching strategies on real IMDB / 20 Newsgroups lengths.

Compares, in one run on the same machine (so only the ratios matter):
  random        shuffled fixed-size batches (a plain DataLoader with shuffle=True)
  hf-megabatch  HF ``LengthGroupedSampler`` style: megabatches of 50 × batch size, each sorted
                longest-first, batches in megabatch order (the reference a user would reach for)
  bucket        our BucketBatchSampler, fixed batch size
  bucket-tokens our BucketBatchSampler with a token budget of batch size × median length

Padding ratio = pad tokens / all tokens in the batch tensors, over a whole epoch. Throughput =
real (non-pad) tokens per second of BiLSTM training steps (embedding 128, hidden 256), forward +
backward + AdamW, on evenly spaced batches holding ``--steps_samples`` texts of each plan, the
strategies taking turns (``--rounds``) so that load on a shared machine hits them alike.

    python benchmarks/bucketing.py --data ../shared/data              # both datasets
    python benchmarks/bucketing.py --data ../shared/data --datasets imdb --steps_samples 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import datasets
import numpy as np
import torch

from lit_seqcls import SequenceClassifier
from lit_seqcls.batch import padding_ratio
from lit_seqcls.encoders import BiLSTMEncoder
from lit_seqcls.text import BucketBatchSampler, encode, train_word_tokenizer

BATCH = 64


def real_lengths(data_root: Path, name: str, max_length: int) -> np.ndarray:
    """Token counts of the training texts through the package's own tokenizer."""
    if name == "imdb":
        ds = datasets.load_dataset(str(data_root / "imdb"), "plain_text", split="train")
        texts = [t.replace("<br />", " ") for t in ds["text"]]
    else:
        ds = datasets.load_dataset(str(data_root / "20_newsgroups"), split="train")
        texts = list(ds["text"])
    tokenizer = train_word_tokenizer(texts, vocab_size=30_000)
    return np.array([len(ids) for ids in encode(tokenizer, texts, max_length)])


def plans(lengths: np.ndarray, seed: int = 0) -> dict[str, list[list[int]]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    random = [order[i : i + BATCH].tolist() for i in range(0, len(order), BATCH)]
    mega = 50 * BATCH  # transformers' LengthGroupedSampler default mega_batch_mult=50
    hf = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        hf += [chunk[i : i + BATCH].tolist() for i in range(0, len(chunk), BATCH)]
    budget = BATCH * int(np.median(lengths))
    return {
        "random": random,
        "hf-megabatch": hf,
        "bucket": list(BucketBatchSampler(lengths, batch_size=BATCH, seed=seed)),
        "bucket-tokens": list(
            BucketBatchSampler(lengths, batch_size=4 * BATCH, max_tokens=budget, seed=seed)
        ),
    }


def sample_batches(batches: list[list[int]], samples: int) -> list[list[int]]:
    """Evenly spaced batches of the plan holding about ``samples`` texts in all.

    Every part of the epoch is represented (the plan's first batch is its longest on purpose), so
    the throughput of the sample estimates the throughput of the whole epoch.
    """
    per_batch = sum(map(len, batches)) / len(batches)
    count = min(len(batches), max(1, round(samples / per_batch)))
    return [batches[i] for i in np.linspace(0, len(batches) - 1, count).round().astype(int)]


def throughput(
    lengths: np.ndarray, chosen: dict[str, list[list[int]]], rounds: int
) -> dict[str, float]:
    """Real tokens per second of BiLSTM training steps on each plan's chosen batches.

    The strategies take turns, a slice of batches each per round, so a load change on a shared
    machine hits all of them alike; each model does 2 untimed warm-up steps first.
    """
    torch.manual_seed(0)
    steps = {}
    for label in chosen:
        model = SequenceClassifier(30_000, 2, encoder=lambda e: BiLSTMEncoder(e, hidden_size=256))
        steps[label] = (model, torch.optim.AdamW(model.parameters()))

    def step(label: str, batch: list[int]) -> int:
        model, optimizer = steps[label]
        lens = torch.as_tensor(lengths[batch])
        ids = torch.randint(2, 30_000, (len(batch), int(lens.max())))
        ids[torch.arange(ids.size(1)) >= lens[:, None]] = 0
        loss = torch.nn.functional.cross_entropy(
            model(ids, lens).logits, torch.zeros(len(batch), dtype=torch.long)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return int(lens.sum())

    real = dict.fromkeys(chosen, 0)
    seconds = dict.fromkeys(chosen, 0.0)
    for label, batches in chosen.items():
        for batch in batches[:2]:
            step(label, batch)
    for r in range(rounds):
        for label, batches in chosen.items():
            start = time.perf_counter()
            for batch in batches[r::rounds]:
                real[label] += step(label, batch)
            seconds[label] += time.perf_counter() - start
    return {label: real[label] / seconds[label] for label in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["imdb", "20ng"])
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--steps_samples", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    for name in args.datasets:
        lengths = real_lengths(args.data, name, args.max_length)
        print(
            f"\n## {name}: {len(lengths):,} texts, tokens mean {lengths.mean():.0f}, "
            f"median {np.median(lengths):.0f}, max {lengths.max()} (max_length {args.max_length})"
        )
        plan = plans(lengths)
        speed = dict.fromkeys(plan, 0.0)
        if args.steps_samples:  # --steps_samples 0: padding only (seconds instead of minutes)
            chosen = {k: sample_batches(v, args.steps_samples) for k, v in plan.items()}
            speed = throughput(lengths, chosen, args.rounds)
        print("| batching | padding ratio | BiLSTM real tokens/s | × random | × hf-megabatch |")
        print("|---|---:|---:|---:|---:|")
        for label, batches in plan.items():
            padding = padding_ratio(lengths[b] for b in batches)
            print(
                f"| {label} | {padding:.3f} | {speed[label]:,.0f} "
                f"| {speed[label] / (speed['random'] or 1):.2f} "
                f"| {speed[label] / (speed['hf-megabatch'] or 1):.2f} |"
            )


if __name__ == "__main__":
    main()
