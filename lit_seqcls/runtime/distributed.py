"""Decisions every DDP rank must take together, and ending a run on every rank at once.

A rank that stops training alone leaves the others waiting in their next collective (until
the process-group timeout) or, if it skips a step alone, with different weights. So the
non-finite guard and the interrupt handler share their flags with ``gather_flags`` (a
collective: every rank calls it at the same point) and act on the result on every rank.
When they stop, ``finish_together`` lets rank zero close its logs before any rank exits:
Lightning's launcher kills the whole job a few seconds after a child process exits.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn

STOP_BARRIER = "lit_seqcls.stop"


def gather_flags(trainer: L.Trainer, flags: list[bool]) -> list[list[bool]]:
    """Every rank's ``flags``, indexed by rank (one ``all_gather`` under DDP, free otherwise).

    Example:
        >>> gather_flags(L.Trainer(logger=False, enable_progress_bar=False), [True, False])
        [[True, False]]
    """
    if not (dist.is_available() and dist.is_initialized()) or trainer.world_size == 1:
        return [list(flags)]
    local = torch.tensor(flags, dtype=torch.uint8, device=trainer.strategy.root_device)  # (F,)
    gathered = [torch.empty_like(local) for _ in range(trainer.world_size)]
    dist.all_gather(gathered, local)  # world × (F,)
    return [[bool(x) for x in part.tolist()] for part in gathered]


def finish_together(trainer: L.Trainer) -> None:
    """Close every logger (rank zero's W&B run) before any rank exits, then wait for each other.

    For exceptions raised on every rank at the same step, from ``on_exception``. Lightning
    calls ``finalize("failed")`` again afterwards, which finds nothing left to do.
    """
    for logger in trainer.loggers:
        logger.finalize("failed")
    if trainer.world_size > 1:
        try:
            trainer.strategy.barrier(STOP_BARRIER)
        except Exception as err:  # a rank already gone: nothing to wait for
            rank_zero_warn(f"Ranks did not meet before exiting: {err}")


def exit_code(exception: BaseException | None) -> int:
    """The process exit status an exception leads to (for logs that record one, like W&B).

    Example:
        >>> exit_code(SystemExit(143)), exit_code(KeyboardInterrupt()), exit_code(ValueError())
        (143, 130, 1)
    """
    if isinstance(exception, SystemExit):
        return exception.code if isinstance(exception.code, int) else int(bool(exception.code))
    if isinstance(exception, KeyboardInterrupt):
        return 130  # 128 + SIGINT, what a shell reports for Ctrl-C
    return 0 if exception is None else 1
