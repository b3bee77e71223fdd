"""``lit-seqcls fit|validate|test|predict``: LightningCLI over SequenceClassifier and a DataModule.

The DataModule is chosen by ``class_path`` (``--data SyntheticDataModule`` or a YAML file); its
vocabulary size, class count and class names flow into the model through argument links,
so the user never types them. The shipped ``trainer/default.yaml`` (package data, see
``shipped_configs``) is applied first, so its training defaults hold even for a bare command line,
installed or in a checkout; ``--config lit_seqcls:<group>/<file>.yaml`` names any shipped config.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import DefaultHelpFormatter, Namespace
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY, CheckpointError, load_checkpoint
from lit_seqcls.console import quiet_console
from lit_seqcls.errors import DEBUG_ENV, UserError, user_error_in
from lit_seqcls.metrics import VAL_ACC
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.plugins import PLUGIN_GROUP, load_datamodule_plugins  # noqa: F401 (re-exported)
from lit_seqcls.runtime import (
    AUTO,
    LAST,
    AtomicCheckpointIO,
    BatchTelemetry,
    BestCheckpoint,
    GracefulShutdown,
    NonFiniteGuard,
    PredictionWriter,
    RNGStateCheckpoint,
    SecretInConfigError,
    WandbLogger,
    WandbRunId,
    WandbSaveConfigCallback,
    bound_ddp_timeout,
    clean_run_root,
    find_secrets,
    make_checkpoint_callback,
    pin_logger_versions,
    resolve_ckpt_path,
    resumed_run_id,
    save_last_every_epoch,
    secrets_message,
)
from lit_seqcls.shipped_configs import resolve_config_names, shipped_root
from lit_seqcls.trust import check_checkpoint_hparams, check_untrusted, read_config_file

DEFAULT_CONFIG = shipped_root() / "trainer" / "default.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
LINKED_FROM_DATA = ("vocab_size", "num_classes", "class_names", "class_counts")
# Linked under another name: the DataModule's `label_task` is the model's `task`.
LINKED_RENAMED = {"label_task": "task"}
CKPT_PATH_WORDS = (AUTO, LAST, "best", "hpc", "registry")  # resolved later, not file names
# `main` hands these to their own parsers before LightningCLI parses, so its --help lists them.
OTHER_COMMANDS = """other commands (each takes --help):
  compare               train and test several encoders and seeds on the same
                        data; write a table (intervals, tests) and plots
  configs [DEST]        copy the shipped configs into DEST, to edit them
  vectors               train word2vec vectors on a DataModule's training texts
  export                write a checkpoint as a bundle folder (model, tokenizer,
                        model card) that serves without torch
  predict --bundle DIR  predict with an exported bundle (onnxruntime, no torch)"""


class _HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the epilog's lines kept as written (``OTHER_COMMANDS``)."""


class SeqClsCLI(LightningCLI):
    """LightningCLI with data → model links, checkpointing on ``val/acc``, a prediction writer.

    Every trainer it builds also writes checkpoints crash-safely (``AtomicCheckpointIO``), stops
    on a NaN/inf loss (``--nonfinite``), stops cleanly on Ctrl-C/SIGTERM (``--shutdown``) and,
    under DDP, gives up on a hung rank after minutes (``bound_ddp_timeout``).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_FROM_DATA:
            # Applied right after the DataModule is built (before setup): the DataModule
            # computes these lazily (see TextClassificationDataModule.vocab_size).
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        for source, target in LINKED_RENAMED.items():
            parser.link_arguments(f"data.{source}", f"model.{target}", apply_on="instantiate")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": VAL_ACC,
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch{epoch:02d}-val_acc{" + VAL_ACC + ":.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(PredictionWriter, "predictions")
        # `--nonfinite.action skip`, `--shutdown.save_checkpoint false`: see their modules.
        parser.add_lightning_class_args(NonFiniteGuard, "nonfinite")
        parser.add_lightning_class_args(GracefulShutdown, "shutdown")

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # Crash-safe, plain-data checkpoints unless the user chose another CheckpointIO.
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        bound_ddp_timeout(trainer.strategy)  # minutes, not 30, when a rank hangs
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        # The best epochs' checkpoint is the trainer's `checkpoint_callback`, before any a user
        # adds; last.ckpt is written after every epoch, not only beside the best one's.
        make_checkpoint_callback(trainer, config["checkpoint"])
        save_last_every_epoch(trainer, config["checkpoint"])
        # Two runs started at once in one log dir get two version_N folders, never the same one.
        try:
            pin_logger_versions(trainer)
        except OSError as err:  # a read-only or full file system: say where, before any work
            raise RunDirectoryError(
                f"Cannot create this run's folder under {trainer.default_root_dir}: "
                f"{err.strerror or err}. Choose a writable place with "
                "--trainer.default_root_dir <dir> (nothing was written)."
            ) from err
        return trainer

    def before_fit(self) -> None:
        config = self.config_init[self.subcommand]
        clean_run_root(self.trainer)  # temporaries of writers killed in an earlier run
        config["ckpt_path"] = self._ckpt_path  # resolved before the trainer was built
        self._resumed_step = _check_ckpt_file(config["ckpt_path"])

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if args is None or isinstance(args, list):
            argv = list(sys.argv[1:] if args is None else args)
            # Files a user names are checked as data before the parser reads (or runs) them.
            for path in _options(argv, "--config"):
                if Path(path).is_file():
                    check_untrusted(read_config_file(path), f"config {path}")
            _check_ckpt_file(_option(argv, "--ckpt_path"))
            # What LightningCLI does with a list, after filling in the data from the checkpoint.
            self.config = parser.parse_args(_with_data_from_checkpoint(argv))
        else:
            super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config.get(subcommand) if subcommand else self.config
        # Before anything is written (W&B records the command line, config.yaml the config).
        found = find_secrets(config.as_dict())
        if found:
            raise SecretInConfigError(secrets_message(found, "this configuration"))
        if config.get("ckpt_path") == LAST:  # here, so that Lightning reads its hyper-parameters
            root = _default_root_dir(config.get("trainer.default_root_dir"))
            config["ckpt_path"] = resolve_ckpt_path(LAST, root)
        _check_ckpt_file(config.get("ckpt_path"))

    def before_instantiate_classes(self) -> None:
        # The whole parsed config, including what Lightning filled in from `--ckpt_path`'s
        # hyper-parameters: instantiating calls what each `class_path` names.
        check_untrusted(self.config, "this configuration (command line and config files)")
        self._given_run_ids: list[tuple[Namespace, str | None]] = []
        if self.subcommand == "fit":
            self._continue_wandb_run(self.config[self.subcommand])

    def _continue_wandb_run(self, config: Namespace) -> None:
        """Resolve ``--ckpt_path`` and build a W&B logger with the run id it holds.

        ``--ckpt_path auto`` is the newest checkpoint under default_root_dir, so a requeued job
        resumes with the command it was submitted with (runtime/resume.py); a run id stored in
        that checkpoint makes the job continue the same W&B run (``WandbLogger(id=...)``).
        """
        root = _default_root_dir(config.get("trainer.default_root_dir"))
        self._ckpt_path = resolve_ckpt_path(config.get("ckpt_path"), root)
        run_id = resumed_run_id(self._ckpt_path, root)
        if run_id is None:
            return
        for init_args in _wandb_logger_args(config.get("trainer.logger")):
            self._given_run_ids.append((init_args, init_args.get("id")))
            init_args["id"] = run_id

    def after_instantiate_classes(self) -> None:
        # config.yaml and W&B record the command as given: running it again starts a new run.
        for init_args, given in self._given_run_ids:
            init_args["id"] = given

    def after_fit(self) -> None:
        # `trainer.log_dir` is a collective under DDP (a broadcast): read it on every rank.
        config = Path(self.trainer.log_dir or ".") / "config.yaml"
        ckpt = self.trainer.checkpoint_callback
        if not self.trainer.is_global_zero or ckpt is None or not ckpt.best_model_path:
            return
        score = (
            f" ({ckpt.monitor}={float(ckpt.best_model_score):.4f})"
            if ckpt.best_model_score is not None
            else ""
        )
        if self.trainer.global_step == getattr(self, "_resumed_step", None):
            print(
                "\nNothing left to train: the checkpoint had already finished this run's "
                f"training (max_epochs={self.trainer.max_epochs}). Raise --trainer.max_epochs to "
                "train on."
            )
        print(
            f"\nBest checkpoint{score}: {ckpt.best_model_path}\n"
            f"Test it:   lit-seqcls test --config {config} --ckpt_path {ckpt.best_model_path}\n"
        )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lit-seqcls`` console script (and ``python -m lit_seqcls``).

    ``lit-seqcls compare ...`` is not a LightningCLI subcommand (it runs several ``fit``/``test``
    processes); it is handed to ``lit_seqcls.compare`` before LightningCLI parses anything, and
    ``lit-seqcls configs [DEST]`` (copy the shipped configs out) to ``lit_seqcls.shipped_configs``,
    ``lit-seqcls export`` to ``lit_seqcls.export`` and ``predict --bundle DIR`` to
    ``lit_seqcls.serving``.
    ``--config lit_seqcls:<name>`` becomes the shipped file's path first, for either.
    """
    argv = sys.argv[1:] if args is None else args
    try:
        if argv and argv[0] == "configs":
            from lit_seqcls.shipped_configs import main as copy_configs

            copy_configs(argv[1:])
            return
        if argv and argv[0] == "export":  # a checkpoint as a bundle (lit_seqcls/export/)
            from lit_seqcls.export import main as export

            export(argv[1:])
            return
        if argv and argv[0] == "predict" and _options(argv, "--bundle"):
            from lit_seqcls.serving.command import run as predict_with_bundle  # no torch inside

            predict_with_bundle(argv[1:])
            return
        resolved = resolve_config_names(argv)  # `--config lit_seqcls:model/cnn.yaml`
        if argv and argv[0] == "compare":
            from lit_seqcls.compare import main as compare  # imported only for this command

            compare(resolved[1:])
        elif argv and argv[0] == "vectors":  # word2vec on the training + unlabelled texts
            from lit_seqcls.vectors_command import main as vectors

            vectors(resolved[1:])
        else:
            _run_cli(args if resolved == argv else resolved)
    except Exception as err:
        user_error = user_error_in(err)
        if user_error is None or os.environ.get(DEBUG_ENV):
            raise
        # The message says what happened and what to do; a traceback would bury it.
        sys.exit(f"lit-seqcls: error: {user_error}\n(set {DEBUG_ENV}=1 to see the traceback)")


def cli_kwargs() -> dict[str, Any]:
    """How ``lit-seqcls`` configures ``SeqClsCLI`` (tests build the same parser from it)."""
    # A missing file would silently drop the defaults (gradient clipping): a broken install.
    if not DEFAULT_CONFIG.is_file():
        raise FileNotFoundError(f"{DEFAULT_CONFIG} is missing: reinstall lit-seqcls")
    return {
        "subclass_mode_data": True,
        "auto_configure_optimizers": False,  # the model takes `optimizer`/`lr_scheduler` itself
        # Added to any configured callbacks; RNG states in checkpoints make resuming exact.
        # WandbRunId stores the W&B run id for a resume (a no-op without a WandbLogger).
        "trainer_defaults": {"callbacks": [BatchTelemetry(), RNGStateCheckpoint(), WandbRunId()]},
        # Lightning's own choice without a seed (0), minus its "No seed found" warning.
        "seed_everything_default": 0,
        "save_config_callback": WandbSaveConfigCallback,  # + full nested config to W&B
        "parser_kwargs": {
            # The top-level parser (`lit-seqcls --help`): keys that are not subcommands.
            "description": "Train, test and use text classifiers. The LightningCLI "
            "subcommands are below;\nthe other commands of lit-seqcls follow them.",
            "epilog": OTHER_COMMANDS,
            "formatter_class": _HelpFormatter,
            **{sub: {"default_config_files": [str(DEFAULT_CONFIG)]} for sub in SUBCOMMANDS},
        },
    }


def _run_cli(args: list[str] | None) -> None:
    load_datamodule_plugins()
    with quiet_console():  # progress bars and what a user can act on; not Lightning's tips
        SeqClsCLI(SequenceClassifier, L.LightningDataModule, **cli_kwargs(), args=args)


def _check_ckpt_file(ckpt: str | Path | None) -> int | None:
    """A ``--ckpt_path`` file must load as plain data with the model's hyper-parameters.

    Returns the checkpoint's ``global_step`` (``None`` for no file).
    """
    if ckpt is None or str(ckpt) in CKPT_PATH_WORDS:
        return None
    path = Path(ckpt)
    if path.is_dir():
        raise CheckpointError(
            f"--ckpt_path {path} is a directory, not a checkpoint file: name a .ckpt file in it "
            f"(e.g. {path / 'last.ckpt'}), or pass `--ckpt_path auto` to resume from the "
            "newest checkpoint under --trainer.default_root_dir."
        )
    if not path.is_file():
        return None  # Lightning says that the file does not exist
    stat = path.stat()
    return _checked_step(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _checked_step(path: str, mtime_ns: int, size: int) -> int | None:
    """``_check_ckpt_file``'s full read (every zip checksum), once per file version: the CLI asks
    about the same ``--ckpt_path`` before parsing, after parsing and before ``fit``."""
    checkpoint = load_checkpoint(path, mmap=True)
    check_checkpoint_hparams(checkpoint, path, SequenceClassifier)
    return checkpoint.get("global_step")


def _default_root_dir(value: str | Path | None) -> str:
    """The ``default_root_dir`` a ``Trainer`` built with ``value`` will have."""
    return os.path.normpath(os.path.expanduser(value or os.getcwd()))


def _wandb_logger_args(loggers: Any) -> list[Namespace]:
    """The ``init_args`` of each ``WandbLogger`` (or subclass) in a ``trainer.logger`` config."""
    found = []
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        class_path = logger.get("class_path") if isinstance(logger, Namespace) else None
        if not class_path:
            continue
        module, _, name = class_path.rpartition(".")
        # Named in a config that `check_untrusted` accepted; instantiating imports it anyway.
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type) and issubclass(cls, WandbLogger):
            if logger.get("init_args") is None:
                logger["init_args"] = Namespace()
            found.append(logger["init_args"])
    return found


class RunDirectoryError(OSError, UserError):
    """The run's log folder cannot be created (read-only or full file system)."""


def _with_data_from_checkpoint(argv: list[str]) -> list[str]:
    """``predict``/``test``/``validate --ckpt_path X`` with no data given: use X's text pipeline.

    A checkpoint stores its text pipeline as plain data, naming the DataModule that reads raw
    files with it (``text_pipeline["datamodule"]``); that module is selected with
    ``from_checkpoint=X``, so ``--data.data_files.predict new.txt`` is all a user adds. The core
    only reads the class path from the checkpoint; it never imports ``datamodules/``.
    """
    if not argv or argv[0] not in ("predict", "test", "validate"):
        return argv
    ckpt = _option(argv, "--ckpt_path")
    if ckpt is None or not Path(ckpt).is_file():
        return argv
    if _option(argv, "--data") is not None or any(
        "data" in (read_config_file(c) or {})
        for c in _options(argv, "--config")
        if Path(c).is_file()
    ):
        return argv
    # Checked (checksums and hyper-parameters) by `_check_ckpt_file` just before.
    pipeline = load_checkpoint(ckpt, mmap=True, checksums=False).get(TEXT_PIPELINE_KEY)
    if not isinstance(pipeline, dict) or "datamodule" not in pipeline:
        return argv
    data = ["--data", pipeline["datamodule"], "--data.init_args.from_checkpoint", ckpt]
    return [argv[0], *data, *argv[1:]]


def _options(argv: list[str], name: str) -> list[str]:
    """Values of ``name`` given as ``name value`` or ``name=value``."""
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    values += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    return values


def _option(argv: list[str], name: str) -> str | None:
    values = _options(argv, name)
    return values[-1] if values else None


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
