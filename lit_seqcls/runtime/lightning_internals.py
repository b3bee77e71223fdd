"""Every private Lightning attribute lit-seqcls touches, each behind one named function (#15).

Lightning has no public API for these (docs/private_apis.md says why, row by row). Keeping them
here means an upgrade breaks in one place, loudly: each accessor checks that the attribute is
still there and raises ``LightningInternalsChanged`` naming the Lightning version and the
attribute, instead of a run that silently loses a safety net.
``tests/lit_seqcls/runtime/test_lightning_internals.py`` asserts that every attribute used here
exists on the installed version's own objects, so CI fails before a user does.
"""

from __future__ import annotations

from datetime import timedelta
from signal import Signals
from typing import Any

import lightning as L
from lightning.fabric.plugins.collectives.torch_collective import default_pg_timeout
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.strategies import DDPStrategy, Strategy

# torch's 30 minutes, as Lightning's DDPStrategy defaults to it (`timeout=default_pg_timeout`).
DEFAULT_PG_TIMEOUT: timedelta = default_pg_timeout


class LightningInternalsChanged(RuntimeError):
    """A private Lightning attribute lit-seqcls relies on is gone or has changed."""


def _check(obj: Any, attr: str) -> None:
    if not hasattr(obj, attr):
        raise LightningInternalsChanged(
            f"Lightning {L.__version__} changed {type(obj).__name__}.{attr} (it is gone); "
            "see docs/private_apis.md for what lit-seqcls used it for"
        )


# -- DDP: the process-group timeout (`DDPStrategy._timeout`) ------------------------------------


def ddp_timeout(strategy: DDPStrategy) -> timedelta | None:
    """The timeout ``strategy`` will hand to ``init_process_group``."""
    _check(strategy, "_timeout")
    return strategy._timeout


def set_ddp_timeout(strategy: DDPStrategy, timeout: timedelta) -> None:
    """Change that timeout after construction (for ``strategy="ddp"`` given as a string)."""
    _check(strategy, "_timeout")
    strategy._timeout = timeout


# -- The processes Lightning's launcher started (`strategy.launcher.kill`) ----------------------


def kill_launched_processes(strategy: Strategy, signum: Signals | int) -> None:
    """Send ``signum`` to the ranks Lightning's launcher started; nothing without a launcher."""
    launcher = strategy.launcher
    if launcher is None:
        return
    _check(launcher, "kill")
    launcher.kill(signum)


# -- Where a restored fit stopped in its epoch (`fit_loop.epoch_loop.batch_progress`) -----------


def restored_batches_in_epoch(trainer: L.Trainer) -> int:
    """Batches of the current epoch a restored checkpoint had already processed; 0 unless the fit
    loop is restarting from one (Lightning restores its progress before it asks for the training
    dataloader, so a sampler can skip them: ``datamodules.base.resume_point``).

    ``processed``, not ``completed``: a checkpoint written in ``on_train_batch_end``
    (ModelCheckpoint every N steps, a pre-emption signal) has the step in its weights but not yet
    ``completed``; Lightning itself counts it as done when it restarts.
    """
    loop = trainer.fit_loop
    _check(loop, "restarting")
    _check(loop, "epoch_loop")
    _check(loop.epoch_loop, "batch_progress")
    _check(loop.epoch_loop.batch_progress, "current")
    _check(loop.epoch_loop.batch_progress.current, "processed")
    return loop.epoch_loop.batch_progress.current.processed if loop.restarting else 0


# -- Logger versions (`Logger._version` of TensorBoard/CSV loggers) -----------------------------


def logger_version_unset(logger: Logger) -> bool:
    """Whether nobody (the user, SLURM) chose ``logger``'s version yet: Lightning will pick one."""
    _check(logger, "_version")
    return logger._version is None


def set_logger_version(logger: Logger, version: int) -> None:
    """Pin the version a TensorBoard/CSV logger would otherwise choose by listing directories."""
    _check(logger, "_version")
    logger._version = version


# -- Lightning's WandbLogger: the run it started and the `wandb.init` arguments it keeps --------


def wandb_init_kwargs(logger: WandbLogger) -> dict[str, Any]:
    """The dict Lightning passes to ``wandb.init`` at the first ``experiment`` access (mutable).

    Built from the constructor's arguments; changed afterwards only to drop ``anonymous`` and to
    retry offline after a failed ``wandb.init`` (no public way to do either).
    """
    _check(logger, "_wandb_init")
    return logger._wandb_init


def started_wandb_run(logger: WandbLogger) -> Any | None:
    """The run ``logger`` started, or ``None`` (``experiment`` would start one)."""
    _check(logger, "_experiment")
    return logger._experiment


def forget_wandb_run(logger: WandbLogger) -> None:
    """Drop the run (finished, or ``wandb.init`` failed): the next ``experiment`` starts anew."""
    _check(logger, "_experiment")
    logger._experiment = None
