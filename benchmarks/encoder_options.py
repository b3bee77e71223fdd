"""Cheap checks that the #17 options do what they are for, on synthetic data (seconds, 1 thread).

1. ``swem`` with hashed bigrams (``ngram_buckets``) on a negation task a bag of words cannot
   solve: a text of filler words holds one sentiment word, preceded by "not" in half the texts,
   and a decoy "not" elsewhere in half the texts; the label is the sentiment, flipped when negated.
   Only the pair ("not", word) tells the classes apart.
2. The cost of word dropout per training step (swem, vocabulary 30,000, batch 64 × 256 tokens).

    python benchmarks/encoder_options.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lit_seqcls import TextClassifierNetwork
from lit_seqcls.encoders import SWEMEncoder

NOT, POSITIVE, NEGATIVE, FILLERS = 2, range(3, 7), range(7, 11), range(11, 511)


def negation_texts(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids (n, T), lengths (n,), labels (n,))`` of the negation task."""
    lengths = torch.randint(10, 31, (n,), generator=g)
    width = int(lengths.max())
    ids = torch.randint(FILLERS.start, FILLERS.stop, (n, width), generator=g)
    labels = torch.empty(n, dtype=torch.long)
    for i in range(n):
        n_i = int(lengths[i])
        positive = bool(torch.rand(1, generator=g) < 0.5)
        negated = bool(torch.rand(1, generator=g) < 0.5)
        words = POSITIVE if positive else NEGATIVE
        at = int(torch.randint(1, n_i, (1,), generator=g))
        ids[i, at] = words[int(torch.randint(0, len(words), (1,), generator=g))]
        if negated:
            ids[i, at - 1] = NOT
        elif torch.rand(1, generator=g) < 0.5 and n_i > 3:  # a decoy "not", not before the word
            decoy = int(torch.randint(0, n_i, (1,), generator=g))
            if decoy not in (at - 1, at):
                ids[i, decoy] = NOT
        labels[i] = int(positive != negated)
        ids[i, n_i:] = 0
    return ids, lengths, labels


def accuracy_on_negation(buckets: int, epochs: int, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    train, test = negation_texts(4000, g), negation_texts(1000, g)
    torch.manual_seed(seed)
    encoder = SWEMEncoder(32, ngram_buckets=buckets)
    network = TextClassifierNetwork(FILLERS.stop, 2, encoder, embedding_dim=32, dropout=0.1)
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3)
    ids, lengths, labels = train
    for _ in range(epochs):
        network.train()
        for batch in torch.randperm(len(ids), generator=g).split(64):
            loss = F.cross_entropy(network(ids[batch], lengths[batch]).logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    network.eval()
    with torch.no_grad():
        preds = network(test[0], test[1]).logits.argmax(-1)
    return float((preds == test[2]).float().mean())


def word_dropout_step_ms(p: float, steps: int = 30) -> float:
    torch.manual_seed(0)
    network = TextClassifierNetwork(30_000, 2, SWEMEncoder(128), 128, word_dropout=p).train()
    optimizer = torch.optim.AdamW(network.parameters())
    ids = torch.randint(2, 30_000, (64, 256))
    lengths, labels = torch.full((64,), 256), torch.randint(0, 2, (64,))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = F.cross_entropy(network(ids, lengths).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]  # median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for buckets in (0, 10_007):
        scores = [accuracy_on_negation(buckets, args.epochs, s) for s in args.seeds]
        print(f"negation task, swem ngram_buckets={buckets}: test acc "
              + ", ".join(f"{s:.3f}" for s in scores))  # fmt: skip
    for p in (0.0, 0.25):
        print(f"swem training step, word_dropout={p}: {word_dropout_step_ms(p):.1f} ms (median)")


if __name__ == "__main__":
    main()
