"""Training steps with AdamW's fused kernel (the default since #17) versus torch's per-tensor loop.

Same model, initial weights, batches and dropout masks on both sides; each step is forward +
backward + the NaN guard's check + clip + AdamW, the work of a real training step. The model has
a 20 Newsgroups-sized vocabulary (30,000 words, the shipped ``max_vocab_size``) and each encoder's
shipped embedding width, because the embedding table is where the optimizer's time goes.
Batches of 32 texts of 150 tokens (the median 20 Newsgroups post is 113). The two sides alternate
for ``--rounds`` rounds and the best round of each counts; the table gives their ratio.

    OMP_NUM_THREADS=1 python benchmarks/optimizer_kernel.py            # ~4 min
    python benchmarks/optimizer_kernel.py --encoders swem cnn --steps 40
"""

from __future__ import annotations

import functools
import time

import torch

from lit_seqcls import SequenceClassifier
from lit_seqcls.runtime.guards import all_finite

try:
    from benchmarks.common import machine, step_timing_parser
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import machine, step_timing_parser

ENCODERS = ("rnn", "gru", "lstm", "bilstm", "attention", "cnn", "swem")
EMBEDDING = {"swem": 300}  # configs/model/*.yaml; the others keep the model's default, 128
VOCAB, BATCH, LENGTH = 30_000, 32, 150


def tokens_per_second(encoder: str, fused: bool | None, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = SequenceClassifier(
        VOCAB,
        20,
        encoder=encoder,
        embedding_dim=EMBEDDING.get(encoder, 128),
        optimizer=functools.partial(torch.optim.AdamW, fused=fused),
    )
    optimizer = model.configure_optimizers()
    assert optimizer.defaults["fused"] == (fused is None), optimizer.defaults
    inputs = torch.randint(1, VOCAB, (BATCH, LENGTH))
    lengths = torch.full((BATCH,), LENGTH)
    labels = torch.randint(0, 20, (BATCH,))
    model.train()
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inputs, lengths).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        all_finite([p.grad for p in model.parameters() if p.grad is not None])
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return steps * BATCH * LENGTH / (time.perf_counter() - start)


def main() -> None:
    parser = step_timing_parser(__doc__, ENCODERS)
    args = parser.parse_args()
    shape = f"vocabulary {VOCAB:,}, batch {BATCH} × {LENGTH} tokens"
    print(f"{machine()}; {shape}, best of {args.rounds}")
    print("| encoder | embedding | per-tensor tokens/s | fused tokens/s | fused ÷ per-tensor |")
    print("|---|---:|---:|---:|---:|")
    for encoder in args.encoders:
        loop = fused = 0.0
        for _ in range(args.rounds):
            loop = max(loop, tokens_per_second(encoder, False, args.steps, args.warmup))
            fused = max(fused, tokens_per_second(encoder, None, args.steps, args.warmup))
        print(
            f"| {encoder} | {VOCAB:,} × {EMBEDDING.get(encoder, 128)} | {loop:,.0f} | {fused:,.0f} "
            f"| **{fused / loop:.2f}×** |",
            flush=True,
        )


if __name__ == "__main__":
    main()
