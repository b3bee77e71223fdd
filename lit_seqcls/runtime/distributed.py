"""What the DDP ranks must do together: share objects and verdicts, agree, and stop at once.

A rank that stops training alone leaves the others waiting in their next collective (until
the process-group timeout) or, if it skips a step alone, with different weights. So the
non-finite guard and the interrupt handler share their flags with ``gather_flags`` (a
collective: every rank calls it at the same point) and act on the result on every rank.
When they stop, ``finish_together`` lets rank zero close its logs before any rank exits:
Lightning's launcher kills the whole job a few seconds after a child process exits.

``gather_objects`` is the one "gather if distributed" of the package (the prediction writer,
the RNG states, the batch-count check and the analysis callbacks use it); ``gather_flags`` is
its per-step form, one small tensor collective instead of two pickling ones.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn

STOP_BARRIER = "lit_seqcls.stop"


def is_distributed(trainer: L.Trainer | None = None) -> bool:
    """Whether a process group with more than one rank is running (``trainer``'s, if given)."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return (trainer.world_size if trainer is not None else dist.get_world_size()) > 1


def gather_objects(trainer: L.Trainer | None, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without DDP.

    A collective under DDP: every rank calls it at the same point.

    Example:
        >>> gather_objects(None, {"rows": 3})
        [{'rows': 3}]
    """
    if not is_distributed(trainer):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_flags(trainer: L.Trainer, flags: list[bool]) -> list[list[bool]]:
    """Every rank's ``flags``, indexed by rank (one ``all_gather`` under DDP, free otherwise).

    Example:
        >>> gather_flags(L.Trainer(logger=False, enable_progress_bar=False), [True, False])
        [[True, False]]
    """
    if not is_distributed(trainer):
        return [list(flags)]
    local = torch.tensor(flags, dtype=torch.uint8, device=trainer.strategy.root_device)  # (F,)
    gathered = [torch.empty_like(local) for _ in range(trainer.world_size)]
    dist.all_gather(gathered, local)  # world × (F,)
    return [[bool(x) for x in part.tolist()] for part in gathered]


def check_equal_batch_counts(trainer: L.Trainer) -> None:
    """Fail on every rank with a clear message if the ranks would run different step counts.

    A rank that runs out of batches first leaves the others waiting in a gradient all-reduce
    until the process-group timeout: one cheap collective at the start of fit (``BatchTelemetry``
    calls it) turns that hang into an error.

    Example:
        >>> check_equal_batch_counts(L.Trainer(logger=False))  # one rank cannot disagree
    """
    counts = gather_objects(trainer, trainer.num_training_batches)  # a collective: every rank
    if len(set(counts)) > 1:
        per_rank = ", ".join(f"rank {r}: {c:g}" for r, c in enumerate(counts))
        raise RuntimeError(
            f"The ranks have different numbers of training batches ({per_rank}), so DDP would "
            "hang at the end of the epoch. Use the package's DataModules (their batch sampler "
            "evens the counts out), or make your train_dataloader give every rank the same "
            "number of batches."
        )


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
