"""Masked versus packed recurrent runs: training-step time per encoder and length profile, on CPU.

Both runs keep padding out of the recurrence and give the same outputs and gradients (checked
here on every measured batch, and by the encoder contract tests); this measures which is faster.

  packed  ``pack_padded_sequence`` + the module, the textbook way (and cuDNN's native path)
  masked  the padded batch through the fused kernel, each text's state read at its last token;
          right to left, each text reversed within its length (``lit_seqcls.encoders.recurrent``)

Profiles are batches the bucketing sampler would build (lengths within ~10% of each other) at
typical widths: ``short`` (the synthetic task, ~60 tokens), ``20ng`` (~150) and ``imdb`` (~250).
Per step: forward + backward + AdamW of embedding (128) → encoder (hidden 256) → linear, batch 64.
The two runs take turns step by step, so load on a shared machine hits both alike.

    python benchmarks/recurrent.py                 # all encoders and profiles, ~5 min on 2 cores
    python benchmarks/recurrent.py --encoders bilstm --profiles imdb
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch

from lit_seqcls import SequenceClassifier
from lit_seqcls.encoders import ENCODERS

PROFILES = {"short": 60, "20ng": 150, "imdb": 250}
RECURRENT = ("rnn", "gru", "lstm", "bilstm", "attention")
BATCH, VOCAB = 64, 30_000


def batch_of_width(width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A bucketed batch: lengths uniform in [0.9 * width, width], the longest exactly ``width``."""
    lengths = torch.randint(int(0.9 * width), width + 1, (BATCH,), generator=generator)
    lengths[0] = width
    ids = torch.randint(2, VOCAB, (BATCH, width), generator=generator)
    ids[torch.arange(width) >= lengths[:, None]] = 0
    return ids, lengths


def compare(encoder: str, width: int, steps: int) -> tuple[float, float, float]:
    """Seconds per training step (masked, packed) and the largest gap between their logits."""
    torch.manual_seed(0)
    masked = SequenceClassifier(  # no dropout: the two runs' first logits must agree
        VOCAB,
        2,
        encoder=lambda e: ENCODERS[encoder](e, hidden_size=256, implementation="masked"),
        dropout=0.0,
    )
    packed = copy.deepcopy(masked)
    packed.network.encoder.implementation = "packed"
    runs = {"masked": masked, "packed": packed}
    optimizers = {k: torch.optim.AdamW(m.parameters()) for k, m in runs.items()}
    generator = torch.Generator().manual_seed(width)
    seconds = dict.fromkeys(runs, 0.0)
    gap = 0.0
    for step in range(steps + 1):  # step 0 warms up, untimed
        ids, lengths = batch_of_width(width, generator)
        labels = torch.randint(0, 2, (BATCH,), generator=generator)
        logits = {}
        for name, model in runs.items():
            start = time.perf_counter()
            output = model(ids, lengths).logits
            logits[name] = output.detach()
            loss = torch.nn.functional.cross_entropy(output, labels)
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
            if step:
                seconds[name] += time.perf_counter() - start
        if step == 0:  # same weights before the first update: the outputs must agree
            gap = float((logits["masked"] - logits["packed"]).abs().max())
    return seconds["masked"] / steps, seconds["packed"] / steps, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=list(RECURRENT), choices=RECURRENT)
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, batch {BATCH}, hidden 256"
    )
    print(
        "| encoder | profile (width) | masked s/step | packed s/step | packed / masked "
        "| max logit gap |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for encoder in args.encoders:
        for profile in args.profiles:
            width = PROFILES[profile]
            masked, packed, gap = compare(encoder, width, args.steps)
            print(
                f"| {encoder} | {profile} ({width}) | {masked:.3f} | {packed:.3f} "
                f"| **{packed / masked:.1f}** | {gap:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
