"""A W&B logger that never hangs or crashes training, and keeps one run per job across resumes.

``WandbLogger`` goes online only when it finds credentials and can open a TCP connection to the
server within ``connect_timeout`` seconds; otherwise (or when ``wandb.init`` fails) it logs offline
and says, in one line, which ``wandb sync`` command uploads the run later. W&B itself would wait
``init_timeout`` (90 s by default) for an unreachable server, and prompt for a key on a terminal.

Only rank zero creates a run (Lightning's ``rank_zero_experiment``), so one job is one run at any
world size. ``WandbRunId`` stores the run id in every checkpoint; ``prepare_resume`` reads it back
before ``fit`` so a resumed or requeued job continues the same run (``resume="allow"``).

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
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.runtime.distributed import exit_code
from lit_seqcls.runtime.lightning_internals import (
    forget_wandb_run,
    hpc_resume_path,
    set_wandb_run_id,
    started_wandb_run,
    wandb_init_kwargs,
)

RUN_ID_KEY = "wandb_run_id"  # top-level checkpoint key written by `WandbRunId`
CONFIG_FILE = "lightning_config.yaml"  # W&B keeps its own `config.yaml` in the run's files
DEFAULT_BASE_URL = "https://api.wandb.ai"
Mode = Literal["auto", "online", "offline"]


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` that falls back to offline instead of hanging or failing.

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
        id: continue this run id (``prepare_resume`` fills it in from a checkpoint).
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
        super().__init__(
            name=name,
            save_dir=save_dir,
            project=project,
            id=id,
            log_model=log_model,
            entity=entity,
            group=group,
            tags=tags,
        )
        self._mode: Mode = mode
        self._connect_timeout = connect_timeout
        self._init_timeout = init_timeout
        self._full_config_logged = False
        # `anonymous` is deprecated in wandb and Lightning always passes it (None still warns).
        wandb_init_kwargs(self).pop("anonymous", None)
        if mode == "offline":
            wandb_init_kwargs(self)["mode"] = "offline"

    def resume(self, run_id: str) -> None:
        """Continue run ``run_id`` instead of starting a new one (call before the run exists)."""
        run = started_wandb_run(self)
        if run is not None and run.id != run_id:
            rank_zero_warn(f"W&B run {run.id} already started; not resuming {run_id}")
            return
        set_wandb_run_id(self, run_id)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        started = started_wandb_run(self)
        if started is not None:
            return started
        import wandb

        init = wandb_init_kwargs(self)
        reason = self._offline_reason()
        if reason is not None:
            init["mode"] = "offline"
        init["settings"] = wandb.Settings(init_timeout=self._init_timeout)
        Path(self.save_dir).mkdir(parents=True, exist_ok=True)  # else W&B falls back to /tmp
        # W&B's service process resolves a relative `dir` against *its* working directory,
        # which is where the first run of this process started, not where this one does.
        init["dir"] = str(Path(self.save_dir).resolve())
        try:
            run = super().experiment
        except Exception as err:  # wandb raises its own error types for every network failure
            if init.get("mode") == "offline":
                raise
            reason = f"wandb.init failed: {type(err).__name__}: {err}"
            forget_wandb_run(self)
            init["mode"] = "offline"
            run = super().experiment
        if run.offline:
            run_dir = Path(run.dir).parent.resolve()
            rank_zero_info(
                f"W&B is offline ({reason or 'offline mode'}): the run is saved in {run_dir}; "
                f"upload it later with: wandb sync {run_dir}"
            )
        return run

    def _offline_reason(self) -> str | None:
        """Why this run cannot go online, or ``None`` when it should try."""
        if self._mode == "offline" or os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
            return "offline mode"
        if self._mode == "online" or os.environ.get("WANDB_MODE") in ("online", "run"):
            return None
        base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)
        if not _credentials_found(base_url):
            return "no W&B credentials: run `wandb login` or set WANDB_API_KEY"
        if not _reachable(base_url, self._connect_timeout):
            return f"cannot reach {base_url} within {self._connect_timeout:g} s"
        return None

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
    """Writes the W&B run id into every checkpoint (``wandb_run_id``) for ``prepare_resume``."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        logger = _wandb_logger(trainer)
        if logger is not None and trainer.is_global_zero:
            checkpoint[RUN_ID_KEY] = logger.experiment.id


def prepare_resume(trainer: L.Trainer, ckpt_path: str | Path | None) -> str | None:
    """Before ``trainer.fit(..., ckpt_path)``: record run ids in checkpoints and resume the run.

    Adds ``WandbRunId`` when the trainer logs to W&B and, when ``ckpt_path`` (or the checkpoint
    that a requeued SLURM job resumes from) holds a run id, makes the logger continue that run.
    Returns the run id resumed, if any. ``ckpt_path="last"``/``"best"`` are not resolved here.
    """
    logger = _wandb_logger(trainer)
    if logger is None:
        return None
    if not any(isinstance(cb, WandbRunId) for cb in trainer.callbacks):
        trainer.callbacks.append(WandbRunId())
    if ckpt_path is None:  # the checkpoint a requeued SLURM job resumes from
        ckpt_path = hpc_resume_path(trainer)
    if ckpt_path is None or not Path(ckpt_path).is_file():
        return None
    run_id = load_checkpoint(ckpt_path, mmap=True).get(RUN_ID_KEY)
    if run_id:
        logger.resume(run_id)
    return run_id


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
