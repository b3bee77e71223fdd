"""Cache keys and race-free cache files shared by every rank.

Every rank computes the same key from the same inputs (source fingerprint, tokenizer, settings),
so all of them find the same files. Writers hold an exclusive file lock and write to a temporary
name renamed into place: a reader sees either nothing or a complete file, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets


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
    """Hold an exclusive lock on ``path.lock`` (blocks while another process holds it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def save_dataset_atomically(data: datasets.DatasetDict, path: Path) -> None:
    """``save_to_disk`` into a temporary folder, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        data.save_to_disk(str(tmp))
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
