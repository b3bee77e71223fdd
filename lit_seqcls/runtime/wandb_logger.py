"""A W&B logger that never hangs or crashes training, and keeps one run per job across resumes.

``WandbLogger`` goes online only when it finds credentials and can open a TCP connection to the
server within ``connect_timeout`` seconds; otherwise (or when ``wandb.init`` fails) it logs offline
and says, in one line, which ``wandb sync`` command uploads the run later. W&B itself would wait
``init_timeout`` (90 s by default) for an unreachable server, and prompt for a key on a terminal.

Only rank zero creates a run (Lightning's ``rank_zero_experiment``), so one job is one run at any
world size. ``WandbRunId`` stores the run id in every checkpoint; ``resumed_run_id`` reads it back
and the CLI builds the logger with that ``id`` (``resume="allow"``), so a resumed or requeued job
continues the same run.

A run that ends on an exception (an interrupt, a non-finite loss, a lost DDP rank) is finished
with the process's exit status (130 for Ctrl-C, 143 for SIGTERM, 1 for an error): without that,
W&B records exit status 0 for a run whose process was stopped (measured, wandb 0.31 offline).
"""

from __future__ import annotations

import netrc
import os
import socket
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.runtime.distributed import exit_code
from lit_seqcls.runtime.lightning_internals import (
    forget_wandb_run,
    started_wandb_run,
    wandb_init_kwargs,
)
from lit_seqcls.runtime.resume import LastCheckpoint

RUN_ID_KEY = "wandb_run_id"  # top-level checkpoint key written by `WandbRunId`
CONFIG_FILE = "lightning_config.yaml"  # W&B keeps its own `config.yaml` in the run's files
DEFAULT_BASE_URL = "https://api.wandb.ai"
Mode = Literal["auto", "online", "offline"]


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` that falls back to offline instead of hanging or failing.

    Everything W&B needs is decided here, when the logger is built, and handed to Lightning's
    constructor, which passes it on to ``wandb.init``: on rank zero, whether to go online (see
    ``mode``), ``dir`` as an absolute path, and ``init_timeout``. Only a ``wandb.init`` that fails
    anyway is retried offline at the first ``experiment`` access.

    Args:
        project: W&B project name.
        name: display name of the run (W&B picks one when ``None``).
        save_dir: directory under which W&B writes ``wandb/<run>/``.
        mode: ``auto`` goes online when credentials are found and the server answers within
            ``connect_timeout``, else offline; ``online`` tries online (still falling back to
            offline if ``wandb.init`` fails); ``offline`` never touches the network.
            A ``WANDB_MODE`` environment variable wins over ``auto``.
        entity: W&B team or user (your default entity when ``None``).
        group: group runs together (e.g. the seeds of one experiment).
        tags: tags shown in the W&B run table.
        log_model: log checkpoints as W&B artifacts: ``True`` at the end of training, ``all`` as
            they are written, ``False`` never.
        id: continue this run id (``resume="allow"``); ``lit-seqcls fit`` fills it in from the
            checkpoint it resumes (``checkpoint_run_id``).
        connect_timeout: seconds to wait for a TCP connection to the W&B server up front.
        init_timeout: seconds ``wandb.init`` may take before we give up and go offline.

    Example:
        >>> logger = WandbLogger(project="demo", mode="offline", save_dir="logs")
        >>> logger.save_dir
        'logs'
    """

    def __init__(
        self,
        project: str = "lit-seqcls",
        name: str | None = None,
        save_dir: str = "logs",
        mode: Mode = "auto",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        log_model: Literal["all"] | bool = False,
        id: str | None = None,
        connect_timeout: float = 3.0,
        init_timeout: float = 30.0,
    ) -> None:
        import wandb

        # Only rank zero starts a run (`rank_zero_experiment`): the others need no network check.
        reason = _offline_reason(mode, connect_timeout) if rank_zero_only.rank == 0 else None
        super().__init__(
            name=name,
            # W&B's service process resolves a relative `dir` against *its* working directory,
            # which is where the first run of this process started, not where this one does.
            save_dir=str(Path(save_dir).resolve()),
            project=project,
            id=id,
            log_model=log_model,
            entity=entity,
            group=group,
            tags=tags,
            **({"mode": "offline"} if reason else {}),
            settings=wandb.Settings(init_timeout=init_timeout),
        )
        self._given_save_dir = save_dir
        self._offline_because = reason
        self._full_config_logged = False
        # `anonymous` is deprecated in wandb and Lightning always passes it (None still warns).
        wandb_init_kwargs(self).pop("anonymous", None)

    @property
    def save_dir(self) -> str:
        """The ``save_dir`` as given (W&B itself gets the absolute path)."""
        return self._given_save_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        started = started_wandb_run(self)
        if started is not None:
            return started
        Path(self.save_dir).mkdir(parents=True, exist_ok=True)  # else W&B falls back to /tmp
        reason = self._offline_because
        try:
            run = super().experiment
        except Exception as err:  # wandb raises its own error types for every network failure
            if reason is not None:
                raise
            reason = f"wandb.init failed: {type(err).__name__}: {err}"
            # No public way to retry: the arguments Lightning keeps for `wandb.init`, offline.
            forget_wandb_run(self)
            wandb_init_kwargs(self)["mode"] = "offline"
            run = super().experiment
        if run.offline:
            run_dir = Path(run.dir).parent.resolve()
            rank_zero_info(
                f"W&B is offline ({reason or 'offline mode'}): the run is saved in {run_dir}; "
                f"upload it later with: wandb sync {run_dir}"
            )
        return run

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        # `log_model` uploads the checkpoints that were chosen (the best ones), not last.ckpt
        # after every epoch, which would also take the artifact's `best` alias.
        if not isinstance(checkpoint_callback, LastCheckpoint):
            super().after_save_checkpoint(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        run = started_wandb_run(self)
        if status == "failed" and run is not None:
            # Lightning calls this inside its `except` block: the exception is the current one.
            run.finish(exit_code=exit_code(sys.exc_info()[1]))
            forget_wandb_run(self)  # finished: a later `fit` in this process starts anew
            return
        super().finalize(status)

    def log_hyperparams(self, params: Any) -> None:
        # The CLI sends the whole nested config (`log_full_config`); Lightning's own flat dump
        # of the model's arguments would repeat those values as root keys.
        if not self._full_config_logged:
            super().log_hyperparams(params)

    def log_full_config(self, config: dict[str, Any], config_yaml: str) -> None:
        """Put the nested CLI ``config`` in ``wandb.config`` and the YAML among the run's files."""
        run = self.experiment
        run.config.update(config, allow_val_change=True)
        path = Path(run.dir) / CONFIG_FILE
        path.write_text(config_yaml)
        run.save(str(path), base_path=run.dir, policy="now")
        self._full_config_logged = True


def _offline_reason(mode: Mode, connect_timeout: float) -> str | None:
    """Why a run cannot go online, or ``None`` when it should try."""
    if mode == "offline" or os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
        return "offline mode"
    if mode == "online" or os.environ.get("WANDB_MODE") in ("online", "run"):
        return None
    base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
    if not _credentials_found(base_url):
        return "no W&B credentials: run `wandb login` or set WANDB_API_KEY"
    if not _reachable(base_url, connect_timeout):
        return f"cannot reach {base_url} within {connect_timeout:g} s"
    return None


def _credentials_found(base_url: str) -> bool:
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(base_url).hostname or ""
    try:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _reachable(base_url: str, timeout: float) -> bool:
    """Whether a TCP connection to the server (or the HTTPS proxy in between) opens in time."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


class WandbRunId(Callback):
    """Writes the W&B run id into every checkpoint (``wandb_run_id``) for ``resumed_run_id``.

    A no-op without a ``WandbLogger``: the CLI adds it to every trainer.
    """

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        logger = _wandb_logger(trainer)
        if logger is not None and trainer.is_global_zero:
            checkpoint[RUN_ID_KEY] = logger.experiment.id


def resumed_run_id(ckpt_path: str | Path | None, root_dir: str | Path) -> str | None:
    """The W&B run id that ``fit(ckpt_path=...)`` continues, read from the checkpoint, or ``None``.

    With ``ckpt_path=None`` on SLURM (or ``"hpc"``) that is the checkpoint Lightning resumes a
    requeued job from: the highest ``hpc_ckpt_N.ckpt`` in ``root_dir`` (the trainer's
    ``default_root_dir``). Words like ``"last"`` are not resolved here; ``"auto"`` is resolved
    before (``resolve_ckpt_path``).

    Example:
        >>> import tempfile, torch
        >>> root = Path(tempfile.mkdtemp())
        >>> torch.save({RUN_ID_KEY: "abc123"}, root / "hpc_ckpt_2.ckpt")
        >>> resumed_run_id("hpc", root), resumed_run_id(root / "hpc_ckpt_2.ckpt", root)
        ('abc123', 'abc123')
        >>> resumed_run_id(None, root) is None  # not on SLURM: Lightning starts afresh
        True
    """
    if ckpt_path == "hpc" or (ckpt_path is None and SLURMEnvironment.detect()):
        ckpt_path = _requeue_checkpoint(Path(root_dir))
    if ckpt_path is None or not Path(ckpt_path).is_file():
        return None
    return load_checkpoint(ckpt_path, mmap=True).get(RUN_ID_KEY) or None


def _requeue_checkpoint(root_dir: Path) -> Path | None:
    """``hpc_ckpt_N.ckpt`` with the highest N in ``root_dir`` (where Lightning saves on SIGUSR1)."""
    numbers = [
        int(number)
        for path in root_dir.glob("hpc_ckpt_*.ckpt")
        if (number := path.name[len("hpc_ckpt_") : -len(".ckpt")]).isdigit()
    ]
    return root_dir / f"hpc_ckpt_{max(numbers)}.ckpt" if numbers else None


class WandbSaveConfigCallback(SaveConfigCallback):
    """LightningCLI's config saver that also sends the full nested config to W&B."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = _wandb_logger(trainer)
        if logger is None:
            return
        import yaml

        # Keep the `null`s: they are settings too (`skip_unset` needs jsonargparse>=4.49).
        config_yaml = self.parser.dump(self.config, skip_unset=False)
        logger.log_full_config(yaml.safe_load(config_yaml), config_yaml)


def _wandb_logger(trainer: L.Trainer) -> WandbLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
