"""The private Lightning attributes ``lightning_internals`` fences still exist on this version.

Each test builds the installed Lightning's own object and checks the attribute directly, so an
upgrade that renames one fails here by name, not as a run that silently loses a safety net.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.fabric.utilities.data import _replace_dunder_methods, _set_sampler_epoch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.core import saving as lightning_saving
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from lit_seqcls.cli import SeqClsCLI, cli_kwargs
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.runtime import lightning_internals as li
from lit_seqcls.text.bucketing import BucketBatchSampler
from lit_seqcls.trust import CLASS_PATH_KEYS, LIGHTNING_INSTANTIATOR, check_checkpoint_hparams

CHANGED = f"Lightning {L.__version__} changed"
NO_TENSORBOARD = not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX"))


def test_ddp_strategy_keeps_the_process_group_timeout_in_timeout():
    strategy = DDPStrategy()
    assert hasattr(strategy, "_timeout"), f"{CHANGED} DDPStrategy._timeout"
    # Its default is torch's, and it is what `bound_ddp_timeout` compares against.
    assert li.ddp_timeout(strategy) == li.DEFAULT_PG_TIMEOUT == dist.default_pg_timeout
    li.set_ddp_timeout(strategy, timedelta(minutes=3))
    assert li.ddp_timeout(DDPStrategy(timeout=timedelta(minutes=3))) == strategy._timeout


def test_launcher_has_kill():
    launcher = _SubprocessScriptLauncher(LightningEnvironment(), num_processes=2, num_nodes=1)
    assert callable(getattr(launcher, "kill", None)), f"{CHANGED} the launcher's kill()"


def test_no_launcher_means_nothing_to_kill(monkeypatch):
    strategy = L.Trainer(logger=False, devices=1).strategy
    assert strategy.launcher is None
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    li.kill_launched_processes(strategy, signal.SIGKILL)
    assert sent == []


@pytest.mark.parametrize(
    "logger_type",
    [
        CSVLogger,
        pytest.param(
            TensorBoardLogger, marks=pytest.mark.skipif(NO_TENSORBOARD, reason="no tensorboard")
        ),
    ],
)
def test_loggers_keep_an_unchosen_version_in_version(tmp_path, logger_type):
    logger = logger_type(tmp_path)
    assert hasattr(logger, "_version"), f"{CHANGED} {logger_type.__name__}._version"
    assert li.logger_version_unset(logger)
    li.set_logger_version(logger, 7)
    assert logger.version == 7 and not li.logger_version_unset(logger)
    assert not li.logger_version_unset(logger_type(tmp_path, version=3))


def test_wandb_logger_keeps_init_kwargs_and_run(tmp_path):
    logger = LightningWandbLogger(save_dir=str(tmp_path), id="abc", mode="offline")
    init = li.wandb_init_kwargs(logger)
    assert isinstance(init, dict), f"{CHANGED} WandbLogger._wandb_init"
    # What our logger changes there after construction, and what it relies on being there.
    assert init["mode"] == "offline" and "anonymous" in init, f"{CHANGED} WandbLogger._wandb_init"
    assert init["id"] == "abc" and init["resume"] == "allow"
    assert li.started_wandb_run(logger) is None
    # A run handed over through the public `experiment=` is where a started one is kept.
    run = object()
    started = LightningWandbLogger(save_dir=str(tmp_path), experiment=run)
    assert li.started_wandb_run(started) is run, f"{CHANGED} WandbLogger._experiment"
    assert started.experiment is run
    li.forget_wandb_run(started)
    assert li.started_wandb_run(started) is None


def test_lightning_recreates_our_batch_sampler_and_relays_set_epoch():
    # Not fenced in code (Lightning does it itself, in `_update_dataloader` under DDP and
    # `_set_sampler_epoch` every epoch), so checked here the way Lightning does it.
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = DataLoader(range(20), batch_sampler=BucketBatchSampler(range(1, 21), batch_size=4))
    _set_sampler_epoch(loader, 5)  # one process: through our `_EpochRelay`
    assert loader.batch_sampler.epoch == 5, f"{CHANGED} how set_epoch reaches a batch sampler"
    sampler = DistributedSampler(range(20), num_replicas=2, rank=0, shuffle=False)
    ddp = _update_dataloader(loader, sampler, mode=RunningStage.TRAINING)
    again = ddp.batch_sampler
    assert type(again) is BucketBatchSampler, f"{CHANGED} how it re-creates a batch sampler"
    assert again.sampler is sampler and again.num_replicas == 2 and again.batch_size == 4
    _set_sampler_epoch(ddp, 3)
    assert sampler.epoch == 3 == again._current_epoch()


def test_lightning_puts_its_sigterm_handler_in_place_before_on_train_start(tmp_path):
    # GracefulShutdown replaces it there once (runtime/shutdown.py); a Lightning that installs
    # it later would run both handlers during training.
    from lightning.pytorch.demos.boring_classes import BoringModel

    seen = {}

    class Probe(L.Callback):
        def setup(self, trainer, pl_module, stage):
            seen["setup"] = signal.getsignal(signal.SIGTERM)

        def on_train_start(self, trainer, pl_module):
            seen["train"] = signal.getsignal(signal.SIGTERM)
            seen["received"] = trainer.received_sigterm

    before = signal.getsignal(signal.SIGTERM)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_steps=1, limit_val_batches=0, logger=False,
        callbacks=[Probe()], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert seen["setup"] == before and seen["received"] is False
    assert seen["train"] != before, f"{CHANGED} when it installs its SIGTERM handler"
    assert signal.getsignal(signal.SIGTERM) == before  # and puts the old one back


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")
def test_a_restored_fit_loop_says_how_many_batches_of_its_epoch_were_processed(tmp_path):
    # What `datamodules.base.resume_point` reads when the training loader is built.
    from lightning.pytorch.demos.boring_classes import BoringModel

    progress = L.Trainer(logger=False).fit_loop.epoch_loop.batch_progress
    assert isinstance(progress.current.processed, int), f"{CHANGED} the fit loop's progress"
    seen = []

    class Model(BoringModel):
        def train_dataloader(self):
            seen.append(li.restored_batches_in_epoch(self.trainer))
            return super().train_dataloader()

    kwargs = {
        "default_root_dir": tmp_path, "limit_train_batches": 8, "limit_val_batches": 0,
        "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
        "enable_model_summary": False,
    }  # fmt: skip
    first = L.Trainer(max_steps=3, **kwargs)
    first.fit(Model())
    first.save_checkpoint(tmp_path / "mid.ckpt")  # 3 of the epoch's 8 batches done
    L.Trainer(max_steps=5, **kwargs).fit(Model(), ckpt_path=tmp_path / "mid.ckpt")
    assert seen == [0, 3], f"{CHANGED} the fit loop's restored progress: {seen}"


def test_a_missing_attribute_names_the_version_and_the_attribute():
    class Bare:
        pass

    with pytest.raises(li.LightningInternalsChanged, match=f"{CHANGED} Bare._timeout"):
        li.ddp_timeout(Bare())  # type: ignore[arg-type]


class _RecordingParser:
    """Stands in for LightningCLI's parser: records what it is asked to parse."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def parse_args(self, args=None):
        self.calls.append(("parse_args", args))
        return "parsed"

    def parse_object(self, cfg, *args, **kwargs):
        self.calls.append(("parse_object", cfg))
        return "parsed object"


@pytest.mark.parametrize("args", [["fit", "--trainer.max_epochs=1"], None])
def test_lightning_cli_parses_a_list_or_the_command_line_with_parse_args_alone(monkeypatch, args):
    # SeqClsCLI.parse_arguments re-does this branch itself (checking files first); if Lightning
    # starts doing more with a list, SeqClsCLI would silently skip it.
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])  # no "args and sys.argv" warning
    cli, parser = object.__new__(LightningCLI), _RecordingParser()
    LightningCLI.parse_arguments(cli, parser, args)
    assert parser.calls == [("parse_args", args)] and cli.config == "parsed", (
        f"{CHANGED} LightningCLI.parse_arguments for {args!r}: it no longer ends in "
        "parser.parse_args(args); update SeqClsCLI.parse_arguments (lit_seqcls/cli.py)"
    )


def test_lightning_allows_the_one_instantiator_trust_accepts():
    allowed = getattr(lightning_saving, "_ALLOWED_INSTANTIATORS", None)
    assert allowed is not None and LIGHTNING_INSTANTIATOR in allowed, (
        f"{CHANGED} core/saving.py's _ALLOWED_INSTANTIATORS (got {allowed!r}); update "
        "LIGHTNING_INSTANTIATOR in lit_seqcls/trust.py"
    )


# Lightning's own config dump in the plain LightningCLI (SeqClsCLI does not use it).
@pytest.mark.filterwarnings("ignore:skip_none parameter was deprecated")
def test_lightning_cli_names_a_subclass_model_in_class_path(tmp_path):
    # What a checkpoint of a model given by class_path holds: its class under `_class_path`,
    # the key `check_untrusted` checks (trust.CLASS_PATH_KEYS).
    cli = LightningCLI(
        SequenceClassifier,
        subclass_mode_model=True,
        run=False,
        trainer_defaults={"logger": False, "default_root_dir": str(tmp_path)},
        args=[
            "--model=lit_seqcls.model.SequenceClassifier",
            "--model.vocab_size=30",
            "--model.num_classes=2",
            "--model.encoder=swem",
        ],
    )
    private = {key: value for key, value in cli.model.hparams.items() if key.startswith("_")}
    assert private == {
        "_class_path": "lit_seqcls.model.SequenceClassifier",
        "_instantiator": LIGHTNING_INSTANTIATOR,
    }, f"{CHANGED} the private keys LightningCLI saves with hyper-parameters: {private}"
    assert "_class_path" in CLASS_PATH_KEYS


def test_a_checkpoint_saved_by_our_cli_holds_only_the_instantiator_beside_the_arguments(
    tmp_path, small_synthetic_kwargs
):
    configs = Path(__file__).resolve().parents[3] / "configs"
    data = [f"--data.init_args.{key}={value}" for key, value in small_synthetic_kwargs.items()]
    cli = SeqClsCLI(
        SequenceClassifier,
        L.LightningDataModule,
        **cli_kwargs(),
        run=False,
        args=[
            *("--config", str(configs / "data" / "synthetic.yaml")),
            *data,
            "--model.embedding_dim=4",
            "--model.encoder=swem",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}",
        ],
    )
    cli.trainer.strategy.connect(cli.model)
    cli.trainer.save_checkpoint(tmp_path / "cli.ckpt")
    checkpoint = torch.load(tmp_path / "cli.ckpt", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    private = {key: value for key, value in hparams.items() if key.startswith("_")}
    # The model is not in subclass mode, so no `_class_path`; the rest are its arguments.
    assert private == {"_instantiator": LIGHTNING_INSTANTIATOR}, (
        f"{CHANGED} the private keys LightningCLI saves with hyper-parameters: {private}; "
        "update lit_seqcls/trust.py (check_checkpoint_hparams)"
    )
    arguments = set(inspect.signature(SequenceClassifier.__init__).parameters)
    assert set(hparams) - set(private) <= arguments
    check_checkpoint_hparams(checkpoint, tmp_path / "cli.ckpt", SequenceClassifier)
