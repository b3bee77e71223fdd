"""Padding and training throughput of batching strategies on real IMDB / 20 Newsgroups lengths.

Compares, in one run on the same machine (so only the ratios matter):
  random        shuffled fixed-size batches (a plain DataLoader with shuffle=True)
  hf-megabatch  HF ``LengthGroupedSampler`` style: megabatches of 50 × batch size, each sorted
                longest-first, batches in megabatch order (the reference a user would reach for)
  bucket        our BucketBatchSampler, fixed batch size
  bucket-tokens our BucketBatchSampler with a token budget of batch size × median length

Padding ratio = pad tokens / all tokens in the batch tensors, over a whole epoch. Throughput =
real (non-pad) tokens per second of BiLSTM training steps (embedding 128, hidden 256), forward +
backward + AdamW, on the first ``--steps_samples`` texts of each plan.

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
from lit_seqcls.bucketing import BucketBatchSampler, padding_ratio
from lit_seqcls.encoders import BiLSTMEncoder
from lit_seqcls.tokenization import encode, train_word_tokenizer

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


def throughput(lengths: np.ndarray, batches: list[list[int]], samples: int) -> float:
    """Real tokens per second of BiLSTM training on the first ``samples`` texts of the plan."""
    torch.manual_seed(0)
    model = SequenceClassifier(30_000, 2, encoder=lambda e: BiLSTMEncoder(e, hidden_size=256))
    optimizer = torch.optim.AdamW(model.parameters())
    chosen, seen = [], 0
    for batch in batches:
        chosen.append(batch)
        seen += len(batch)
        if seen >= samples:
            break
    real, start = 0, time.perf_counter()
    for step, batch in enumerate(chosen[:2] + chosen):  # 2 untimed warm-up steps
        if step == 2:
            real, start = 0, time.perf_counter()
        lens = torch.as_tensor(lengths[batch])
        ids = torch.randint(2, 30_000, (len(batch), int(lens.max())))
        ids[torch.arange(ids.size(1)) >= lens[:, None]] = 0
        loss = torch.nn.functional.cross_entropy(
            model(ids, lens).logits, torch.zeros(len(batch), dtype=torch.long)
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        real += int(lens.sum())
    return real / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["imdb", "20ng"])
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--steps_samples", type=int, default=1500)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    for name in args.datasets:
        lengths = real_lengths(args.data, name, args.max_length)
        print(
            f"\n## {name}: {len(lengths):,} texts, tokens mean {lengths.mean():.0f}, "
            f"median {np.median(lengths):.0f}, max {lengths.max()} (max_length {args.max_length})"
        )
        print("| batching | padding ratio | BiLSTM real tokens/s | × random |")
        print("|---|---:|---:|---:|")
        base = None
        for label, batches in plans(lengths).items():
            # --steps_samples 0: padding only (seconds instead of minutes)
            speed = throughput(lengths, batches, args.steps_samples) if args.steps_samples else 0.0
            base = base or speed or 1.0
            print(
                f"| {label} | {padding_ratio(lengths, batches):.3f} | {speed:,.0f} "
                f"| {speed / base:.2f} |"
            )


if __name__ == "__main__":
    main()
