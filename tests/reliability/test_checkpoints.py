"""Checkpoints: written atomically, plain data only, loaded with ``weights_only=True`` everywhere.

A truncated, corrupted or pickled-object file gives a clear error naming it; ``--ckpt_path auto``
skips such a file for the newest one that loads.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_seqcls import SequenceClassifier
from lit_seqcls.checkpoints import CheckpointError, checkpoint_problem, load_checkpoint
from lit_seqcls.cli import SeqClsCLI, main
from lit_seqcls.runtime import AtomicCheckpointIO
from lit_seqcls.runtime import prediction as prediction_module
from lit_seqcls.runtime.atomic import atomic_write
from lit_seqcls.runtime.guards import NonFiniteGuard
from lit_seqcls.runtime.prediction import _write_jsonl_atomically
from lit_seqcls.runtime.resume import newest_checkpoint, resolve_ckpt_path
from lit_seqcls.runtime.shutdown import GracefulShutdown

ROOT = Path(__file__).resolve().parents[2]


class _Evil:
    """Unpickling this runs code: it creates the file ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}, "global_step": 7}, path)
    return path


def _truncated(good: Path, name: str = "cut.ckpt") -> Path:
    path = good.with_name(name)
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


def _flipped(good: Path) -> Path:
    data = bytearray(good.read_bytes())
    middle = len(data) // 2  # inside the tensor's bytes
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path = good.with_name("flipped.ckpt")
    path.write_bytes(bytes(data))
    return path


def test_a_truncated_checkpoint_is_a_clear_error_naming_the_file(good):
    cut = _truncated(good)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(cut)
    assert f"Checkpoint {cut} is truncated or corrupted" in str(err.value)
    assert "--ckpt_path auto" in str(err.value)
    with pytest.raises(CheckpointError, match="truncated"):
        AtomicCheckpointIO().load_checkpoint(cut)


def test_flipped_bytes_inside_a_tensor_are_caught_by_the_zip_checksums(good):
    flipped = _flipped(good)
    torch.load(flipped, weights_only=True)  # torch alone loads the damaged values silently
    with pytest.raises(CheckpointError, match=r"entry .*data/0 fails its checksum"):
        load_checkpoint(flipped)


def test_a_pickled_object_is_refused_naming_the_file_and_the_class(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "extra": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert f"Checkpoint {path} holds pickled Python code or objects (io.open)" in str(err.value)
    assert "Do not trust its source" in str(err.value)
    with pytest.raises(CheckpointError, match="pickled Python code"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # asking does not help
    assert not marker.exists()


def test_load_from_checkpoint_refuses_a_pickled_object_too(tmp_path):
    model = SequenceClassifier(vocab_size=20, num_classes=2, encoder="cnn", embedding_dim=4)
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    checkpoint = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    marker = tmp_path / "code_ran"
    checkpoint["hyper_parameters"]["extra"] = _Evil(str(marker))
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="pickled Python code"):
        SequenceClassifier.load_from_checkpoint(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_every_torch_load_in_the_packages_is_weights_only():
    calls = []
    for pkg in ("lit_seqcls", "datamodules", "callbacks"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                    safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True
                               for k in node.keywords)  # fmt: skip
                    calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", safe))
    assert calls
    assert [where for where, safe in calls if not safe] == []


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "step": 1}, path)
    with pytest.raises(CheckpointError) as err:
        io.save_checkpoint({"state_dict": {}, "hyper_parameters": {"root": Path("x")}}, path)
    # The message names where the object is, and why it matters.
    assert "hyper_parameters.root (a PosixPath)" in str(err.value)
    assert "weights_only=True" in str(err.value) and "previous checkpoint is kept" in str(err.value)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "preds.jsonl"
    dead = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    dead.start()
    dead.join()
    stale = tmp_path / f".preds.jsonl.{dead.pid}.tmp"
    stale.write_text("half a fi")
    with atomic_write(path, "w") as f:
        f.write("whole\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]


def test_a_failed_prediction_export_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "predictions.jsonl"
    _write_jsonl_atomically(path, [{"index": 0}])
    calls = []

    def dumps_then_fail(row, **kwargs):  # dies after one row, like a kill mid-export
        calls.append(row)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return "{}"

    monkeypatch.setattr(prediction_module.json, "dumps", dumps_then_fail)
    with pytest.raises(KeyboardInterrupt):
        _write_jsonl_atomically(path, [{"index": 0}, {"index": 1}])
    assert path.read_text() == '{"index": 0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.jsonl"]


def test_auto_resume_skips_a_truncated_newest_checkpoint(good, tmp_path):
    (tmp_path / "sub").mkdir()
    cut = _truncated(good).rename(tmp_path / "sub" / "last.ckpt")  # newer, cut short by a kill
    os.utime(good, (1, 1))
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    with pytest.warns(UserWarning, match=f"skipping {re.escape(str(cut))}: is truncated"):
        assert resolve_ckpt_path("auto", trainer.default_root_dir) == str(good)
    cut.unlink()
    _flipped(good).rename(tmp_path / "sub" / "flipped.ckpt")
    with pytest.warns(UserWarning, match="fails its checksum"):
        assert newest_checkpoint(tmp_path) == good
    assert checkpoint_problem(good) is None


def test_the_cli_refuses_a_bad_ckpt_path_with_a_message_and_no_traceback(
    good, tmp_path, capsys, tiny_fit_args
):
    for bad in (_truncated(good), _flipped(good)):
        with pytest.raises(SystemExit) as exit_:
            main(["fit", *tiny_fit_args, "--trainer.max_epochs=1", "--ckpt_path", str(bad)])
        message = str(exit_.value.code)
        assert message.startswith(f"lit-seqcls: error: Checkpoint {bad} is truncated or corrupted")
    assert not (tmp_path / "logs").exists()  # refused before anything was written


def test_the_cli_writes_checkpoints_atomically_and_guards_training(tiny_fit_args):
    cli = SeqClsCLI(
        SequenceClassifier, L.LightningDataModule, subclass_mode_data=True,
        auto_configure_optimizers=False, run=False, args=tiny_fit_args,
    )  # fmt: skip
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    kinds = {type(cb) for cb in cli.trainer.callbacks}
    assert {NonFiniteGuard, GracefulShutdown} <= kinds


# Rewrites argv[1] with an ever larger step until killed. A process of its own, not a fork of
# pytest's: a forked child hung in its first torch.zeros (the parent's OpenMP pool does not
# survive a fork), so the test failed waiting for it, not for the code under test.
SAVE_FOREVER = """
import sys, torch
from lit_seqcls.runtime import AtomicCheckpointIO
io, checkpoint = AtomicCheckpointIO(), {"state_dict": {"w": torch.zeros(4_000_000)}}
for step in range(10**9):
    checkpoint["step"] = step
    checkpoint["state_dict"]["w"].fill_(step)
    io.save_checkpoint(checkpoint, sys.argv[1])
    if step == 0:
        print("saved", flush=True)
"""


def _other_file_system() -> str | None:
    """A directory on another file system than the system temp dir (tmpfs), if there is one."""
    shm = Path("/dev/shm")
    writable = shm.is_dir() and os.access(shm, os.W_OK)
    if writable and shm.stat().st_dev != Path(tempfile.gettempdir()).stat().st_dev:
        return str(shm)
    return None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="a tmpfs /dev/shm")
def test_a_kill_during_a_save_leaves_the_old_or_the_new_checkpoint(tmp_path, monkeypatch):
    # Lightning's TorchCheckpointIO writes through fsspec into $TMPDIR and *copies* the file
    # into place when that is another file system: 3 of 10 kills left a truncated checkpoint.
    other = _other_file_system()
    if other is None:
        pytest.skip("needs a tmpfs /dev/shm beside the temp dir")
    tmpdir = tempfile.mkdtemp(dir=other)
    monkeypatch.setenv("TMPDIR", tmpdir)
    monkeypatch.setattr(tempfile, "tempdir", tmpdir)
    target = tmp_path / "last.ckpt"
    rng = random.Random(0)
    try:
        for _trial in range(12):
            writer = subprocess.Popen(
                [sys.executable, "-c", SAVE_FOREVER, str(target)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "TMPDIR": tmpdir, "OMP_NUM_THREADS": "1"},
            )
            assert writer.stdout.readline() == "saved\n"  # one whole save first
            time.sleep(rng.uniform(0.0, 0.5))
            writer.kill()
            writer.wait()
            checkpoint = load_checkpoint(target)  # raises on a truncated file
            assert bool((checkpoint["state_dict"]["w"] == checkpoint["step"]).all())
        assert os.listdir(tmpdir) == []  # nothing written, or left behind, in $TMPDIR
    finally:
        for leftover in Path(tmpdir).iterdir():
            leftover.unlink()
        os.rmdir(tmpdir)
