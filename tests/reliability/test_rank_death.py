"""A DDP rank dies (kill -9) or hangs: the other exits non-zero with a message, in bounded time.

Measured on 2 CPU ranks (gloo): a killed rank is noticed at the survivor's next collective
(its socket closes), ~2 s; a hung rank only after the process-group timeout, which torch sets
to 30 minutes and the CLI to ``DEFAULT_DDP_TIMEOUT``. The job resumes with ``--ckpt_path auto``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest

from lit_seqcls import SequenceClassifier
from lit_seqcls.cli import SeqClsCLI
from lit_seqcls.runtime.shutdown import DEFAULT_DDP_TIMEOUT

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DDP_CPU = CONFIGS / "trainer" / "ddp_cpu.yaml"
CLI = [
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--data.init_args.train_size=2000", "--data.init_args.test_size=40",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--data.init_args.batch_size=16", "--model.embedding_dim=16",
    "--model.encoder.init_args.hidden_size=16", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]  # fmt: skip
NOTE = "lost contact with another rank"


def _trainer(args: list[str]) -> L.Trainer:
    cli = SeqClsCLI(
        SequenceClassifier, L.LightningDataModule, subclass_mode_data=True,
        auto_configure_optimizers=False, run=False, args=[*CLI, *args],
    )  # fmt: skip
    return cli.trainer


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"],
         DEFAULT_DDP_TIMEOUT),
        (["--config", str(DDP_CPU)], DEFAULT_DDP_TIMEOUT),
        (["--config", str(DDP_CPU), "--trainer.strategy.init_args.timeout=0:00:20"],
         timedelta(seconds=20)),
    ],
    ids=["--trainer.strategy=ddp", "ddp_cpu.yaml", "ddp_cpu.yaml+timeout"],
)  # fmt: skip
def test_the_process_group_timeout_is_minutes_not_half_an_hour(args, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    assert _trainer(args).strategy._timeout == expected  # what init_process_group receives


def start_ddp_fit(workdir: Path, *extra: str) -> tuple[subprocess.Popen, int, Path]:
    """``lit-seqcls fit`` on 2 CPU ranks, once epoch 0 is checkpointed: (rank 0, rank 1's pid)."""
    log = workdir / "out.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lit_seqcls", "fit", *CLI, "--config", str(DDP_CPU),
             "--trainer.max_epochs=50", *extra],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(workdir.rglob("last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)  # into epoch 1
    (rank1,) = [pid for pid in _children(proc.pid) if "lit_seqcls" in _cmdline(pid)]
    return proc, rank1, log


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state == "Z"


def _wait_gone(pid: int, timeout: float) -> float:
    start = time.monotonic()
    while not _gone(pid):
        assert time.monotonic() - start < timeout, f"process {pid} still running"
        time.sleep(0.1)
    return time.monotonic() - start


def _cleanup(proc: subprocess.Popen, *pids: int) -> None:
    for pid in pids:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.ddp
@pytest.mark.slow
def test_killing_rank_1_stops_rank_0_with_a_message_and_the_job_resumes(tmp_path, run_cli):
    proc, rank1, log = start_ddp_fit(tmp_path)
    try:
        os.kill(rank1, signal.SIGKILL)
        start = time.monotonic()
        status = proc.wait(timeout=120)
        seconds = time.monotonic() - start
    finally:
        _cleanup(proc, rank1)
    out = log.read_text()
    assert status != 0 and seconds < 60, (status, seconds)
    assert f"rank 0 of 2 {NOTE}" in out and "--ckpt_path auto" in out, out[-3000:]
    print(f"rank 1 killed: rank 0 exited with status {status} after {seconds:.1f} s")
    resumed = run_cli("fit", *CLI, "--config", str(DDP_CPU), "--trainer.max_epochs=2",
                      "--ckpt_path", "auto", cwd=tmp_path)  # fmt: skip
    assert "--ckpt_path auto: resuming from logs/lightning_logs/version_0/checkpoints/" in resumed


@pytest.mark.ddp
@pytest.mark.slow
def test_killing_rank_0_stops_rank_1_with_a_message(tmp_path):
    proc, rank1, log = start_ddp_fit(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seconds = _wait_gone(rank1, timeout=120)
    finally:
        _cleanup(proc, rank1)
    out = log.read_text()
    assert seconds < 60 and f"rank 1 of 2 {NOTE}" in out, out[-3000:]
    print(f"rank 0 killed: rank 1 exited after {seconds:.1f} s")


@pytest.mark.ddp
@pytest.mark.slow
def test_a_hung_rank_fails_the_other_after_the_timeout_and_is_killed(tmp_path):
    proc, rank1, log = start_ddp_fit(tmp_path, "--trainer.strategy.init_args.timeout=0:00:15")
    try:
        os.kill(rank1, signal.SIGSTOP)  # alive but silent: a deadlock, a lost node
        start = time.monotonic()
        status = proc.wait(timeout=120)
        seconds = time.monotonic() - start
        killed = _wait_gone(rank1, timeout=10) < 10  # rank 0 took the hung rank down with it
    finally:
        _cleanup(proc, rank1)
    out = log.read_text()
    assert status != 0 and 15 <= seconds < 60, (status, seconds, out[-3000:])
    assert f"rank 0 of 2 {NOTE}" in out and killed
    print(f"rank 1 hung: rank 0 exited with status {status} after {seconds:.1f} s")
