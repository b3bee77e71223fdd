"""The bundle as a W&B artifact, on the training run, when that run logs models (``log_model``).

The training run's ``config.yaml`` says whether a ``WandbLogger`` with ``log_model`` was active;
the checkpoint holds its run id (``wandb_run_id``), so the bundle and its card join that run
(``resume="allow"``; offline without credentials, like training: ``runtime.WandbLogger``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lit_seqcls.serving.bundle import CARD_FILE, read_pipeline

_WANDB_LOGGERS = ("lit_seqcls.runtime.WandbLogger", "lit_seqcls.runtime.wandb_logger.WandbLogger")
_LOGGER_ARGS = ("project", "name", "save_dir", "mode", "entity", "group", "tags")


def wandb_logger_args(config: dict[str, Any]) -> dict[str, Any] | None:
    """The ``init_args`` of the run's ``WandbLogger`` if it had ``log_model`` set, else ``None``.

    Example:
        >>> logger = {"class_path": "lit_seqcls.runtime.WandbLogger",
        ...           "init_args": {"project": "p", "log_model": True}}
        >>> wandb_logger_args({"trainer": {"logger": [logger]}})
        {'project': 'p'}
        >>> wandb_logger_args({"trainer": {"logger": False}}) is None
        True
    """
    loggers = (config.get("trainer") or {}).get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not isinstance(logger, dict) or logger.get("class_path") not in _WANDB_LOGGERS:
            continue
        args = logger.get("init_args") or {}
        if args.get("log_model"):
            return {k: v for k, v in args.items() if k in _LOGGER_ARGS and v is not None}
    return None


def log_bundle(folder: Path, run: Any, name: str | None = None) -> Any:
    """Log the bundle folder as a ``model`` artifact on the W&B ``run``; return the artifact."""
    import wandb

    pipeline = read_pipeline(folder)
    artifact = wandb.Artifact(
        name or f"bundle-{run.id}",
        type="model",
        description=(folder / CARD_FILE).read_text(encoding="utf-8")[:4000],
        metadata={k: pipeline[k] for k in ("class_names", "task", "max_length", "model")},
    )
    artifact.add_dir(str(folder))
    run.log_artifact(artifact, aliases=["latest", "bundle"])
    return artifact


def log_bundle_to_training_run(
    folder: Path, config: dict[str, Any], run_id: str | None
) -> Path | None:
    """``log_bundle`` on the training run when its W&B logger had ``log_model``; the run's
    local folder, or ``None`` when the run did not log models."""
    args = wandb_logger_args(config)
    if args is None:
        return None
    from lit_seqcls.runtime.wandb_logger import WandbLogger

    logger = WandbLogger(**args, id=run_id, log_model=True)
    run = logger.experiment
    try:
        log_bundle(folder, run)
    finally:
        run.finish()
    return Path(run.dir).parent
