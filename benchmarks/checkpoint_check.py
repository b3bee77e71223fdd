"""What reading back each checkpoint costs, and which cheaper check still catches damage (#15).

``AtomicCheckpointIO.save_checkpoint`` writes a temporary file, then reads all of it back before
the rename: the CRC-32 of every zip entry (``zipfile.testzip``) and
``torch.load(weights_only=True, mmap=True)``. On a ~100 MB checkpoint (a ``SequenceClassifier``
with a 65,536 × 128 embedding, plus its AdamW state, as a Lightning checkpoint holds it):

1. Time: Lightning's ``TorchCheckpointIO``, the shipped ``AtomicCheckpointIO``, and its parts:
   the in-memory refusals (NaN/inf, secrets), the atomic write alone (``torch.save`` + fsync +
   rename) and each check on the just-written file. ``--rounds`` rounds, the order rotated each
   round; median and best per step.
2. Damage: truncations at random offsets, 4 KiB pages of zeros (what a power cut can leave of
   an un-fsynced file) and single-byte flips at random offsets (uniform over the file, and
   uniform within each zip region: the pickle, the tensor records, the central directory), and
   which check notices each.

    python benchmarks/checkpoint_check.py            # ~6 min on 2 busy cores
    python benchmarks/checkpoint_check.py --vocab 8192 --damage 50 --rounds 3   # quick
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(ROOT))

from lightning.pytorch.plugins.io import TorchCheckpointIO  # noqa: E402

from lit_seqcls.model import SequenceClassifier  # noqa: E402


def _module(*names: str):
    """The first of ``names`` that imports: lit_seqcls modules are moving into subpackages."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError(" / ".join(names))


checkpoint_io = _module("lit_seqcls.runtime.checkpoint_io", "lit_seqcls.checkpoint_io")
checkpoint_problem = _module(
    "lit_seqcls.checkpoints", "lit_seqcls.runtime.checkpoint_io", "lit_seqcls.checkpoint_io"
).checkpoint_problem
atomic = _module("lit_seqcls.runtime.atomic", "lit_seqcls.atomic")
AtomicCheckpointIO = checkpoint_io.AtomicCheckpointIO
MB = 1 << 20


def make_checkpoint(vocab: int) -> dict:
    """A Lightning-shaped checkpoint: weights, AdamW state after one step, hyper-parameters."""
    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=vocab, num_classes=2, encoder="cnn")
    optimizer = torch.optim.AdamW(model.parameters())
    # Every embedding row in the batch, so the AdamW state is not mostly zeros (as after an epoch).
    ids = torch.randperm(vocab).view(-1, 16)  # (vocab / 16, 16)
    model(ids, torch.full((ids.size(0),), 16)).logits.sum().backward()
    optimizer.step()
    return {
        "epoch": 0,
        "global_step": 1,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": model.state_dict(),
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 0}}}},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hyper_parameters": dict(model.hparams),
    }


# ---- the checks, each on a written file ---------------------------------------------------------
def size_check(path: Path, expected: int) -> bool:
    """The file holds as many bytes as were written (``f.tell()`` after ``torch.save``)."""
    return os.path.getsize(path) == expected


def directory_check(path: Path, expected: int | None = None) -> bool:
    """The zip's central directory parses and every entry lies inside the file."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except Exception:  # BadZipFile, struct errors, NotImplementedError for a damaged version
        return False
    size = os.path.getsize(path)
    # 30 bytes of local header + name (+ extra, which torch pads to 64-byte alignment: bounded)
    return bool(infos) and all(
        i.header_offset + 30 + len(i.filename) + i.compress_size <= size for i in infos
    )


def pickle_crc_check(path: Path, expected: int | None = None) -> bool:
    """The central directory, and the CRC-32 of the small ``data.pkl`` entry only."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            archive.read(name)  # ZipExtFile compares the CRC at the end of the entry
    except Exception:
        return False
    return directory_check(path)


def unsafe_globals_check(path: Path, expected: int | None = None) -> bool:
    """torch's public scanner of the pickle (what a weights_only load would refuse)."""
    try:
        return not torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        return False


def load_mmap_check(path: Path, expected: int | None = None) -> bool:
    try:
        torch.load(path, weights_only=True, mmap=True, map_location="cpu")
    except Exception:
        return False
    return True


def load_full_check(path: Path, expected: int | None = None) -> bool:
    """What Lightning's own load does: read every tensor (no mmap)."""
    try:
        torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True


def testzip_check(path: Path, expected: int | None = None) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except Exception:
        return False


def shipped_check(path: Path, expected: int | None = None) -> bool:
    """``checkpoint_problem``: testzip + torch.load(weights_only, mmap), as the save runs it."""
    return checkpoint_problem(path) is None


CHECKS: dict[str, Callable[[Path, int], bool]] = {
    "size == bytes written": size_check,
    "central directory (infolist + entry bounds)": directory_check,
    "+ CRC of data.pkl": pickle_crc_check,
    "torch unsafe-globals scan (pickle only)": unsafe_globals_check,
    "torch.load weights_only, mmap": load_mmap_check,
    "torch.load weights_only, full read": load_full_check,
    "testzip (CRC of every entry)": testzip_check,
    "shipped: testzip + torch.load mmap": shipped_check,
}


# ---- 1. time ------------------------------------------------------------------------------------
def write_only(checkpoint: dict, path: Path) -> int:
    """``AtomicCheckpointIO``'s write without its read-back: bytes written."""
    with atomic.atomic_write(path) as f:
        torch.save(checkpoint, f)
        f.flush()
        return f.tell()


def timing(checkpoint: dict, folder: Path, rounds: int) -> tuple[str, int]:
    path = folder / "a.ckpt"
    size = write_only(checkpoint, path)
    shipped, lightning = AtomicCheckpointIO(), TorchCheckpointIO()
    steps: dict[str, Callable[[], object]] = {
        "Lightning `TorchCheckpointIO.save_checkpoint` (no fsync, no check)": lambda: (
            lightning.save_checkpoint(checkpoint, folder / "l.ckpt")
        ),
        "shipped `AtomicCheckpointIO.save_checkpoint`": lambda: shipped.save_checkpoint(
            checkpoint, folder / "s.ckpt"
        ),
        "refusals in memory (NaN/inf, secrets)": lambda: shipped._refuse_unsafe(checkpoint, path),
        "atomic write alone (torch.save + fsync + rename)": lambda: write_only(
            checkpoint, folder / "w.ckpt"
        ),
        **{f"check: {name}": (lambda c=c: c(path, size)) for name, c in CHECKS.items()},
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        names = list(steps)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    save = statistics.median(times["atomic write alone (torch.save + fsync + rename)"])
    lines = [
        f"### Saving a {size / MB:.0f} MiB checkpoint ({rounds} rounds, order rotated)",
        "",
        "| step | median s | best s | × the atomic write |",
        "|---|---|---|---|",
    ]
    for name, ts in times.items():
        med = statistics.median(ts)
        lines.append(f"| {name} | {med:.3f} | {min(ts):.3f} | {med / save:.2f} |")
    return "\n".join(lines), size


# ---- 2. damage ----------------------------------------------------------------------------------
def regions(path: Path) -> dict[str, tuple[int, int]]:
    """Byte ranges of the pickle entry, the tensor entries and the central directory."""
    with zipfile.ZipFile(path) as archive:
        infos = sorted(archive.infolist(), key=lambda i: i.header_offset)
    size = path.stat().st_size
    ends = [i.header_offset for i in infos[1:]] + [_directory_start(path, infos)]
    spans = {i.filename: (i.header_offset, end) for i, end in zip(infos, ends, strict=True)}
    pickle = next(v for k, v in spans.items() if k.endswith("/data.pkl"))
    tensors = [v for k, v in spans.items() if "/data/" in k]
    return {
        "data.pkl entry": pickle,
        "tensor entries": (min(a for a, _ in tensors), max(b for _, b in tensors)),
        "central directory + end": (ends[-1], size),
    }


def _directory_start(path: Path, infos: list[zipfile.ZipInfo]) -> int:
    last = infos[-1]
    data = path.read_bytes()[last.header_offset :]
    name_len, extra_len = (int.from_bytes(data[k : k + 2], "little") for k in (26, 28))
    return last.header_offset + 30 + name_len + extra_len + last.compress_size


def damage(path: Path, size: int, trials: int, seed: int) -> str:
    rng = random.Random(seed)
    spans = regions(path)
    cases: dict[str, list[tuple[str, int]]] = {
        "truncated at a uniform offset": [("cut", rng.randrange(1, size)) for _ in range(trials)],
        # A power cut after an un-fsynced write can leave pages of zeros at the right length.
        "a 4 KiB page zeroed, uniform offset": [
            ("zero", rng.randrange(0, size - 4096, 4096)) for _ in range(trials)
        ],
        "one byte flipped, uniform offset": [("flip", rng.randrange(size)) for _ in range(trials)],
    }
    for name, (a, b) in spans.items():
        cases[f"one byte flipped in the {name}"] = [
            ("flip", rng.randrange(a, b)) for _ in range(max(10, trials // 2))
        ]
    damaged = path.with_name("damaged.ckpt")
    caught: dict[str, dict[str, int]] = {c: dict.fromkeys(CHECKS, 0) for c in cases}
    runs = dict.fromkeys(cases, 0)
    for case, edits in cases.items():
        shutil.copyfile(path, damaged)
        # Cuts from the longest to the shortest on one copy; flips and zeros undone after each.
        for kind, at in sorted(edits, key=lambda e: -e[1]):
            with open(damaged, "r+b") as f:
                if kind == "cut":
                    f.truncate(at)
                    old = new = b""
                else:
                    f.seek(at)
                    old = f.read(4096 if kind == "zero" else 1)
                    new = (
                        bytes(len(old))
                        if kind == "zero"
                        else bytes([old[0] ^ rng.randrange(1, 256)])
                    )
                    f.seek(at)
                    f.write(new)
            if kind != "cut" and old == new:
                continue  # a page that was zeros already: nothing damaged
            runs[case] += 1
            for name, check in CHECKS.items():
                caught[case][name] += not check(damaged, size)
            if old:
                with open(damaged, "r+b") as f:
                    f.seek(at)
                    f.write(old)
    damaged.unlink()
    share = {n: (b - a) / size for n, (a, b) in spans.items()}
    names = list(CHECKS)
    lines = [
        "### Which check notices the damage (caught / trials)",
        "",
        "| damage | trials | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for case in cases:
        counts = " | ".join(f"{caught[case][n]}" for n in names)
        lines.append(f"| {case} | {runs[case]} | {counts} |")
    lines += [
        "",
        "Share of the file: "
        + ", ".join(f"{n} {s:.5%}" for n, s in share.items())
        + f" ({size:,} bytes).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=65_536, help="embedding rows (~0.5 KB each)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--damage", type=int, default=40, help="trials per damage kind")
    parser.add_argument("--dir", help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkpoint = make_checkpoint(args.vocab)
    load = os.getloadavg()[0]
    print(
        f"## Checkpoint read-back (#15)\n\ntorch {torch.__version__}, 1 torch thread, load average "
        f"{load:.1f} at the start, folder {args.dir or tempfile.gettempdir()}\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        table, size = timing(checkpoint, Path(tmp), args.rounds)
        print(table + "\n", flush=True)
        print(damage(Path(tmp) / "a.ckpt", size, args.damage, seed=0))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
