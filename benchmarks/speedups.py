"""Optional speed-ups, each against the default in one run: kept only if faster with equal results.

Variants, per encoder, on bucketed batches of IMDB-like lengths (widths 150-400, batch 64,
embedding 128, hidden 256), training steps (forward + backward + AdamW):

  default            what ``lit-seqcls`` does today
  pad-multiple-8     each batch padded to a multiple of 8 tokens (``--data.pad_to_multiple_of 8``)
  torch.compile      ``torch.compile(model, dynamic=True)`` (compile time reported apart)
  1 thread           ``torch.set_num_threads(1)`` instead of one thread per core

Equal results: the logits of the first batch (before any update) are compared with the default's.
The variants take turns batch by batch, so load on a shared machine hits them alike.

    python benchmarks/speedups.py                      # cnn and attention; ~6 min on 2 cores
    python benchmarks/speedups.py --encoders cnn --steps 10
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from lit_seqcls import SequenceClassifier

try:
    from benchmarks.common import machine
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import machine

VOCAB, BATCH = 30_000, 64


def batches(steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Bucketed batches: widths drawn from IMDB's typical range, lengths within 10% of the width."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        width = int(torch.randint(150, 401, (1,), generator=generator))
        lengths = torch.randint(int(0.9 * width), width + 1, (BATCH,), generator=generator)
        lengths[0] = width
        ids = torch.randint(2, VOCAB, (BATCH, width), generator=generator)
        ids[torch.arange(width) >= lengths[:, None]] = 0
        out.append((ids, lengths, torch.randint(0, 2, (BATCH,), generator=generator)))
    return out


def pad_to_multiple(ids: torch.Tensor, multiple: int) -> torch.Tensor:
    width = -(-ids.size(1) // multiple) * multiple
    return torch.nn.functional.pad(ids, (0, width - ids.size(1)))


def compare(encoder: str, steps: int, threads: int) -> dict[str, tuple[float, float, float]]:
    """Per variant: seconds per step, largest logit gap to the default, set-up seconds."""
    torch.manual_seed(0)
    # No dropout, so every variant's first logits can be compared with the default's.
    base = SequenceClassifier(VOCAB, 2, encoder=encoder, dropout=0.0)
    models = {name: copy.deepcopy(base) for name in ("default", "pad-multiple-8", "1 thread")}
    models["torch.compile"] = torch.compile(copy.deepcopy(base), dynamic=True)
    optimizers = {name: torch.optim.AdamW(m.parameters()) for name, m in models.items()}
    seconds = dict.fromkeys(models, 0.0)
    gaps = dict.fromkeys(models, 0.0)
    setup = dict.fromkeys(models, 0.0)
    data = batches(steps + 2)
    for step, (ids, lengths, labels) in enumerate(data):
        reference = None
        for name, model in models.items():
            torch.set_num_threads(1 if name == "1 thread" else threads)
            inputs = pad_to_multiple(ids, 8) if name == "pad-multiple-8" else ids
            begin = time.perf_counter()
            logits = model(inputs, lengths).logits
            loss = torch.nn.functional.cross_entropy(logits, labels)
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
            elapsed = time.perf_counter() - begin
            if step >= 2:  # two warm-up steps; compilation happens in them
                seconds[name] += elapsed
            elif name == "torch.compile":
                setup[name] += elapsed
            if step == 0:
                reference = logits.detach() if reference is None else reference
                gaps[name] = float((logits.detach() - reference).abs().max())
    torch.set_num_threads(threads)
    return {name: (seconds[name] / steps, gaps[name], setup[name]) for name in models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["cnn", "attention"])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"{machine()}; batch {BATCH}, widths 150-400, {args.steps} timed steps")
    print("| encoder | variant | s/step | × default speed | max logit gap | warm-up s |")
    print("|---|---|---:|---:|---:|---:|")
    for encoder in args.encoders:
        results = compare(encoder, args.steps, threads)
        default = results["default"][0]
        for name, (seconds, gap, setup) in results.items():
            print(
                f"| {encoder} | {name} | {seconds:.3f} | {default / seconds:.2f} | {gap:.1e} "
                f"| {setup:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
