"""The run-safety layer the CLI wires into every trainer; the model never imports it.

Checkpoints written atomically and refused when unsafe (``AtomicCheckpointIO``, ``atomic``),
exact resume (``RNGStateCheckpoint``, ``--ckpt_path auto``), one log folder per run (``rundir``),
a clean stop on Ctrl-C/SIGTERM and a bounded DDP timeout (``shutdown``), the NaN/inf guard
(``guards``), what the DDP ranks do together (``distributed``), secrets kept out of files
(``secrets``), the W&B logger (``wandb_logger``), batch telemetry, the prediction writer and
the rules for where outputs may be written (``outputs``). Always-on callbacks live here;
optional analysis callbacks live in the top-level ``callbacks`` package.
"""

from lit_seqcls.runtime.atomic import atomic_directory, atomic_write
from lit_seqcls.runtime.checkpoint_io import AtomicCheckpointIO
from lit_seqcls.runtime.distributed import check_equal_batch_counts, gather_objects
from lit_seqcls.runtime.guards import NonFiniteGuard, NonFiniteLossError
from lit_seqcls.runtime.outputs import OutputFileError, check_output_dir, spreadsheet_safe
from lit_seqcls.runtime.prediction import PredictionWriter
from lit_seqcls.runtime.resume import (
    AUTO,
    LAST,
    BestCheckpoint,
    LastCheckpoint,
    RNGStateCheckpoint,
    clean_run_root,
    make_checkpoint_callback,
    newest_checkpoint,
    newest_saved,
    resolve_ckpt_path,
    save_last_every_epoch,
)
from lit_seqcls.runtime.rundir import pin_logger_versions
from lit_seqcls.runtime.secrets import SecretInConfigError, find_secrets, secrets_message
from lit_seqcls.runtime.shutdown import (
    DEFAULT_DDP_TIMEOUT,
    GracefulShutdown,
    TrainingInterrupted,
    bound_ddp_timeout,
)
from lit_seqcls.runtime.telemetry import BatchTelemetry
from lit_seqcls.runtime.wandb_logger import (
    WandbLogger,
    WandbRunId,
    WandbSaveConfigCallback,
    resumed_run_id,
)

__all__ = [
    "AUTO",
    "DEFAULT_DDP_TIMEOUT",
    "LAST",
    "AtomicCheckpointIO",
    "BatchTelemetry",
    "BestCheckpoint",
    "GracefulShutdown",
    "LastCheckpoint",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "OutputFileError",
    "PredictionWriter",
    "RNGStateCheckpoint",
    "SecretInConfigError",
    "TrainingInterrupted",
    "WandbLogger",
    "WandbRunId",
    "WandbSaveConfigCallback",
    "atomic_directory",
    "atomic_write",
    "bound_ddp_timeout",
    "check_equal_batch_counts",
    "check_output_dir",
    "clean_run_root",
    "find_secrets",
    "gather_objects",
    "make_checkpoint_callback",
    "newest_checkpoint",
    "newest_saved",
    "pin_logger_versions",
    "resolve_ckpt_path",
    "resumed_run_id",
    "save_last_every_epoch",
    "secrets_message",
    "spreadsheet_safe",
]
