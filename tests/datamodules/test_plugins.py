"""A third-party DataModule registered under the entry-point group is found by its short name."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from lit_seqcls.cli import PLUGIN_GROUP, load_datamodule_plugins, main

PLUGIN = '''
import datasets

from datamodules import TextClassificationDataModule


class ShoutDataModule(TextClassificationDataModule):
    """Upper-case texts are positive."""

    @property
    def class_names(self):
        return ["quiet", "loud"]

    def load_splits(self):
        words = ["hello there", "HELLO THERE", "good day", "GOOD DAY"] * 10
        rows = {"text": words, "label": [int(w.isupper()) for w in words]}
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                                     "test": datasets.Dataset.from_dict(rows)})
'''


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A distribution (package + dist-info with entry_points.txt) on sys.path, as pip makes it."""
    site = tmp_path / "site"
    (site / "shout_plugin").mkdir(parents=True)
    (site / "shout_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "shout_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{PLUGIN_GROUP}]\nshout = shout_plugin:ShoutDataModule\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    importlib.invalidate_caches()
    yield
    sys.modules.pop("shout_plugin", None)


def test_the_plugin_is_discovered(plugin_on_path):
    plugins = load_datamodule_plugins()
    assert plugins["shout"].__name__ == "ShoutDataModule"
    assert {"imdb", "newsgroups", "text", "synthetic"} <= set(plugins)


def test_the_plugin_is_selected_by_its_short_name(plugin_on_path, tmp_path, cli_runs):
    main(["fit", "--data", "ShoutDataModule", "--data.batch_size", "8", "--model.encoder", "cnn",
          "--model.embedding_dim", "8", "--trainer.fast_dev_run", "1",
          "--trainer.enable_progress_bar=false",
          "--trainer.enable_model_summary=false"])  # fmt: skip
    (run,) = cli_runs
    assert type(run.datamodule).__name__ == "ShoutDataModule"
    assert type(run.datamodule).__module__ == "shout_plugin"
    assert run.trainer.state.finished and run.trainer.global_step == 1
