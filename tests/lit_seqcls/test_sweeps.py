"""W&B sweep configs: the command line an agent generates parses with ``lit-seqcls fit``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from lit_seqcls.cli import main

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))
DDP_CPU = ["--config", "configs/trainer/ddp_cpu.yaml"]


def _agent_command(sweep: dict) -> tuple[list[str], dict]:
    """What ``wandb agent`` runs for one point of the sweep: ``${args}`` → ``--key=value``."""
    point = {}
    for key, spec in sweep["parameters"].items():
        point[key] = spec["values"][-1] if "values" in spec else spec.get("value", spec.get("min"))
    args = [f"--{key}={value}" for key, value in point.items()]
    command = [a for part in sweep["command"] for a in (args if part == "${args}" else [part])]
    return [a for a in command if a not in ("${env}", "${interpreter}")], point


def _lookup(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config[key]
    return config


def test_there_are_sweeps():
    assert SWEEPS


@pytest.mark.parametrize("ddp", [False, True], ids=["single", "ddp"])
@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_agent_command_line_parses_with_print_config(path, ddp, monkeypatch, capsys):
    sweep = yaml.safe_load(path.read_text())
    command, point = _agent_command(sweep)
    assert command[:2] == [sweep["program"], "fit"] == ["lit-seqcls", "fit"]
    monkeypatch.chdir(ROOT)  # the agent runs from the project root; --print_config writes nothing
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as exit_:
        main([*command[1:], *(DDP_CPU if ddp else []), "--print_config"])
    assert exit_.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    for key, value in point.items():
        got = _lookup(config, key)
        assert got == value or got.get("class_path") == value, key
    strategy = _lookup(config, "trainer.strategy")
    if ddp:  # a DDPStrategy with a bounded process-group timeout (configs/trainer/ddp_cpu.yaml)
        assert strategy["class_path"].endswith("DDPStrategy")
    else:
        assert strategy == "auto"
    assert sweep["metric"]["name"] in ("val/acc", "val/f1_macro", "val/loss")
