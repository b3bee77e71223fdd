"""The tokenization cache survives kills and concurrent jobs (``datamodules.caching``).

A writer killed at any moment leaves either no cache entry or a complete one, never a half-
written one that a later run reads; the next run cleans up and builds it. Two jobs preparing
the same cache at once build it once and read the same ids. Writers are forked children of
the test process (Linux), killed with SIGKILL at chosen points and at random moments; each
first drops the locks it shares with the test process, as a separate job would have none.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import datasets
import pytest
import tqdm

import datamodules.base as base
from datamodules import TextDataModule
from lit_seqcls.text.tokenization import load_tokenizer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forks and kills processes")
FORK = multiprocessing.get_context("fork") if sys.platform == "linux" else None


@pytest.fixture
def files(tmp_path):
    labels = ["good", "bad"] * 1000
    rows = [{"text": f"{w} film number {i} was {w}", "label": w} for i, w in enumerate(labels)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows))
    return {"train": str(train)}


def _prepared(files, cache: Path) -> TextDataModule:
    dm = TextDataModule(data_files=files, batch_size=8, cache_dir=str(cache))
    _ = dm.vocab_size
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _digest(dm: TextDataModule) -> str:
    ids = {name: split["input_ids"][:] for name, split in sorted(dm._encoded.items())}
    return hashlib.sha256(repr(ids).encode()).hexdigest()


def _assert_nothing_half_written(cache: Path) -> None:
    """Every entry a later run would trust (a name without a leading dot) is complete."""
    for path in (cache / "tokenizers").glob("[!.]*.json"):
        load_tokenizer(str(path))
    for path in (cache / "encoded").glob("[!.]*"):
        if path.is_dir():
            assert (path / "dataset_dict.json").is_file(), f"{path} is half-written"
            for split in datasets.load_from_disk(str(path)).values():
                assert len(split["input_ids"][:]) == len(split)


def _leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob(".*") if p.parent.name in ("tokenizers", "encoded")]


def _as_a_separate_job() -> None:
    """Give this forked child its own progress-bar lock (call it first in every child).

    A fork shares the parent's multiprocessing locks, and tqdm's write lock, taken by every
    progress bar of ``datasets``, is one: a child killed while holding it left the test process
    blocked for good at its next progress bar (CI hung here). Separate jobs share no lock.
    """
    own, classes = threading.RLock(), [tqdm.std.tqdm]
    while classes:
        cls = classes.pop()
        if cls is tqdm.std.tqdm or "_lock" in vars(cls):
            cls._lock = own
        classes.extend(cls.__subclasses__())


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _killed_at(point: str, files, cache: Path) -> None:
    """In a child: run a prepare that kills itself at ``point``."""
    _as_a_separate_job()
    save_dict, save_split = datasets.DatasetDict.save_to_disk, datasets.Dataset.save_to_disk
    written = []

    def save_one_split(self, *args, **kwargs):
        save_split(self, *args, **kwargs)
        written.append(self)
        if point == "between splits" and len(written) == 1:
            _die()

    def save_all(self, *args, **kwargs):
        save_dict(self, *args, **kwargs)
        if point == "saved, not renamed":
            _die()

    def replace(src, dst):
        os_replace(src, dst)
        if point == f"renamed {Path(dst).parent.name}":
            _die()

    os_replace = os.replace
    datasets.Dataset.save_to_disk = save_one_split
    datasets.DatasetDict.save_to_disk = save_all
    os.replace = replace
    if point == "tokenizing":
        base.encode_split = lambda *a, **k: _die()
    _prepared(files, cache)


POINTS = ["tokenizing", "renamed tokenizers", "between splits", "saved, not renamed"]


@pytest.mark.parametrize("point", [*POINTS, "renamed encoded"])
def test_a_writer_killed_at_any_step_leaves_no_half_written_cache(files, tmp_path, point):
    cache = tmp_path / "cache"
    child = FORK.Process(target=_killed_at, args=(point, files, cache))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    _assert_nothing_half_written(cache)
    again = _prepared(files, cache)  # cleans up, builds what is missing, reads what is there
    assert _digest(again) == _digest(_prepared(files, tmp_path / "clean"))
    assert _leftovers(cache) == []


def _prepare_forever(files, cache: Path) -> None:
    _as_a_separate_job()
    while True:  # a fresh cache each round, so the kill can land in any phase
        _prepared(files, cache)
        for entry in cache.glob("*/*"):
            # Renamed first, as a killed writer's leftover: a kill landing in this cleanup must
            # not leave a half-deleted entry that the code under test never wrote.
            gone = entry.with_name(f".{entry.name}.gone")
            entry.rename(gone)
            shutil.rmtree(gone) if gone.is_dir() else gone.unlink()


def test_kills_at_random_moments_leave_no_half_written_cache(files, tmp_path):
    expected = _digest(_prepared(files, tmp_path / "clean"))
    rng = random.Random(0)
    cache = tmp_path / "cache"
    for _ in range(4):
        child = FORK.Process(target=_prepare_forever, args=(files, cache))
        child.start()
        time.sleep(rng.uniform(0.2, 1.5))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        _assert_nothing_half_written(cache)
    assert _digest(_prepared(files, cache)) == expected
    assert _leftovers(cache) == []


def _prepare_and_report(files, cache: Path, log: Path, barrier) -> None:
    _as_a_separate_job()
    encode, train = base.encode_split, base.TRAINERS["word"]

    def slow_encode(*args, **kwargs):
        with log.open("a") as f:
            f.write(f"encode {os.getpid()}\n")
        time.sleep(0.5)  # the other job arrives while this one holds the lock
        return encode(*args, **kwargs)

    def counted_train(*args, **kwargs):
        with log.open("a") as f:
            f.write(f"train {os.getpid()}\n")
        return train(*args, **kwargs)

    base.encode_split = slow_encode
    base.TRAINERS = {**base.TRAINERS, "word": counted_train}
    barrier.wait()
    digest = _digest(_prepared(files, cache))
    with log.open("a") as f:
        f.write(f"digest {os.getpid()} {digest}\n")


def test_two_jobs_preparing_one_cache_build_it_once_and_agree(files, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "log.txt"
    barrier = FORK.Barrier(2)
    jobs = [
        FORK.Process(target=_prepare_and_report, args=(files, cache, log, barrier))
        for _ in range(2)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
        assert job.exitcode == 0
    lines = [line.split() for line in log.read_text().splitlines()]
    builders = {pid for kind, pid, *_ in lines if kind in ("encode", "train")}
    assert len(builders) == 1  # one job built tokenizer and ids, the other waited and read
    assert sum(kind == "train" for kind, *_ in lines) == 1
    digests = [rest[0] for kind, _, *rest in lines if kind == "digest"]
    assert len(digests) == 2 and len(set(digests)) == 1
    assert digests[0] == _digest(_prepared(files, tmp_path / "clean"))
    assert _leftovers(cache) == []


def test_a_stale_folder_at_the_entry_and_temporary_leftovers_are_replaced(files, tmp_path):
    cache = tmp_path / "cache"
    expected = _digest(_prepared(files, cache))
    entry = next(p for p in (cache / "encoded").iterdir() if p.is_dir())
    shutil.rmtree(entry)
    # What an in-place writer killed long ago, and a killed temporary writer, left behind.
    for path in (entry, entry.with_name(f".{entry.name}.dead-writer")):
        path.mkdir()
        (path / "half.arrow").write_bytes(b"\0" * 10)
    assert _digest(_prepared(files, cache)) == expected
    assert not (entry / "half.arrow").exists() and _leftovers(cache) == []
