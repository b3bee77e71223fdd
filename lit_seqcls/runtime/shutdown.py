"""How a training run ends when it is told to stop, or when another DDP rank is gone.

``GracefulShutdown`` (added by the CLI) turns Ctrl-C and SIGTERM into a stop at the next step
boundary that every rank agrees on: a checkpoint of the last completed step, the W&B run closed
with the exit status, and exit status 128 + signal (130 for Ctrl-C, 143 for SIGTERM) within
seconds. SLURM's requeue signal (SIGUSR1) is left to Lightning.

SIGTERM outside training is Lightning's own, public handling: its handler (in place from the
start of ``fit``/``validate``/... to its end) sets ``trainer.received_sigterm`` and its loops
raise ``SIGTERMException`` after the current batch; ``on_exception`` gives that exception the
exit status 143 (Lightning's is 0) and, should it come during training, saves the checkpoint.
While training runs, our handler takes SIGTERM over (one install, in ``on_train_start``):
Lightning 2.6's handler broadcasts from *inside* the signal handler, a collective that can pair
with another rank's, and each rank raises after its own batch; with it, 1 of 3 runs of the
``-m ddp`` SIGTERM test hung (measured). A SIGTERM Lightning noted before training started is
carried over to the first step boundary.

Lightning installs no SIGINT handler; ours is installed once, in ``setup``. A second Ctrl-C stops
at once, mid-step and without saving (the first one says so); the exit status is still 130, not
Lightning's 1 for a ``KeyboardInterrupt``, so a script or scheduler sees "stopped by Ctrl-C"
however many times it was pressed; so does a Ctrl-C while the stopped run closes its W&B run.
``--ckpt_path auto`` then resumes from the last checkpoint saved before.

A rank that dies or hangs makes the others fail in their next collective: at once when its
process is gone (the socket closes; ~2 s measured), after the process-group timeout when it
hangs. ``bound_ddp_timeout`` makes that timeout minutes instead of torch's 30, and
``GracefulShutdown`` adds to the error what happened and how to resume.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from signal import SIG_IGN
from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, Strategy
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_seqcls.runtime.distributed import finish_together, gather_flags, is_distributed
from lit_seqcls.runtime.lightning_internals import (
    DEFAULT_PG_TIMEOUT,
    ddp_timeout,
    kill_launched_processes,
    set_ddp_timeout,
)
from lit_seqcls.runtime.resume import newest_saved

DEFAULT_DDP_TIMEOUT = timedelta(minutes=5)
INTERRUPTED_CKPT = "interrupted.ckpt"
_PEER_FAILURE = re.compile(r"gloo|nccl|TCPStore|connection (reset|closed) by peer", re.I)


class TrainingInterrupted(SIGTERMException):
    """Training stopped on a signal; the exit status is 128 + the signal number.

    ``together`` says every rank raised it at the same step (so they can wait for each other).
    """

    def __init__(self, signum: int, message: str, together: bool = False) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.message = message
        self.together = together

    def __str__(self) -> str:  # SystemExit's is the code; the exit itself prints nothing
        return self.message


class GracefulShutdown(L.Callback):
    """Ctrl-C / SIGTERM: stop at the next step boundary on every rank, with a checkpoint.

    During training the first signal is noted. At the end of the current optimizer step (or of
    the current validation) the ranks compare notes; all stop there together, saving
    ``<checkpoint dir>/interrupted.ckpt`` first, which ``--ckpt_path auto`` resumes from. A
    second Ctrl-C stops at once, without saving, with the same exit status 130.

    Before training, and in ``validate``/``test``/``predict``, nothing is saved: Ctrl-C stops at
    once, SIGTERM (Lightning's handler) after the current batch; a SIGTERM noted during the
    sanity check stops at the first step boundary instead, with a checkpoint. A SIGTERM before
    Lightning's handler is in place (in ``setup``, while the data is prepared) ends the process
    at once, the signal's default action. When a DDP collective fails because another rank died
    or hangs, the error gets a note saying so and how to resume. A process that ignores SIGINT
    (a background job) keeps ignoring it.

    Args:
        save_checkpoint: save a checkpoint of the last completed step when interrupted.
    """

    def __init__(self, save_checkpoint: bool = True) -> None:
        self.save_checkpoint = save_checkpoint
        self.requested: int | None = None  # the first signal received
        self._training = False
        self._where = ""  # the last training batch or validation finished, for the message
        self._trainer: L.Trainer | None = None
        self._previous: dict[int, Any] = {}  # the handlers ours replaced

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer, self.requested = trainer, None
        self._install(signal.SIGINT)  # Lightning installs none

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's SIGTERM handler is in place by now (`Trainer._run`); ours replaces it.
        self._install(signal.SIGTERM)
        if trainer.received_sigterm and self.requested is None:
            self.requested = signal.SIGTERM  # since Lightning's handler: at the first boundary
        self._training = True
        self._where = f"the start of epoch {trainer.current_epoch}"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self._where = f"batch {idx} of epoch {trainer.current_epoch}"
        if (idx + 1) % trainer.accumulate_grad_batches == 0:  # only right after an update
            self._stop_if_requested(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._training and not trainer.sanity_checking:
            self._where = f"the validation of epoch {trainer.current_epoch}"
            self._stop_if_requested(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training = False  # training is complete: a late signal changes nothing

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._detach()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException) and not isinstance(
            exception, TrainingInterrupted
        ):
            # Lightning's own stop on SIGTERM (outside training, where its handler is in place).
            exception.code = 128 + signal.SIGTERM  # Lightning's is None: exit status 0
            message = self._stop(trainer, signal.SIGTERM)
            self._detach()
            rank_zero_info(message)
            return
        self._detach()
        if isinstance(exception, TrainingInterrupted):
            if exception.together:
                with _ctrl_c_exits_at_once(trainer, again=exception.signum == signal.SIGINT):
                    finish_together(trainer)  # closing the W&B run can take seconds
            rank_zero_info(exception.message)
        elif _peer_failure(exception):
            _add_note(exception, self._peer_note(trainer))
            if trainer.is_global_zero:
                # A hung rank would outlive the job; Lightning only does this for Ctrl-C.
                kill_launched_processes(trainer.strategy, signal.SIGKILL)

    def _install(self, signum: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        current = signal.getsignal(signum)
        if current == self._on_signal or (signum == signal.SIGINT and current == SIG_IGN):
            return
        self._previous.setdefault(signum, current)
        signal.signal(signum, self._on_signal)

    def _detach(self) -> None:
        self._trainer, self._training = None, False
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._previous.items():
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        trainer = self._trainer
        if trainer is None:  # left installed by someone who restored it after us
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
        name = signal.Signals(signum).name
        if self.requested is not None:
            if signum == signal.SIGINT:  # a second Ctrl-C: do not wait for the step to end
                self._stop_at_once(trainer)
            return
        self.requested = signum
        if signum == signal.SIGTERM:
            kill_launched_processes(trainer.strategy, signum)  # the ranks it started stop too
        if not self._training:  # no step under way that is worth finishing
            raise TrainingInterrupted(signum, self._stopped(trainer, signum))
        # Unbuffered: a signal can arrive while the main thread is inside a buffered write.
        saving = " and saving a checkpoint" if self.save_checkpoint else ""
        again = "; a second Ctrl-C stops at once, without saving" if signum == signal.SIGINT else ""
        note = f"\nReceived {name}: stopping after the current step{saving}{again}.\n"
        os.write(2, note.encode())

    def _stop_at_once(self, trainer: L.Trainer) -> None:
        """Raise (exit status 130, like the first Ctrl-C) instead of Lightning's KeyboardInterrupt.

        Lightning turns a ``KeyboardInterrupt`` into exit status 1 and leaves SIGINT ignored for
        the rest of the process; this stops the ranks it started the way it would (SIGKILL).
        """
        # No step boundary to meet them at.
        kill_launched_processes(trainer.strategy, signal.SIGKILL)
        self._training = False
        raise TrainingInterrupted(
            signal.SIGINT,
            f"Stopped at once by a second SIGINT (Ctrl-C) after step {trainer.global_step}; "
            "nothing saved. Resume from the last checkpoint with the same command and "
            "--ckpt_path auto.",
        )

    def _stop_if_requested(self, trainer: L.Trainer) -> None:
        """Stop every rank here if any of them received a signal (a collective under DDP)."""
        if not any(r for (r,) in gather_flags(trainer, [self.requested is not None])):
            return
        signum = self.requested or signal.SIGTERM  # only another rank received it
        raise TrainingInterrupted(signum, self._stop(trainer, signum), together=True)

    def _stop(self, trainer: L.Trainer, signum: int) -> str:
        """Save the checkpoint of the last completed step (all ranks call it); say what happened."""
        if not self._training:
            return self._stopped(trainer, signum)
        saved = ""
        if self.save_checkpoint and trainer.global_step > 0:
            path = _checkpoint_dir(trainer) / INTERRUPTED_CKPT
            trainer.save_checkpoint(path, weights_only=False)  # a collective: all ranks call it
            saved = f" Saved {path}; resume with the same command and --ckpt_path auto."
        self._training = False
        name = signal.Signals(signum).name
        return f"Stopped by {name} after step {trainer.global_step} ({self._where}).{saved}"

    @staticmethod
    def _stopped(trainer: L.Trainer, signum: int) -> str:
        what = "before training started" if trainer.state.fn == "fit" else "early"
        return f"Stopped by {signal.Signals(signum).name} {what}; nothing saved."

    def _peer_note(self, trainer: L.Trainer) -> str:
        last = newest_saved(trainer)
        return (
            f"lit-seqcls: rank {trainer.global_rank} of {trainer.world_size} lost contact with "
            f"another rank at step {trainer.global_step} (epoch {trainer.current_epoch}): a "
            "process of this DDP job died (its log says why; one killed by the OOM killer or "
            "kill -9 says nothing) or stopped answering for the process-group timeout. This "
            "rank stops too. Resume from the last checkpoint with the same command and "
            f"--ckpt_path auto{f' (newest: {last})' if last else ''}."
        )


def bound_ddp_timeout(strategy: Strategy, timeout: timedelta = DEFAULT_DDP_TIMEOUT) -> None:
    """Give a DDP strategy left at torch's 30-minute process-group timeout ``timeout`` instead.

    A strategy configured with its own ``timeout`` (``configs/trainer/ddp*.yaml``) is left
    alone. Call before ``fit``: the timeout is read when the process group is created.
    """
    # A private attribute (fenced), but the value DDPStrategy hands to init_process_group; the
    # alternative is re-implementing Lightning's choice of strategy for `strategy="auto"`.
    if isinstance(strategy, DDPStrategy) and ddp_timeout(strategy) == DEFAULT_PG_TIMEOUT:
        set_ddp_timeout(strategy, timeout)


def _checkpoint_dir(trainer: L.Trainer) -> Path:
    dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
    return Path(dirpath or trainer.default_root_dir)


def _peer_failure(exception: BaseException) -> bool:
    """Whether ``exception`` is a failed DDP collective (a peer gone, or a timeout)."""
    if not is_distributed():
        return False
    if isinstance(exception, dist.DistError):
        return True
    return isinstance(exception, RuntimeError) and bool(_PEER_FAILURE.search(str(exception)))


def _add_note(exception: BaseException, note: str) -> None:
    if hasattr(exception, "add_note"):  # shown after the traceback, where people look
        exception.add_note(note)
    else:  # Python 3.10
        print(note, flush=True)


@contextmanager
def _ctrl_c_exits_at_once(trainer: L.Trainer, again: bool) -> Iterator[None]:
    """While a stopped run closes its logger, Ctrl-C ends the process at once with status 130.

    Our handler is detached by then, and Python's default one would raise ``KeyboardInterrupt``
    inside W&B's ``finish``: a traceback and a process killed by SIGINT instead of the message
    and the status a second Ctrl-C gives during training (``-m slow`` caught it, under load).
    The checkpoint is already written; the ranks this process launched are killed, as there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous == SIG_IGN:  # a background job keeps ignoring Ctrl-C
        yield
        return

    def exit_now(signum: int, frame: Any) -> None:
        kill_launched_processes(trainer.strategy, signal.SIGKILL)
        which = "a second SIGINT (Ctrl-C)" if again else "SIGINT (Ctrl-C)"
        os.write(2, f"\nStopped at once by {which} while closing the run.\n".encode())
        os._exit(128 + signal.SIGINT)  # no cleanup left that is worth waiting for

    signal.signal(signal.SIGINT, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
