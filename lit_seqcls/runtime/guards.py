"""Stop (or skip the step) when the loss or the gradients are NaN or inf.

Without a guard a NaN loss does not stop training, even with gradient clipping (measured): the
next update makes every weight NaN, and the next checkpoint replaces a good one with garbage.
``NonFiniteGuard`` looks at the loss and the gradients after ``backward`` and before the
optimizer step, so a bad update is never applied; the CLI adds it (``--nonfinite.*``).
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lit_seqcls.runtime.distributed import finish_together, gather_flags
from lit_seqcls.runtime.resume import newest_saved

Action = Literal["stop", "skip"]


class NonFiniteLossError(RuntimeError):
    """Training stopped before applying an update computed from a NaN/inf loss or gradient."""


class NonFiniteGuard(L.Callback):
    """Stops training, or skips the update, when the loss or a gradient is NaN or inf.

    The check runs after ``backward`` and before ``optimizer.step()``, so the weights, the
    optimizer state and every checkpoint stay finite. Under DDP the ranks share their verdict
    (one small ``all_gather`` per step): all stop, or all skip, at the same step. With a
    ``GradScaler`` (``16-mixed``) only the loss is checked, as the scaler already skips steps
    whose scaled gradients overflow.

    Args:
        action: ``stop`` raises ``NonFiniteLossError`` (naming the step, the batch and its rows);
            ``skip`` drops the update (the gradients are cleared, so the optimizer changes
            nothing) and warns.
        max_skips: with ``skip``, stop anyway after this many bad steps in a row: training
            has diverged and skipping will not bring it back.

    Example:
        >>> guard = NonFiniteGuard(action="skip")
        >>> guard._problem(torch.tensor(float("nan")), [torch.ones(2)])
        'the loss is nan'
        >>> guard._problem(torch.tensor(0.5), [torch.tensor([1.0, float("inf")])])
        'the loss is finite but a gradient holds NaN/inf'
    """

    def __init__(self, action: Action = "stop", max_skips: int = 10) -> None:
        if action not in ("stop", "skip"):
            raise ValueError(f"action must be 'stop' or 'skip', not {action!r}")
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0  # bad steps in a row
        self._loss: Tensor | None = None  # the worst loss since the last optimizer step
        self._batch_idx = -1
        self._rows: list[int] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_idx = batch_idx
        index = getattr(batch, "index", None)  # dataset positions of the batch's texts
        self._rows = index.tolist() if isinstance(index, Tensor) else []

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        loss = loss.detach().float()
        # With gradient accumulation, keep a non-finite loss of any micro-batch.
        if self._loss is None or not torch.isfinite(loss).all():
            self._loss = loss

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [] if _has_scaler(trainer) else _grads(optimizer)
        loss = self._loss if self._loss is not None else torch.zeros(())
        self._loss = None
        problem = self._problem(loss, grads)
        verdicts = gather_flags(trainer, [problem is not None])  # every rank's, by rank
        bad_ranks = [rank for rank, (bad,) in enumerate(verdicts) if bad]
        if not bad_ranks:
            self.skipped = 0
            return
        message = self._message(trainer, problem, bad_ranks)
        if self.action == "skip" and self.skipped < self.max_skips:
            self.skipped += 1
            optimizer.zero_grad(set_to_none=True)  # no gradient: the optimizer skips every weight
            rank_zero_warn(f"{message} Skipped this update ({self.skipped} in a row).")
            return
        raise NonFiniteLossError(message + self._advice(trainer))

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, NonFiniteLossError):
            finish_together(trainer)  # every rank raised it at the same step

    @staticmethod
    def _problem(loss: Tensor, grads: list[Tensor]) -> str | None:
        if not torch.isfinite(loss).all():
            return f"the loss is {loss.item()}"
        if grads and not all_finite(grads):
            return "the loss is finite but a gradient holds NaN/inf"
        return None

    def _message(self, trainer: L.Trainer, problem: str | None, bad_ranks: list[int]) -> str:
        epoch, batch = trainer.current_epoch, self._batch_idx
        where = f"step {trainer.global_step} (epoch {epoch}, batch {batch}"
        if problem is not None and self._rows:  # this rank's batch is one of the bad ones
            shown = ", ".join(map(str, self._rows[:8])) + (", ..." if len(self._rows) > 8 else "")
            where += f", dataset rows {shown}"
        where += ")"
        if trainer.world_size > 1:
            where += f" on rank {', '.join(map(str, bad_ranks))} of {trainer.world_size}"
        what = problem if problem is not None else "a NaN/inf loss or gradient"
        return f"Non-finite training step at {where}: {what}."

    def _advice(self, trainer: L.Trainer) -> str:
        last = newest_saved(trainer)
        kept = f" (newest: {last})" if last else ""
        skipped = f" after skipping {self.skipped} bad steps in a row" if self.skipped else ""
        return (
            f" Training stopped{skipped} before applying this update, so the weights and the "
            f"checkpoints written so far are finite{kept}. What to do: lower the learning "
            "rate, keep gradient clipping on (--trainer.gradient_clip_val), look at those rows "
            "of the data, then resume with --ckpt_path auto; or skip such steps with "
            "--nonfinite.action skip."
        )


def _has_scaler(trainer: L.Trainer) -> bool:
    return getattr(trainer.precision_plugin, "scaler", None) is not None


def _grads(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    return [
        p.grad.detach() for group in optimizer.param_groups for p in group["params"]
        if p.grad is not None
    ]  # fmt: skip


def all_finite(tensors: list[Tensor]) -> bool:
    """Whether every element of ``tensors`` is finite, at the cost of one sum per tensor.

    A NaN or inf anywhere makes a tensor's sum NaN or inf, so a finite sum proves the tensor
    finite; only a non-finite sum (a real NaN/inf, or finite values whose sum overflows) pays
    for the exact element-wise check. ``isfinite(g).all()`` on every gradient allocates a mask
    the size of the model and cost ~40 ms a step for a 30,000 × 300 embedding on one CPU thread
    (a third of a SWEM step); the sum costs ~1.5 ms.

    Example:
        >>> all_finite([torch.ones(3), torch.tensor([1.0, float("inf")])])
        False
        >>> all_finite([torch.full((4,), 3e38)])  # the sum overflows, every value is finite
        True
    """
    sums = torch.stack([t.sum(dtype=torch.float32) for t in tensors])
    if bool(torch.isfinite(sums).all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)
