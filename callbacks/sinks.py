"""Where the analysis callbacks send things: W&B (rank zero), local files, and cross-rank gathers.

Every function that is a collective under DDP says so; callbacks call those on every rank and
only then return early on the ranks that write nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn

from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.runtime import gather_objects as gather_objects  # the callbacks' cross-rank gather
from lit_seqcls.runtime import spreadsheet_safe

# Stage prefix → DataModule split name, which is also how titles name the stage.
STAGE_SPLITS = {"val": "validation", "test": "test"}


def local_dir(trainer: L.Trainer, name: str) -> Path | None:
    """``<log dir>/media/<name>/`` on rank zero, ``None`` elsewhere. A collective (broadcast)."""
    log_dir = trainer.log_dir  # broadcasts from rank zero: every rank must call it
    if not trainer.is_global_zero:
        return None
    path = Path(log_dir or trainer.default_root_dir) / "media" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def wandb_run(trainer: L.Trainer) -> Any | None:
    """The W&B run of the first ``WandbLogger``, on rank zero only; ``None`` otherwise."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return None


def log_to_wandb(trainer: L.Trainer, data: dict[str, Any]) -> None:
    """Log ``data`` on the same x-axis Lightning uses (``trainer/global_step``); no-op w/o W&B."""
    run = wandb_run(trainer)
    if run is not None:
        run.log({**data, "trainer/global_step": trainer.global_step})


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV file; text cells (class names, texts) are made ``spreadsheet_safe``."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)


def file_stem(stage: str, epoch: int) -> str:
    """``val_epoch003``: one file per stage and epoch, so earlier epochs are kept."""
    return f"{stage}_epoch{epoch:03d}"


def evaluated_epoch(trainer: L.Trainer) -> int:
    """The epoch whose weights are evaluated (for titles and file names; rank zero only).

    While fitting, the current epoch; for ``validate``/``test`` from a checkpoint, the epoch it
    was saved in (Lightning does not restore the epoch counter there); after an in-process
    ``fit``, its last epoch.
    """
    if trainer.state.fn == TrainerFn.FITTING:
        return trainer.current_epoch
    ckpt = trainer.ckpt_path
    if ckpt and Path(ckpt).is_file():
        # The package's one reader (checksums, plain data only); mmap: weights are not loaded.
        checkpoint = load_checkpoint(ckpt, mmap=True)
        return int(checkpoint.get("epoch", 0))
    return max(trainer.current_epoch - 1, 0)


def class_names(trainer: L.Trainer, pl_module: L.LightningModule) -> list[str]:
    """Class names from the DataModule, else the model's (linked from the data by the CLI)."""
    datamodule = getattr(trainer, "datamodule", None)
    names = getattr(datamodule, "class_names", None) or getattr(pl_module, "class_names", None)
    if not names:
        raise ValueError(
            "the analysis callbacks need class names: give the Trainer a DataModule with "
            "`class_names` or a model with `class_names`."
        )
    return list(names)


def texts(trainer: L.Trainer, stage: str) -> list[str] | None:
    """The raw texts of ``stage``'s split when the DataModule offers ``texts(split)``."""
    datamodule = getattr(trainer, "datamodule", None)
    return datamodule.texts(STAGE_SPLITS[stage]) if hasattr(datamodule, "texts") else None
