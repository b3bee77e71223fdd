"""One ``version_N`` directory per run, even when several runs start at once in one log dir.

Lightning's TensorBoard and CSV loggers pick their version lazily as "the largest ``version_N``
on disk, plus one", and create the directory only when they first write. Two ``fit`` runs
started together in the same ``default_root_dir`` therefore both pick ``version_0``; the second
then stops with LightningCLI's "config.yaml exists ... delete it", advice that would delete the
config of the other, running run.

``claim_version`` makes the choice atomic: ``os.mkdir`` (without ``exist_ok``) either creates
``version_N`` for this run or fails because another run holds it, and then the next number is
tried. ``pin_logger_versions`` claims one number for the trainer's loggers before anything is
written, so ``trainer.log_dir``, the checkpoints and ``config.yaml`` all land in the claimed
directory.

Under DDP only rank zero claims (``trainer.global_rank == 0``, known once the Trainer exists).
The other ranks learn the number by a broadcast from rank zero in the first ``setup`` hook, once
the process group exists; this holds for every launcher (Lightning's own subprocess launcher,
``torchrun``, SLURM). Lightning already broadcasts rank zero's ``log_dir`` and checkpoint
directory, so the broadcast only keeps ``logger.version`` itself the same on every rank.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from lit_seqcls.runtime.lightning_internals import logger_version_unset, set_logger_version

VERSION_PREFIX = "version_"


def claim_version(root: str | Path, name: str = "lightning_logs") -> int:
    """Create the next free ``<root>/<name>/version_N`` directory and return ``N``.

    Numbering is Lightning's: one more than the largest ``version_N`` already there, 0 if none.
    Safe against other processes claiming at the same time, on one machine or over a shared
    (POSIX) file system: each ``N`` goes to exactly one caller.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> claim_version(root), claim_version(root)
        (0, 1)
        >>> sorted(p.name for p in (root / "lightning_logs").iterdir())
        ['version_0', 'version_1']
    """
    return _claim_in_all([Path(root) / name])


def pin_logger_versions(trainer: L.Trainer) -> int | None:
    """Give the trainer's TensorBoard/CSV loggers a freshly claimed version; return it.

    Call it right after the Trainer is built, before ``fit``/``validate``/``test``/``predict``.
    Loggers with a version of their own (``version=...``, or the SLURM job id Lightning's default
    logger takes inside a SLURM job), remote save dirs (``s3://...``) and other logger types are
    left as they are; ``None`` is returned when no logger was pinned. Loggers writing under
    different directories get one number that is free in all of them.

    Lightning has no public way to set a logger's version after construction: this sets the
    private ``_version`` attribute that the ``version`` property reads (fenced in
    ``lightning_internals``).

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> trainers = [L.Trainer(default_root_dir=root, logger=CSVLogger(root)) for _ in "ab"]
        >>> [pin_logger_versions(t) for t in trainers]  # both would be version_0 otherwise
        [0, 1]
        >>> [Path(t.log_dir).name for t in trainers]
        ['version_0', 'version_1']
    """
    loggers = [logger for logger in trainer.loggers if _pinnable(logger)]
    if not loggers:
        return None
    version = None
    if trainer.global_rank == 0:
        version = _claim_in_all(sorted({Path(logger.root_dir) for logger in loggers}))
        for logger in loggers:
            set_logger_version(logger, version)
    if trainer.world_size > 1:
        # First, so no other callback's setup reads a version before the other ranks have it.
        trainer.callbacks.insert(0, _BroadcastVersion(version, loggers))
    return version


def _pinnable(logger: Logger) -> bool:
    return (
        isinstance(logger, (TensorBoardLogger, CSVLogger))
        and logger_version_unset(logger)  # not chosen by the user or SLURM
        and "://" not in str(logger.root_dir)  # os.mkdir cannot claim on a remote store
    )


def _claim_in_all(roots: list[Path]) -> int:
    """The smallest ``N`` above every existing version whose directory this call created in all."""
    for root in roots:
        root.mkdir(parents=True, exist_ok=True)
    version = max(_next_version(root) for root in roots)
    while True:
        made: list[Path] = []
        try:
            for root in roots:
                path = root / f"{VERSION_PREFIX}{version}"
                os.mkdir(path)  # atomic: exactly one of several racing callers succeeds
                made.append(path)
            return version
        except FileExistsError:  # taken by another run in one of the roots: give back, try N+1
            for path in made:
                path.rmdir()
            version += 1


def _next_version(root: Path) -> int:
    """One more than the largest ``version_N`` directory in ``root``; 0 if there is none."""
    versions = [
        int(p.name[len(VERSION_PREFIX) :])
        for p in root.iterdir()
        if p.name.startswith(VERSION_PREFIX) and p.name[len(VERSION_PREFIX) :].isdigit()
        if p.is_dir()
    ]
    return max(versions, default=-1) + 1


class _BroadcastVersion(Callback):
    """Rank zero's claimed version, handed to the other ranks once the process group exists."""

    def __init__(self, version: int | None, loggers: list[Logger]) -> None:
        self.version = version  # None on every rank but zero
        self.loggers = loggers  # the ones pin_logger_versions chose, on this rank

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        version = trainer.strategy.broadcast(self.version, src=0)  # a collective: every rank
        for logger in self.loggers:
            set_logger_version(logger, version)
