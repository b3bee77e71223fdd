"""Temporaries of killed writers are removed under a run root; those of live writers are kept."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from lit_seqcls.runtime import atomic
from lit_seqcls.runtime.atomic import STALE_AFTER_S, atomic_write, remove_stale_temporaries


def _write_then_die(path):
    with atomic_write(path) as f:
        f.write(b"half a checkpo")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # mid-save, as the OOM killer or a scheduler does


def _killed_mid_write(path):
    """Run a writer that is SIGKILLed inside ``atomic_write``; return its leftover temporary."""
    writer = multiprocessing.get_context("fork").Process(target=_write_then_die, args=(path,))
    writer.start()
    writer.join(timeout=60)
    assert writer.exitcode == -signal.SIGKILL
    (tmp,) = path.parent.glob(f".{path.name}.*.tmp")
    return tmp


def test_a_writer_killed_mid_save_leaves_a_temporary_that_is_then_removed(tmp_path):
    old = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    old.parent.mkdir(parents=True)
    tmp = _killed_mid_write(old)
    assert not old.exists()  # never renamed into place

    # The resumed run writes elsewhere (version_1), so atomic_write's own cleanup never sees it.
    assert remove_stale_temporaries(tmp_path) == [tmp]
    assert not tmp.exists() and old.parent.is_dir()


def test_temporaries_of_live_writers_are_kept(tmp_path):
    live = tmp_path / f".last.ckpt.{atomic._HOST}-{os.getpid()}.tmp"
    live.write_bytes(b"being written")
    with atomic_write(tmp_path / "preds.jsonl", "w") as f:  # a write in progress
        in_progress = list(tmp_path.glob(".preds.jsonl.*.tmp"))
        assert remove_stale_temporaries(tmp_path) == []
        f.write("x")
    assert live.exists() and len(in_progress) == 1


def test_another_machines_temporary_is_removed_only_once_it_is_old(tmp_path):
    # Its process id cannot be checked from here; a live writer would have touched it recently.
    other = tmp_path / ".last.ckpt.0123abcd-1.tmp"
    other.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == []
    old = time.time() - STALE_AFTER_S - 60
    os.utime(other, (old, old))
    assert remove_stale_temporaries(tmp_path) == [other]


def test_files_that_are_not_our_temporaries_are_kept(tmp_path):
    names = [".cache.tmp", ".last.ckpt.abc.tmp", "last.ckpt.4194304.tmp", ".notes.4194304.txt"]
    for name in names:
        (tmp_path / name).write_text("not ours")
    (tmp_path / ".dir.4194304.tmp").mkdir()  # a folder with the pattern's name
    assert remove_stale_temporaries(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == len(names) + 1


def test_legacy_names_without_a_host_are_still_removed(tmp_path):
    dead = tmp_path / ".last.ckpt.4194304.tmp"  # written before temporaries named their host
    dead.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [dead]
