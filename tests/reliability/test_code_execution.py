"""No checkpoint or config can run code: every ``class_path`` names a class of the expected kind.

The payload that opened the hole (a checkpoint of plain strings and dicts, still loading with
``weights_only=True``) is tried on every entry point, nested and at the root, with a marker file
that must never appear; the property test mutates a real checkpoint's hyper-parameters and text
pipeline at random and asserts that loading it either works or fails with one clear error.
"""

from __future__ import annotations

import copy
import os
import shlex
from pathlib import Path

import lightning as L
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lit_seqcls import SequenceClassifier
from lit_seqcls.cli import _check_ckpt_file
from lit_seqcls.errors import UserError
from lit_seqcls.trust import UntrustedInputError, check_checkpoint_hparams, check_untrusted

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = str(ROOT / "configs" / "data" / "synthetic.yaml")
TINY_DATA = [
    "--data.init_args.train_size=60",
    "--data.init_args.test_size=10",
    "--data.init_args.median_length=8",
    "--data.init_args.max_text_length=20",
    "--trainer.enable_progress_bar=false",
]


def _payload(marker: Path) -> dict:
    return {
        "class_path": "os.system",
        "init_args": {"command": f"touch {shlex.quote(str(marker))}"},
    }


@pytest.fixture
def plain_checkpoint(tmp_path) -> Path:
    """A real checkpoint as `lit-seqcls fit` writes it: CLI hyper-parameters, text pipeline."""
    model = SequenceClassifier(vocab_size=30, num_classes=2, encoder="cnn", embedding_dim=4)
    model.hparams["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
    model.text_pipeline = {"datamodule": "datamodules.TextDataModule", "tokenizer": "{}"}
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(path)
    return path


def _evil(plain: Path, marker: Path, where: str) -> Path:
    checkpoint = torch.load(plain, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    if where == "encoder":
        hparams["encoder"] = _payload(marker)
    elif where == "nested":  # inside a real encoder's arguments
        hparams["encoder"] = {
            "class_path": "lit_seqcls.encoders.CNNEncoder",
            "init_args": {"kernel_sizes": _payload(marker)},
        }
    elif where == "root":  # Lightning turns `_class_path` into the model's class_path
        hparams["_class_path"] = "os.system"
        hparams["command"] = f"touch {marker}"
    elif where == "optimizer":
        hparams["optimizer"] = _payload(marker)
    elif where == "instantiator":
        hparams["_instantiator"] = "os.system"
    elif where == "datamodule":
        checkpoint["text_pipeline"]["datamodule"] = "os.system"
    path = plain.with_name(f"evil-{where}.ckpt")
    torch.save(checkpoint, path)
    torch.load(path, weights_only=True)  # still plain data: weights_only alone does not help
    return path


WHERE = ["encoder", "nested", "root", "optimizer", "instantiator", "datamodule"]


@pytest.mark.parametrize("subcommand", ["predict", "test", "validate"])
@pytest.mark.parametrize("where", WHERE)
def test_a_checkpoint_naming_a_function_is_refused_by_every_subcommand(
    plain_checkpoint, tmp_path, subcommand, where, cli_error
):
    marker = tmp_path / "pwned"
    evil = _evil(plain_checkpoint, marker, where)
    texts = tmp_path / "new.txt"
    texts.write_text("a text\n")
    args = [subcommand, "--ckpt_path", str(evil), "--data.data_files.predict", str(texts)]
    message = cli_error(args)
    assert "Refusing" in message
    assert f"checkpoint {evil}" in message
    assert not marker.exists()


@pytest.mark.parametrize("where", ["encoder", "root"])
def test_fit_refuses_it_as_a_ckpt_path_and_through_ckpt_path_auto(
    plain_checkpoint, tmp_path, where, cli_error
):
    marker = tmp_path / "pwned"
    evil = _evil(plain_checkpoint, marker, where)
    assert "Refusing" in cli_error(
        ["fit", "--config", SYNTHETIC, *TINY_DATA, "--ckpt_path", str(evil)]
    )
    root = tmp_path / "runs"
    (root / "checkpoints").mkdir(parents=True)
    evil.rename(root / "checkpoints" / "last.ckpt")
    args = ["fit", "--config", SYNTHETIC, *TINY_DATA, "--trainer.default_root_dir", str(root)]
    assert "Refusing" in cli_error([*args, "--ckpt_path", "auto"])
    assert not marker.exists()


def test_load_from_checkpoint_refuses_it_in_python(plain_checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    for where in WHERE[:-1]:
        with pytest.raises(UntrustedInputError, match="Refusing checkpoint"):
            SequenceClassifier.load_from_checkpoint(_evil(plain_checkpoint, marker, where))
    assert not marker.exists()
    assert isinstance(SequenceClassifier.load_from_checkpoint(plain_checkpoint), L.LightningModule)


@pytest.mark.parametrize(
    "section",
    [
        {"model": {"encoder": "PAYLOAD"}},
        {"model": {"optimizer": "PAYLOAD"}},
        {"model": {"lr_scheduler": "PAYLOAD"}},
        {"model": {"encoder": {"class_path": "lit_seqcls.encoders.GRUEncoder",
                               "init_args": {"hidden_size": "PAYLOAD"}}}},
        {"trainer": {"callbacks": ["PAYLOAD"]}},
        {"data": "PAYLOAD"},
    ],
)  # fmt: skip
def test_a_config_file_naming_a_function_is_refused_naming_the_file(tmp_path, section, cli_error):
    import yaml

    marker = tmp_path / "pwned"

    def fill(node):
        if node == "PAYLOAD":
            return _payload(marker)
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    config = tmp_path / "evil.yaml"
    config.write_text(yaml.safe_dump(fill(section)))
    message = cli_error(["fit", "--config", SYNTHETIC, "--config", str(config)])
    assert f"config {config}" in message and "'os.system', a function" in message
    assert not marker.exists()


@pytest.mark.parametrize("key", ["encoder", "optimizer", "lr_scheduler"])
def test_the_command_line_cannot_name_a_function_either(tmp_path, key, cli_error):
    import json

    marker = tmp_path / "pwned"
    flag = [f"--model.{key}", json.dumps(_payload(marker))]
    message = cli_error(["fit", "--config", SYNTHETIC, *TINY_DATA, *flag])
    assert f"model.{key}.class_path names 'os.system'" in message
    assert not marker.exists()


def test_a_class_of_the_wrong_kind_is_refused_where_the_kind_is_known():
    for place, path in [("encoder", "subprocess.Popen"), ("optimizer", "collections.Counter")]:
        with pytest.raises(UntrustedInputError, match="not a subclass of"):
            check_untrusted({"model": {place: {"class_path": path}}}, "config x.yaml")
    check_untrusted({"model": {"optimizer": {"class_path": "torch.optim.SGD"}}}, "config x.yaml")


def test_the_shipped_configs_and_a_real_checkpoint_pass(plain_checkpoint):
    from lit_seqcls.trust import read_config_file

    configs = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(configs) > 10  # the shipped ones, not an empty folder
    for config in configs:  # accepted: raises nothing
        check_untrusted(read_config_file(config), f"config {config}")
    checkpoint = torch.load(plain_checkpoint, weights_only=True)
    check_checkpoint_hparams(checkpoint, plain_checkpoint, SequenceClassifier)


_DANGEROUS = ["os.system", "posix.system", "builtins.exec", "builtins.eval", "subprocess.call",
              "subprocess.Popen", "shutil.rmtree", "pathlib.Path.touch", "os",
              "builtins.open"]  # fmt: skip
_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(_DANGEROUS),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["class_path", "_class_path", "init_args", "x"]), children,
                      max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    section=st.sampled_from(["hyper_parameters", "text_pipeline"]),
    key=st.sampled_from(["encoder", "optimizer", "_class_path", "_instantiator", "class_names",
                         "datamodule", "tokenizer", "vocab_size", "new_key"]),
    value=_plain,
)  # fmt: skip
def test_random_plain_data_in_a_checkpoint_never_runs_code_nor_escapes_as_a_traceback(
    plain_checkpoint, tmp_path, section, key, value
):
    checkpoint = torch.load(plain_checkpoint, weights_only=True)
    checkpoint[section] = copy.deepcopy(checkpoint.get(section) or {})
    checkpoint[section][key] = value
    path = tmp_path / "mutated.ckpt"
    torch.save(checkpoint, path)
    marker_dir = Path.cwd()  # the payload strings name no real file; count files before/after
    before = set(marker_dir.iterdir())
    try:
        _check_ckpt_file(path)
        SequenceClassifier.load_from_checkpoint(path)
    except UserError:
        pass  # refused with a message for people
    except (ValueError, TypeError) as err:  # the model's own argument checks, never a crash
        assert "Traceback" not in str(err)
    assert set(marker_dir.iterdir()) == before


def test_compare_refuses_a_config_naming_a_function_before_any_run(tmp_path, cli_error):
    import yaml

    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(yaml.safe_dump({"model": {"optimizer": _payload(marker)}}))
    out = tmp_path / "cmp"
    args = ["compare", "--config", SYNTHETIC, "--config", str(config), "--encoders", "cnn"]
    message = cli_error([*args, "--output_dir", str(out)])
    assert f"config {config}" in message
    assert not marker.exists() and not out.exists()
