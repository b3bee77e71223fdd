"""Learning-rate schedules a config picks by name (``--model.lr_schedule``), stepped every step.

``SequenceClassifier(lr_schedule="warmup_cosine", warmup_steps=N)`` builds one in
``configure_optimizers`` from the run's number of optimizer steps
(``trainer.estimated_stepping_batches``): no code and no step count to work out by hand. The
schedule is a ``torch.optim.lr_scheduler.LambdaLR`` whose factor is a small object of plain
numbers (``WarmupCosine``), so the scheduler's ``state_dict`` is plain data: a checkpoint holds
where the schedule stands, and a resumed run continues the same curve.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lit_seqcls.validation import ConfigValueError, require_non_negative_int

LRSchedule = Literal["warmup_cosine"]
LR_SCHEDULES: tuple[str, ...] = get_args(LRSchedule)


class WarmupCosine:
    """The factor of the base learning rate after ``step`` optimizer steps (``LambdaLR``'s
    ``lr_lambda``): a linear warm-up over the first ``warmup_steps`` steps, then half a cosine
    from 1 down to 0 at ``total_steps``.

    Step ``s < warmup_steps`` trains at ``(s + 1) / warmup_steps`` (never at 0); from there the
    factor is ``(1 + cos(pi * p)) / 2`` with ``p = (s - warmup_steps) / (total_steps -
    warmup_steps)``. Its attributes are plain numbers, which ``LambdaLR.state_dict`` saves.

    Example:
        >>> f = WarmupCosine(warmup_steps=2, total_steps=6)
        >>> [round(f(s), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        decay = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def check_schedule(lr_schedule: str | None, warmup_steps: int, has_scheduler: bool) -> None:
    """Refuse an unknown schedule, a negative warm-up, or a schedule beside an ``lr_scheduler``."""
    require_non_negative_int("warmup_steps", warmup_steps)
    if lr_schedule is None:
        return
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigValueError(
            f"lr_schedule must be one of {', '.join(LR_SCHEDULES)} (or unset); got {lr_schedule!r}"
        )
    if has_scheduler:
        raise ConfigValueError(
            f"both lr_schedule ({lr_schedule}) and lr_scheduler are set: choose one (lr_schedule "
            "is stepped every optimizer step, lr_scheduler every epoch)"
        )


def build_schedule(
    lr_schedule: str, optimizer: Optimizer, warmup_steps: int, total_steps: float
) -> LambdaLR:
    """The per-step scheduler ``lr_schedule`` names, over ``total_steps`` optimizer steps."""
    check_schedule(lr_schedule, warmup_steps, has_scheduler=False)
    if not math.isfinite(total_steps):
        raise ConfigValueError(
            f"lr_schedule {lr_schedule} needs a finite number of steps: set "
            "--trainer.max_epochs or --trainer.max_steps"
        )
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, int(total_steps)))
