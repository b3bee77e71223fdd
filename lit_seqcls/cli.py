"""``lit-seqcls fit|validate|test|predict``: LightningCLI over SequenceClassifier and a DataModule.

The DataModule is chosen by ``class_path`` (``--data SyntheticDataModule`` or a YAML file); its
vocabulary size, pad id, class count and class names flow into the model through argument links,
so the user never types them. ``configs/trainer/default.yaml`` from the source checkout is applied
first when it exists, so the shipped training defaults hold even for a bare command line.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from lit_seqcls.metrics import VAL_ACC
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.prediction import PredictionWriter

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "trainer" / "default.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
PLUGIN_GROUP = "lit_seqcls.datamodules"
LINKED_FROM_DATA = ("vocab_size", "num_classes", "pad_id", "class_names")


class SeqClsCLI(LightningCLI):
    """LightningCLI with data → model links, checkpointing on ``val/acc``, a prediction writer."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_FROM_DATA:
            # Applied right after the DataModule is built (before setup): the DataModule
            # computes these lazily (see TextClassificationDataModule.vocab_size).
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": VAL_ACC,
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch{epoch:02d}-val_acc{val/acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def after_fit(self) -> None:
        # `trainer.log_dir` is a collective under DDP (a broadcast): read it on every rank.
        config = Path(self.trainer.log_dir or ".") / "config.yaml"
        ckpt = self.trainer.checkpoint_callback
        if not self.trainer.is_global_zero or ckpt is None or not ckpt.best_model_path:
            return
        score = (
            f"{ckpt.monitor}={float(ckpt.best_model_score):.4f}"
            if ckpt.best_model_score is not None
            else ""
        )
        print(
            f"\nBest checkpoint ({score}): {ckpt.best_model_path}\n"
            f"Test it:   lit-seqcls test --config {config} --ckpt_path {ckpt.best_model_path}\n"
        )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lit-seqcls`` console script (and ``python -m lit_seqcls``)."""
    load_datamodule_plugins()
    defaults = [str(DEFAULT_CONFIG)] if DEFAULT_CONFIG.is_file() else []
    SeqClsCLI(
        SequenceClassifier,
        L.LightningDataModule,
        subclass_mode_data=True,
        auto_configure_optimizers=False,  # the model takes `optimizer`/`lr_scheduler` itself
        parser_kwargs={sub: {"default_config_files": defaults} for sub in SUBCOMMANDS},
        args=args,
    )


def load_datamodule_plugins() -> dict[str, type]:
    """Import every DataModule registered under the ``lit_seqcls.datamodules`` entry-point group.

    Importing them is what lets ``--data SyntheticDataModule`` (a short class name) resolve; the
    core itself never imports ``datamodules/`` (see docs/DESIGN.md). A plugin that fails to import
    is reported and skipped, so one broken package does not take the CLI down.
    """
    plugins = {}
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            plugins[entry.name] = entry.load()
        except Exception as err:
            rank_zero_warn(f"Skipping data plugin {entry.name!r} ({entry.value}): {err}")
    return plugins


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
