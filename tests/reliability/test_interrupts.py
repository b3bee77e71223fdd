"""Ctrl-C and SIGTERM: stop at a step boundary, save a checkpoint, close W&B, exit in seconds.

Measured before ``GracefulShutdown``: SIGTERM made ``lit-seqcls fit`` exit with status 0, no
checkpoint and a W&B run recorded as exit code 0 (finished); Ctrl-C saved nothing either.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.runtime import AtomicCheckpointIO
from lit_seqcls.runtime.shutdown import INTERRUPTED_CKPT, GracefulShutdown, TrainingInterrupted
from lit_seqcls.runtime.wandb_logger import WandbLogger

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def _signal_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # As in a terminal: a suite started in the background (`pytest &` from a script) inherits
    # SIGINT ignored, which GracefulShutdown rightly keeps, and Ctrl-C would test nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    import wandb

    wandb.finish()


def wandb_exit_code(root: Path) -> int | None:
    """The exit code in the ``exit`` record of the offline W&B run under ``root`` (None: none).

    A ``.wandb`` file is a LevelDB-style log of protobuf records: a 7-byte header, then 32 KiB
    blocks of chunks, each with a 7-byte header (CRC-32C, length, type: 1 full, 2-4 pieces).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = root.rglob("offline-run-*/run-*.wandb")
    data, pos, record = path.read_bytes(), 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        record = chunk if kind in (1, 2) else record + chunk
        if kind in (1, 4) and record:
            parsed = pb.Record()
            parsed.ParseFromString(record)
            if parsed.WhichOneof("record_type") == "exit":
                return parsed.exit.exit_code
    return None


class _SendSignals(L.Callback):
    """Sends this process ``signals`` from ``hook`` (at training batch ``batch`` if it has one)."""

    def __init__(self, signals, hook="on_train_batch_end", batch=3):
        self.signals, self.batch = signals, batch
        setattr(self, hook, self._send)

    def _send(self, trainer, pl_module, *batch_args):
        if not batch_args or batch_args[-1] == self.batch:
            for signum in self.signals:
                os.kill(os.getpid(), signum)


def _fit(small_synthetic_kwargs, tmp_path, sender, logger=False):
    torch.set_num_threads(1)
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8)
    trainer = L.Trainer(
        max_epochs=2, logger=logger, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=1, limit_val_batches=2, default_root_dir=tmp_path,
        callbacks=[sender, GracefulShutdown(), ModelCheckpoint(dirpath=tmp_path / "ckpt")],
        plugins=[AtomicCheckpointIO()],
    )  # fmt: skip
    return trainer, model, dm


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_after_the_step_with_checkpoint_and_wandb_closed(
    signum, small_synthetic_kwargs, tmp_path
):
    logger = WandbLogger(save_dir=str(tmp_path / "wandb"), mode="offline")
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, _SendSignals([signum]), logger)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit(model, dm)
    assert stop.value.code == 128 + signum  # the process exit status: 143 or 130
    assert stop.value.message.startswith(
        f"Stopped by {signal.Signals(signum).name} after step 4 (batch 3 of epoch 0). Saved "
    )
    checkpoint = load_checkpoint(tmp_path / "ckpt" / INTERRUPTED_CKPT)
    assert checkpoint["global_step"] == 4  # the last completed step, nothing half-done
    for name, value in model.state_dict().items():
        assert torch.equal(checkpoint["state_dict"][name], value), name
    assert wandb_exit_code(tmp_path / "wandb") == 128 + signum  # closed, with the status


def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint_and_status_130(
    small_synthetic_kwargs, tmp_path, capfd
):
    """Before #14: exit status 1 (Lightning's KeyboardInterrupt), SIGINT left ignored."""
    sender = _SendSignals([signal.SIGINT, signal.SIGINT])
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, sender)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit(model, dm)
    assert stop.value.code == 130  # 128 + SIGINT, as for one Ctrl-C
    assert stop.value.message.startswith(
        "Stopped at once by a second SIGINT (Ctrl-C) after step 4; nothing saved."
    )
    assert not (tmp_path / "ckpt" / INTERRUPTED_CKPT).exists()
    # The first Ctrl-C said what a second one would do.
    assert "a second Ctrl-C stops at once, without saving" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) != signal.SIG_IGN
    with pytest.raises(KeyboardInterrupt):  # a later Ctrl-C works as before the run
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


# A first Ctrl-C stops the run at a step boundary; the second arrives while the logger closes
# (this logger's `finalize` sends it), after GracefulShutdown's handler is detached.
CTRL_C_WHILE_CLOSING = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from lightning.pytorch.loggers import CSVLogger
from test_interrupts import _fit, _SendSignals

class SlowToClose(CSVLogger):
    def finalize(self, status):
        if status == "failed":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # W&B's finish, waiting on its service
        super().finalize(status)

tmp = Path(sys.argv[1])
trainer, model, dm = _fit({data!r}, tmp, _SendSignals([signal.SIGINT]), SlowToClose(str(tmp)))
trainer.fit(model, dm)
"""


def test_a_second_ctrl_c_while_the_run_closes_exits_130_at_once(small_synthetic_kwargs, tmp_path):
    script = tmp_path / "ctrl_c_while_closing.py"
    tests = str(Path(__file__).parent)
    script.write_text(CTRL_C_WHILE_CLOSING.format(tests=tests, data=small_synthetic_kwargs))
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 130, result.stderr[-3000:]  # not killed by SIGINT (-2)
    assert "Stopped at once by a second SIGINT (Ctrl-C) while closing the run." in result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
    assert (tmp_path / "ckpt" / INTERRUPTED_CKPT).exists()  # saved before the logger closed


def test_a_ctrl_c_before_training_stops_at_once(small_synthetic_kwargs, tmp_path):
    sender = _SendSignals([signal.SIGINT], hook="on_sanity_check_end")
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, sender)
    with pytest.raises(TrainingInterrupted, match="before training started; nothing saved"):
        trainer.fit(model, dm)
    assert trainer.global_step == 0


def test_a_sigterm_in_test_stops_at_the_next_batch_and_saves_nothing(
    small_synthetic_kwargs, tmp_path, caplog
):
    """Outside training SIGTERM is Lightning's: its SIGTERMException gets exit status 143."""
    caplog.set_level(logging.INFO)
    sender = _SendSignals([signal.SIGTERM], hook="on_test_batch_end", batch=0)
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, sender)
    with pytest.raises(SIGTERMException) as stop:
        trainer.test(model, dm)
    assert stop.value.code == 143
    assert "Stopped by SIGTERM early; nothing saved." in caplog.text
    assert not (tmp_path / "ckpt" / INTERRUPTED_CKPT).exists()


def test_a_sigterm_during_the_sanity_check_stops_at_the_first_step_boundary(
    small_synthetic_kwargs, tmp_path
):
    """Lightning's handler notes it (its check after the sanity check's last batch does not
    stop); training takes it over and stops, saved, where a SIGTERM during training would."""
    sender = _SendSignals([signal.SIGTERM], hook="on_sanity_check_end")
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, sender)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit(model, dm)
    assert stop.value.code == 143 and trainer.global_step == 1
    assert stop.value.message.startswith("Stopped by SIGTERM after step 1 (batch 0 of epoch 0).")
    assert load_checkpoint(tmp_path / "ckpt" / INTERRUPTED_CKPT)["global_step"] == 1


def test_without_a_signal_nothing_changes(small_synthetic_kwargs, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    trainer, model, dm = _fit(small_synthetic_kwargs, tmp_path, L.Callback())
    trainer.fit(model, dm)
    assert trainer.global_step > 0 and not (tmp_path / "ckpt" / INTERRUPTED_CKPT).exists()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers put back after `fit`


# ---- the CLI in a subprocess, as a user (or a scheduler) stops it -------------------------

CLI = [
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--config", str(CONFIGS / "logger" / "wandb.yaml"),
    "--data.init_args.train_size=2000", "--data.init_args.test_size=40",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--data.init_args.batch_size=16", "--model.embedding_dim=16",
    "--model.encoder.init_args.hidden_size=16", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    # No early stopping: the keyword task reaches val/acc 1.0 in a few epochs, and a run that
    # ends on its own before the signal arrives tests nothing (it did, once steps got faster).
    "--trainer.callbacks=[]",
    "--trainer.max_epochs=50",  # last: tests replace it (CLI[:-1])
]  # fmt: skip
DDP = ["--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml")]


def interrupt_cli(
    workdir: Path, signum: int, extra=(), group=False, times=1
) -> tuple[int, float, str]:
    """Start ``lit-seqcls fit``, signal it early in epoch 1 (``times`` times in a row);
    (status, seconds to exit, output)."""
    log = workdir / "out.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lit_seqcls", "fit", *CLI, *extra], cwd=workdir,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while not list(workdir.rglob("last.ckpt")) and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(1.0)  # into epoch 1
            start = time.monotonic()
            for _ in range(times):
                (os.killpg if group else os.kill)(proc.pid, signum)  # group: a terminal's Ctrl-C
                time.sleep(0.05)
            status = proc.wait(timeout=120)
            return status, time.monotonic() - start, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def _check_stopped(workdir, signum, status, seconds, out):
    name = signal.Signals(signum).name
    assert status == 128 + signum, out[-3000:]
    assert seconds < 30, seconds
    assert out.count(f"Stopped by {name} after step") == 1, out[-3000:]  # rank zero says it
    (ckpt,) = workdir.rglob(INTERRUPTED_CKPT)
    last = next(workdir.rglob("last.ckpt"))
    assert load_checkpoint(ckpt)["global_step"] > load_checkpoint(last)["global_step"]
    assert wandb_exit_code(workdir / "logs" / "wandb") == 128 + signum
    print(f"{name}: exit status {status} after {seconds:.1f} s")  # shown with -s


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_cli_stops_on_a_signal_and_resumes_from_its_checkpoint(signum, tmp_path, run_cli):
    status, seconds, out = interrupt_cli(tmp_path, signum)
    _check_stopped(tmp_path, signum, status, seconds, out)
    resumed = run_cli("fit", *CLI[:-1], "--trainer.max_epochs=2", "--ckpt_path", "auto",
                      cwd=tmp_path)  # fmt: skip
    saved = f"logs/lightning_logs/version_0/checkpoints/{INTERRUPTED_CKPT}"
    assert f"--ckpt_path auto: resuming from {saved}" in resumed


@pytest.mark.slow
def test_the_cli_exits_130_on_a_second_ctrl_c_too(tmp_path):
    status, seconds, out = interrupt_cli(tmp_path, signal.SIGINT, times=2)
    assert status == 130, out[-3000:]
    assert seconds < 30, seconds
    assert "a second Ctrl-C stops at once, without saving" in out
    assert "Stopped at once by a second SIGINT (Ctrl-C)" in out, out[-3000:]
    assert "Traceback" not in out and not list(tmp_path.rglob(INTERRUPTED_CKPT)), out[-3000:]
    assert wandb_exit_code(tmp_path / "logs" / "wandb") == 130


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM-to-rank-0", "Ctrl-C-to-all"],
)
def test_ddp_ranks_stop_together_on_a_signal(signum, group, tmp_path):
    status, seconds, out = interrupt_cli(tmp_path, signum, DDP, group=group)
    _check_stopped(tmp_path, signum, status, seconds, out)
    assert "Connection reset by peer" not in out and "Traceback" not in out, out[-3000:]
