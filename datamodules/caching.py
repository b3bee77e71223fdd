"""Cache keys and crash-safe cache files shared by every rank and every job.

Every rank computes the same key from the same inputs (source fingerprint, tokenizer, settings),
so all of them find the same files. Writers hold an exclusive file lock and write through
``lit_seqcls.runtime.atomic`` (a temporary name, flushed to disk, then renamed into place): a
reader sees either nothing or a complete file, never half of one, whether a writer is killed or
two jobs prepare at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets

from lit_seqcls.runtime.atomic import atomic_directory, atomic_write


def cache_root(cache_dir: str | None = None) -> Path:
    """``cache_dir``, else ``$LIT_SEQCLS_CACHE``, else ``$HF_HOME/lit_seqcls`` (read per call)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("LIT_SEQCLS_CACHE"):
        return Path(os.environ["LIT_SEQCLS_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return Path(hf_home).expanduser() / "lit_seqcls"


def fingerprint(*parts: Any) -> str:
    """A stable hex key for JSON-serialisable ``parts`` (dict order does not matter).

    Example:
        >>> fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1}) != fingerprint({"a": 2})
        True
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's contents (memoised per path, size and mtime within the process)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        sha = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        _DIGESTS[key] = sha.hexdigest()
    return _DIGESTS[key]


def tree_digest(path: str | Path) -> dict[str, str]:
    """Digests of every file under a directory (a local hub-layout copy), by relative path."""
    root = Path(path)
    return {
        str(p.relative_to(root)): file_digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path.lock`` (blocks while another process holds it).

    The kernel drops the lock when its holder dies, so a killed writer never blocks the next.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def text_entry(path: Path, build: Callable[[], str]) -> str:
    """The text cached at ``path``; missing, it is built by ``build()`` and written first.

    Under the lock, so of several ranks or jobs one builds and the others wait and read.
    """
    with locked(path):
        if path.is_file():
            return path.read_text(encoding="utf-8")
        text = build()
        write_text_atomically(path, text)
        return text


def dataset_entry(path: Path, build: Callable[[], datasets.DatasetDict]) -> datasets.DatasetDict:
    """The datasets cached (memory-mapped) at ``path``; missing, built and saved first."""
    with locked(path):
        if not (path / "dataset_dict.json").is_file():
            save_dataset_atomically(build(), path)
        return datasets.load_from_disk(str(path))


# Writers (call them under `locked(path)`) remove what a killed writer left, then write through
# lit_seqcls.runtime.atomic: a temporary name, flushed to disk, renamed to `path`. The rename is
# the commit: `path` is absent or complete, even after a kill or a power cut.


def write_text_atomically(path: Path, text: str) -> None:
    _remove_leftovers(path)
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def save_dataset_atomically(data: datasets.DatasetDict, path: Path) -> None:
    """``save_to_disk`` into a temporary folder, flush it, then rename it to ``path``.

    A folder already at ``path`` is incomplete (a complete one is read, not rebuilt), e.g.
    from a version that wrote in place: it is replaced.
    """
    _remove_leftovers(path)
    with atomic_directory(path) as tmp:
        data.save_to_disk(str(tmp))


def _remove_leftovers(path: Path) -> None:
    # Temporary files and folders of writers that were killed (we hold the lock: none is alive).
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
