"""A shipped data config brings each encoder's shipped settings for that dataset (#17)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lit_seqcls.shipped_configs as shipped
from lit_seqcls.compare import runner


@pytest.fixture
def shipped_tree(tmp_path, monkeypatch):
    """A shipped configs folder holding data/imdb.yaml and experiment/imdb/rnn.yaml only."""
    root = tmp_path / "configs"
    (root / "data").mkdir(parents=True)
    (root / "data" / "imdb.yaml").write_text("data:\n  class_path: datamodules.IMDBDataModule\n")
    (root / "model").mkdir()
    for encoder in ("rnn", "gru"):
        (root / "model" / f"{encoder}.yaml").write_text(f"# {encoder}\n")
    (root / "experiment" / "imdb").mkdir(parents=True)
    (root / "experiment" / "imdb" / "rnn.yaml").write_text(
        "data:\n  init_args:\n    truncation_side: left\n"
    )
    monkeypatch.setattr(shipped, "shipped_root", lambda: root)
    monkeypatch.setattr(runner, "shipped_root", lambda: root)
    return root


def _configs(argv, tmp_path):
    options, passthrough = runner._parse(argv)
    return {s.encoder: s.configs for s in runner._plan(options, passthrough, tmp_path)}


@pytest.mark.parametrize("how", ["file", "name"])
def test_each_encoder_gets_its_experiment_config_after_the_data_config(shipped_tree, tmp_path,
                                                                       how):  # fmt: skip
    data = (
        str(shipped_tree / "data" / "imdb.yaml") if how == "file" else "lit_seqcls:data/imdb.yaml"
    )
    configs = _configs(["--config", data, "--encoders", "rnn", "gru"], tmp_path)
    data, model = str(shipped_tree / "data" / "imdb.yaml"), shipped_tree / "model"
    experiment = str(shipped_tree / "experiment" / "imdb" / "rnn.yaml")
    assert configs["rnn"] == (data, str(model / "rnn.yaml"), experiment)
    assert configs["gru"] == (data, str(model / "gru.yaml"))  # no experiment shipped for gru


def test_experiments_none_and_a_users_own_data_config_bring_only_the_model_config(
    shipped_tree, tmp_path
):
    data = str(shipped_tree / "data" / "imdb.yaml")
    model = str(shipped_tree / "model" / "rnn.yaml")  # the model config, as README's fit takes it
    configs = _configs(["--config", data, "--encoders", "rnn", "--experiments", "none"], tmp_path)
    assert configs["rnn"] == (data, model)
    own = tmp_path / "imdb.yaml"  # the same name, but the user's file
    own.write_text(Path(data).read_text())
    configs = _configs(["--config", str(own), "--encoders", "rnn"], tmp_path)
    assert configs["rnn"] == (str(own), model)


def test_every_shipped_experiment_config_names_a_shipped_dataset_and_encoder():
    from lit_seqcls.encoders import ENCODERS

    names = shipped.shipped_names()
    for name in (n for n in names if n.startswith("experiment/")):
        _, dataset, file = name.split("/")
        assert f"data/{dataset}.yaml" in names, name
        assert file.removesuffix(".yaml") in ENCODERS, name


def test_every_shipped_experiment_config_builds_its_own_encoder():
    # Complete after the data config alone: `fit --config data/imdb.yaml --config
    # experiment/imdb/rnn.yaml` trains an rnn, not the default encoder with rnn's arguments.
    import yaml

    from lit_seqcls.encoders import ENCODERS

    for name in (n for n in shipped.shipped_names() if n.startswith("experiment/")):
        encoder = yaml.safe_load(shipped.shipped_config(name).read_text())["model"]["encoder"]
        expected = ENCODERS[name.split("/")[-1].removesuffix(".yaml")]
        assert encoder["class_path"] == f"lit_seqcls.encoders.{expected.__name__}", name
