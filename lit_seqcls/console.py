"""A quiet console: the one place that silences messages no user of the CLI can act on.

A run shows its progress bars and one line per phase; a warning reaches the console only when
the user can do something about it. Everything silenced is listed here with the reason, matched
by the start of its text (never a whole category or module), and only while the CLI runs:
``quiet_console`` restores the warning filters and loggers when it exits.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# (start of the message, category, why it is noise for a user of `lit-seqcls`)
NOISE = (
    (
        r"Starting from v1\.9\.0, `tensorboardX` has been removed",
        UserWarning,
        "Lightning choosing its default logger: ours is the CSVLogger it falls back to, and the "
        "log folder is already versioned; installing TensorBoard is not needed",
    ),
    (
        r"The dirpath has changed from ",
        UserWarning,
        "every run writes to its own version_N folder (rundir.py), so a checkpoint from any other "
        "run (`test --ckpt_path`, a resume) has another dirpath; the best-k bookkeeping restarts "
        "in the new folder by design",
    ),
    (
        r"Checkpoint directory .* exists and is not empty",
        UserWarning,
        "the CLI gives every run a fresh version_N folder; in a folder named with "
        "--checkpoint.dirpath, Lightning adds -v1 to a name already there and replaces nothing",
    ),
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        "Lightning 2.6 builds torch's deprecated LeafSpec in its loops; torch 2.13 warns in "
        "every run",
    ),
    (
        r"torch\.distributed\.nn\.functional\.all_gather is deprecated",
        FutureWarning,
        "Lightning's all_gather (every DDP run) uses the torch function that torch 2.13 deprecates",
    ),
)
# Lightning's advertisements, logged at INFO next to lines that matter ("Restoring states from
# the checkpoint ..."), so a logging level cannot separate them: a filter on the text does.
TIP_PREFIX = "💡 Tip:"
TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


@contextmanager
def quiet_console() -> Iterator[None]:
    """Silence ``NOISE`` and Lightning's tips inside the block; restore everything after it.

    Example:
        >>> with quiet_console(), warnings.catch_warnings(record=True) as seen:
        ...     warnings.warn("The dirpath has changed from 'a' to 'b', therefore ...")
        ...     warnings.warn("something a user should read")
        >>> [str(w.message) for w in seen]
        ['something a user should read']
    """
    tips = _DropTips()
    loggers = [logging.getLogger(name) for name in TIP_LOGGERS]
    with warnings.catch_warnings():
        for message, category, _why in NOISE:
            warnings.filterwarnings("ignore", message, category)
        for logger in loggers:
            logger.addFilter(tips)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(tips)
