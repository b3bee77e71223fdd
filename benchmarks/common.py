"""What the benchmarks share: the machine line every table starts with, and in-process CLI runs."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """Cores, CPU model, thread count and library versions: the context of every figure."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, lightning {L.__version__}"
    )


def callback_class(module: str, name: str) -> type:
    """The class the CLI instantiates from ``benchmarks.<module>.<name>``.

    A benchmark run as a script is ``__main__``; the CLI imports it again by its class path, so
    results must be read from that copy, not from the script's own globals.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return getattr(importlib.import_module(f"benchmarks.{module}"), name)


def step_timing_parser(doc: str, encoders: tuple[str, ...]) -> argparse.ArgumentParser:
    """The arguments of a benchmark that times training steps per encoder, best of some rounds."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=list(encoders), choices=encoders)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    return parser
