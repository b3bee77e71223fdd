"""Texts/s of an exported bundle's graph (onnxruntime) against PyTorch eager, on CPU (issue #19).

For each encoder at its shipped size (``configs/model/*.yaml``: embedding 128, hidden 256, CNN
100 × (3, 4, 5); SWEM embedding 300), vocabulary 30,000, two classes: synthetic texts with
IMDB-like lengths (log-normal, median 200 tokens, cut at 400), bucketed into batches of 64 as
``Bundle`` does, and the same padded batches run by PyTorch (``inference_mode``, eval) and by
onnxruntime (the exported ``model.onnx``, the CPU provider), with 1 thread and with 2 threads.
The two engines take turns batch by batch, so load on the shared machine hits both alike;
the figure is texts / (sum of that engine's batch times) over all rounds. Tokenisation is not
timed (the same for both).

    OMP_NUM_THREADS=1 python benchmarks/export_throughput.py --texts 256 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.export.graph import LogitsModule, export_model
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.serving.bundle import _buckets, _pad

VOCAB, CLASSES, BATCH = 30_000, 2, 64


def lengths(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(200), 0.6, n).astype(int), 1, 400).tolist()


def batches(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed + 1)
    ids = [rng.integers(2, VOCAB, size=k).tolist() for k in lengths(n, seed)]
    return [_pad([ids[i] for i in index]) for index in _buckets(ids, BATCH)]


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, folder: Path, data: list, rounds: int) -> dict[int, tuple[float, float]]:
    torch.manual_seed(0)
    embedding = 300 if name == "swem" else 128
    model = SequenceClassifier(VOCAB, CLASSES, encoder=name, embedding_dim=embedding).eval()
    path = folder / f"{name}.onnx"
    export_model(model.network, path, "onnx")
    module = LogitsModule(model.network).eval()
    texts = sum(len(ids) for ids, _ in data) * rounds
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        sess = session(path, threads)
        spent = {"torch": 0.0, "onnxruntime": 0.0}
        for ids, lens in data[:1]:  # warm-up of both
            sess.run(["logits"], {"input_ids": ids, "lengths": lens})
            with torch.inference_mode():
                module(torch.from_numpy(ids), torch.from_numpy(lens))
        for _ in range(rounds):
            for ids, lens in data:
                start = time.perf_counter()
                with torch.inference_mode():
                    module(torch.from_numpy(ids), torch.from_numpy(lens))
                spent["torch"] += time.perf_counter() - start
                start = time.perf_counter()
                sess.run(["logits"], {"input_ids": ids, "lengths": lens})
                spent["onnxruntime"] += time.perf_counter() - start
        out[threads] = (texts / spent["torch"], texts / spent["onnxruntime"])
        line = f"  {name} {threads} thread(s): torch {out[threads][0]:,.0f} texts/s, "
        print(line + f"onnxruntime {out[threads][1]:,.0f} texts/s", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256, help="texts per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS))
    args = parser.parse_args()
    data = batches(args.texts, seed=0)
    print(f"Machine: {machine()}, onnxruntime {ort.__version__}, load {os.getloadavg()[0]:.1f}")
    print(f"{args.texts} texts × {args.rounds} rounds, batches of {BATCH}, "
          f"median length {int(np.median(lengths(args.texts, 0)))} tokens\n")  # fmt: skip
    print("| encoder | torch 1 thread | ORT 1 thread | ORT / torch | torch 2 threads "
          "| ORT 2 threads | ORT / torch |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.encoders:
            r = measure(name, Path(tmp), data, args.rounds)
            cells = [f"{r[t][0]:,.0f} | {r[t][1]:,.0f} | {r[t][1] / r[t][0]:.2f}" for t in (1, 2)]
            print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
