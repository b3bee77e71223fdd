"""The search spaces of ``compare --tune``: every encoder ships one, and a bad file is named."""

from __future__ import annotations

import pytest

from lit_seqcls.compare.search_space import SearchSpaceError, load_space, space_file
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.errors import UserError

GOOD = """\
lr:
  type: float
  low: 1.0e-4
  high: 1.0e-2
  log: true
  flag: model.optimizer.init_args.lr
hidden_size:
  type: categorical
  choices: [64, 128]
  flag: --model.encoder.init_args.hidden_size
layers:
  type: int
  low: 1
  high: 3
  flag: model.encoder.init_args.num_layers
"""


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_encoder_ships_a_search_space_that_loads(encoder):
    space = load_space(space_file(encoder), encoder)
    flags = {p.flag for p in space}
    assert {"model.optimizer.init_args.lr", "model.dropout"} <= flags
    (lr,) = [p for p in space if p.name == "lr"]
    assert lr.type == "float" and lr.log and lr.low < 1e-3 < lr.high  # AdamW's default inside


def test_a_good_file_gives_its_parameters(tmp_path):
    path = tmp_path / "gru.yaml"
    path.write_text(GOOD)
    lr, hidden, layers = load_space(path, "gru")
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)
    assert hidden.choices == (64, 128)
    assert hidden.flag == "model.encoder.init_args.hidden_size"  # the `--` is optional
    assert (layers.type, layers.low, layers.high) == ("int", 1, 3)


BAD = {  # (parameter, key the message must name, file)
    "unknown type": ("lr", "type", "lr: {type: uniform, low: 0, high: 1, flag: model.dropout}"),
    "high below low": ("p", "high", "p: {type: float, low: 0.5, high: 0.1, flag: model.dropout}"),
    "log of zero": ("p", "low", "p: {type: float, low: 0, high: 1, log: true, flag: trainer.x}"),
    "int with a float": ("p", "low", "p: {type: int, low: 0.5, high: 4, flag: trainer.x}"),
    "missing flag": ("p", "flag", "p: {type: float, low: 0, high: 1}"),
    "unknown key": ("p", "choises", "p: {type: categorical, choises: [1], flag: model.dropout}"),
    "empty choices": ("p", "choices", "p: {type: categorical, choices: [], flag: model.dropout}"),
    "list choice": ("p", "choices", "p: {type: categorical, choices: [[3]], flag: model.dropout}"),
    "budget flag": ("p", "flag", "p: {type: int, low: 1, high: 9, flag: trainer.max_epochs}"),
    "owned flag": ("p", "flag", "p: {type: int, low: 1, high: 9, flag: seed_everything}"),
    "other encoder's argument": (
        "p", "flag", "p: {type: int, low: 1, high: 9, flag: model.encoder.init_args.num_filters}"
    ),
    "model typo": ("p", "flag", "p: {type: float, low: 0, high: 1, flag: model.dropuot}"),
    "not a mapping": ("p", "type", "p: 0.5"),
    "flag twice": (
        "b", "flag", "a: {type: float, low: 0, high: 1, flag: model.dropout}\n"
        "b: {type: float, low: 0, high: 1, flag: model.dropout}"
    ),
}  # fmt: skip


@pytest.mark.parametrize(("name", "key", "text"), BAD.values(), ids=list(BAD))
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path, name, key, text):
    path = tmp_path / "gru.yaml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as refused:
        load_space(path, "gru")
    assert str(refused.value).startswith(f"{path}: {name}.{key}: ")
    assert isinstance(refused.value, UserError | ValueError)


@pytest.mark.parametrize(
    "text", ["", "[1, 2]", "lr: {type: float\n"], ids=["empty", "list", "yaml"]
)
def test_a_file_that_is_no_search_space_is_named(tmp_path, text):
    path = tmp_path / "cnn.yaml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError, match=rf"^{path}: (not valid YAML|a search space is)"):
        load_space(path, "cnn")
    with pytest.raises(SearchSpaceError, match=r"no search space for encoder 'gru'"):
        load_space(tmp_path / "gru.yaml", "gru")
