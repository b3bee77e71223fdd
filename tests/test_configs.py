"""Every shipped config holds only what differs from the defaults it is layered on.

A key "restates a default" when the CLI's parser gives it the same value with the key left out:
the class's signature default, the CLI's own defaults (``trainer/default.yaml``, the checkpoint
settings) or what an earlier config in the documented order sets. The parser decides, so a
``timeout: 0:05:00`` and a ``timedelta`` compare as what they are. What the CLI applies only
after parsing (the DDP timeout) is checked by name.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import yaml
from jsonargparse import ArgumentError

from lit_seqcls.cli import SUBCOMMANDS, SeqClsCLI, cli_kwargs, load_datamodule_plugins
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.runtime.shutdown import DEFAULT_DDP_TIMEOUT
from lit_seqcls.shipped_configs import shipped_root

ROOT = shipped_root()
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
DEFAULTS = ROOT / "trainer" / "default.yaml"  # the CLI applies it first (its default config)
# sweeps/ (W&B sweep files) and tune/ (search spaces, tests/lit_seqcls/compare/test_search_space.py)
# are not CLI configs.
CLI_CONFIGS = sorted(p for p in ROOT.rglob("*.yaml") if p.parent.name not in ("sweeps", "tune"))
DATA = ROOT / "data" / "synthetic.yaml"
# The configs a file is documented to follow (default: a data config, as in README's commands).
LAYERED_AFTER = {"data": [], "trainer/ddp.yaml": [DATA, ROOT / "trainer" / "gpu.yaml"]}


class _Parser(Exception):
    pass


class _ParserOnly(SeqClsCLI):
    """Builds the CLI's parser and hands it over instead of parsing (nothing is instantiated)."""

    def parse_arguments(self, parser, args) -> None:
        raise _Parser(parser)


@pytest.fixture(scope="module")
def parse():
    load_datamodule_plugins()
    kwargs = cli_kwargs()
    for subcommand in SUBCOMMANDS:  # a bad config raises, not exits
        kwargs["parser_kwargs"][subcommand]["exit_on_error"] = False
    kwargs["parser_kwargs"]["exit_on_error"] = False  # the main parser's
    with pytest.raises(_Parser) as built:
        _ParserOnly(SequenceClassifier, L.LightningDataModule, **kwargs, args=[])
    parser = built.value.args[0]

    def parse_fit(*configs: Path | str, args: tuple[str, ...] = ()):
        configs_args = [a for c in configs for a in ("--config", str(c))]
        return parser.parse_args(["fit", *configs_args, *args]).fit

    return parse_fit


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _leaves(node, at=()):
    """(path, value) of every setting in a YAML tree; ``class_path`` is structure, not a value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "class_path":
                yield from _leaves(value, (*at, key))
    elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        for i, value in enumerate(node):
            yield from _leaves(value, (*at, i))
    else:
        yield at, node


def _without(tree: dict, path: tuple) -> dict:
    tree = copy.deepcopy(tree)
    parents = [tree]
    for key in path[:-1]:
        parents.append(parents[-1][key])
    del parents[-1][path[-1]]
    if path[-2:-1] == ("init_args",) and not parents[-1]:
        del parents[-2]["init_args"]  # `init_args: {}` left behind: drop it too
    return tree


def _get(config, path: tuple):
    for key in path:
        config = config[key] if isinstance(key, int) else config[key.removesuffix("+")]
    return config


def test_the_cli_defaults_differ_from_lightnings():
    trainer = inspect.signature(L.Trainer).parameters
    for key, value in yaml.safe_load(DEFAULTS.read_text())["trainer"].items():
        assert value != trainer[key].default, f"{_name(DEFAULTS)}: {key} is Lightning's default"


def _callbacks(fit) -> list[str]:
    return [c.class_path.rsplit(".", 1)[-1] for c in fit.trainer.callbacks or []]


def test_every_fit_stops_early_by_default_and_can_opt_out(parse):
    # Small user data needs many epochs, IMDB few: early stopping under a cap serves both (#17).
    fit = parse(ROOT / "data/synthetic.yaml")
    assert _callbacks(fit) == ["EarlyStopping"]
    assert fit.trainer.callbacks[0].init_args["monitor"] == "val/acc"
    assert fit.trainer.callbacks[0].init_args["patience"] == 3
    analysis = parse(ROOT / "data/synthetic.yaml", ROOT / "callbacks/analysis.yaml")
    assert _callbacks(analysis)[0] == "EarlyStopping" and len(_callbacks(analysis)) > 1
    off = parse(ROOT / "data/synthetic.yaml", args=("--trainer.callbacks=[]",))
    assert _callbacks(off) == []


@pytest.mark.parametrize("config", [c for c in CLI_CONFIGS if c != DEFAULTS], ids=_name)
def test_no_shipped_config_restates_a_default(config, parse):
    name = _name(config)
    before = LAYERED_AFTER.get(name, LAYERED_AFTER.get(config.parent.name, [DATA]))
    if name.startswith("experiment/"):  # complete after its dataset's data config
        before = [ROOT / "data" / f"{name.split('/')[1]}.yaml"]
    tree = yaml.safe_load(config.read_text())
    parsed = parse(*before, config)
    restated = []
    for path, value in _leaves(tree):
        try:
            default = _get(parse(*before, yaml.safe_dump(_without(tree, path))), path)
        except (ArgumentError, TypeError, ValueError, KeyError):  # a bad config, or a missing key
            continue  # a required setting (no default), or the structure needs it
        if _get(parsed, path) == default:
            restated.append(f"{'.'.join(map(str, path))}: {value!r}")
    assert not restated, f"{name} restates defaults (drop these lines): {restated}"


def test_no_shipped_config_sets_the_ddp_timeout_the_cli_applies(parse):
    # lit_seqcls.runtime.shutdown.bound_ddp_timeout gives any DDPStrategy left at torch's default
    # this timeout after parsing, so a config stating it restates a default the parser cannot see.
    for config in CLI_CONFIGS:
        strategy = yaml.safe_load(config.read_text()).get("trainer", {}).get("strategy")
        if isinstance(strategy, dict) and "timeout" in strategy.get("init_args", {}):
            timeout = parse(DATA, config).trainer.strategy.init_args.timeout
            assert timeout != DEFAULT_DDP_TIMEOUT, f"{_name(config)}: the CLI applies {timeout}"
    assert timedelta(minutes=30) > DEFAULT_DDP_TIMEOUT  # torch's default, which the CLI bounds


def test_the_encoder_sweep_lists_every_encoder():
    sweep = yaml.safe_load((ROOT / "sweeps" / "encoders_synthetic.yaml").read_text())
    listed = sweep["parameters"]["model.encoder"]["values"]
    assert sorted(listed) == sorted(f"lit_seqcls.encoders.{c.__name__}" for c in ENCODERS.values())


def test_the_sweeps_name_shipped_configs_that_exist():
    for sweep in SWEEPS:
        command = yaml.safe_load(sweep.read_text())["command"]
        named = [c for prev, c in itertools.pairwise(command) if prev == "--config"]
        assert named and all(c.startswith("lit_seqcls:") for c in named), sweep.name
        assert all((ROOT / c.removeprefix("lit_seqcls:")).is_file() for c in named), sweep.name
