"""What a config or a checkpoint may name: classes of the expected kind, never a function.

A config file, a command line and a checkpoint's ``hyper_parameters`` are plain data, but
jsonargparse *calls* whatever a ``class_path`` names when it instantiates a config, and for a
``Callable``-typed argument (``SequenceClassifier.encoder``, ``optimizer``, ``lr_scheduler``) it
accepts a function as well as a class: ``{"class_path": "os.system", "init_args": {"command":
"..."}}`` would run a shell command. For a *class* jsonargparse already checks that it subclasses
the declared base, so one rule closes the hole everywhere: every ``class_path`` must name a class;
where the place is known (the model's encoder, optimizer and scheduler) it must also subclass the
base that place declares. ``check_untrusted`` applies the rule to any nested data, before it is
parsed or instantiated; ``check_checkpoint_hparams`` also checks that a checkpoint's
hyper-parameters are plain data with the model's argument names. See docs/security.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import ArgumentError, ArgumentParser
from lightning import LightningDataModule, LightningModule
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lit_seqcls.checkpoints import TEXT_PIPELINE_KEY
from lit_seqcls.class_paths import class_problem
from lit_seqcls.encoders import Encoder
from lit_seqcls.errors import UserError

CLASS_PATH_KEYS = ("class_path", "_class_path")
# The places whose declared base is known, as key paths inside the model's arguments.
MODEL_BASES: dict[str, tuple[type, ...]] = {
    "encoder": (Encoder,),
    "optimizer": (torch.optim.Optimizer,),
    "lr_scheduler": (LRScheduler, ReduceLROnPlateau),
}
# ... and inside a whole CLI config (with or without the subcommand in front).
CONFIG_BASES: dict[str, tuple[type, ...]] = {
    **{f"model.{key}": bases for key, bases in MODEL_BASES.items()},
    "data": (LightningDataModule,),
}
_PLAIN = (type(None), bool, int, float, str)
# What LightningCLI writes into the hyper-parameters so `load_from_checkpoint` can rebuild a model
# configured by class paths; no other value is accepted from a file.
LIGHTNING_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


class UntrustedInputError(ValueError, UserError):
    """A config or checkpoint names something that could run code, or is not plain data."""


def check_untrusted(
    data: Any,
    source: str,
    bases: Mapping[str, tuple[type, ...]] | None = None,
    only_known: bool = False,
) -> None:
    """Refuse ``data`` if any ``class_path`` in it is not a class (of the expected base).

    Args:
        data: nested dicts / lists / jsonargparse Namespaces, as read from a file or parsed.
        source: what ``data`` came from, for the message (``"config model.yaml"``).
        bases: key path (dotted, lists not counted) → the classes the class there must subclass;
            default ``CONFIG_BASES``.
        only_known: refuse a ``class_path`` anywhere but at a key of ``bases`` (a checkpoint's
            hyper-parameters have no other place for one).

    Raises:
        UntrustedInputError: naming ``source``, the key and what it names.

    Example:
        >>> gru = {"class_path": "lit_seqcls.encoders.GRUEncoder"}
        >>> check_untrusted({"model": {"encoder": gru}}, "config a.yaml")  # a class: fine
        >>> check_untrusted({"model": {"encoder": {"class_path": "os.system"}}}, "config a.yaml")
        Traceback (most recent call last):
        ...
        lit_seqcls.trust.UntrustedInputError: Refusing config a.yaml: model.encoder.class_path ...
    """
    bases = CONFIG_BASES if bases is None else bases
    for key, value in _class_paths(data, ""):
        expected = _expected(key, bases)
        if only_known and not expected:
            problem = "is not a place where a class can be named"
        else:
            problem = class_problem(value, expected)
        if problem is not None:
            raise UntrustedInputError(
                f"Refusing {source}: {key} {problem}. A config or checkpoint may only name "
                "classes of the kind expected there; nothing was loaded or run. Do not use "
                "files from a source you do not trust."
            )


def check_checkpoint_hparams(
    checkpoint: Mapping[str, Any], path: str | Path, model_class: type[LightningModule]
) -> None:
    """Refuse a checkpoint whose hyper-parameters are not the model's arguments as plain data.

    Checked before Lightning's CLI or ``load_from_checkpoint`` parses them: the keys must be
    ``model_class``'s arguments (plus Lightning's ``_instantiator``), the values plain data
    (``None``, bool, numbers, str, lists, dicts), and every ``class_path`` a class of the base
    its place declares (``check_untrusted``). The text pipeline's ``datamodule`` must name a
    ``LightningDataModule`` class.

    Args:
        checkpoint: the loaded checkpoint.
        path: where it came from, for the message.
        model_class: the model the checkpoint must rebuild (``SequenceClassifier``); the caller
            passes it, so this module does not import the model that imports it.
    """
    source = f"checkpoint {path}"
    hparams = checkpoint.get("hyper_parameters", {})
    if not isinstance(hparams, Mapping):
        _refuse(source, "hyper_parameters", f"is a {type(hparams).__name__}, not a dictionary")
    allowed = set(inspect.signature(model_class.__init__).parameters) - {"self"}
    name = model_class.__name__
    for key in hparams:
        if key not in allowed | {"_instantiator"}:
            _refuse(source, f"hyper_parameters.{key}", f"is not an argument of {name}")
    for key, value in _leaves(hparams, "hyper_parameters"):
        if not isinstance(value, _PLAIN):
            _refuse(source, key, f"holds a {type(value).__name__}, not plain data")
    bases = {f"hyper_parameters.{key}": classes for key, classes in MODEL_BASES.items()}
    bases["hyper_parameters"] = (model_class,)  # `_class_path` at its root
    check_untrusted({"hyper_parameters": hparams}, source, bases, only_known=True)
    instantiator = hparams.get("_instantiator", LIGHTNING_INSTANTIATOR)
    if instantiator != LIGHTNING_INSTANTIATOR:
        _refuse(source, "hyper_parameters._instantiator", f"names {instantiator!r}")
    _parse_as_arguments(model_class, hparams, source)
    pipeline = checkpoint.get(TEXT_PIPELINE_KEY)
    if isinstance(pipeline, Mapping) and "datamodule" in pipeline:
        problem = class_problem(pipeline["datamodule"], (LightningDataModule,))
        if problem is not None:
            _refuse(source, f"{TEXT_PIPELINE_KEY}.datamodule", problem)


def read_config_file(path: str | Path) -> Any:
    """A YAML config file as data; a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigFileError(
            f"config {path}{where} is not valid YAML ({problem}); fix the file and run again."
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigFileError(f"config {path} is not UTF-8 text ({err.reason})") from None


class ConfigFileError(ValueError, UserError):
    """A ``--config`` file that cannot be read as YAML."""


def _parse_as_arguments(cls: type, hparams: Mapping[str, Any], source: str) -> None:
    """Type-check ``hparams`` against ``cls``'s signature; parsing imports but never calls."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, fail_untyped=False)
    given = {key: value for key, value in hparams.items() if not key.startswith("_")}
    try:
        parser.parse_object(given, defaults=True)
    except ArgumentError as err:
        detail = " ".join(str(err).split())
        _refuse(source, "hyper_parameters", f"do not fit {cls.__name__}'s arguments ({detail})")


def _refuse(source: str, key: str, problem: str) -> None:
    raise UntrustedInputError(
        f"Refusing {source}: {key} {problem}; nothing was loaded or run. Do not use files from "
        "a source you do not trust."
    )


def _class_paths(data: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every ``class_path`` in ``data``, depth first."""
    if hasattr(data, "as_dict") and callable(data.as_dict):  # a jsonargparse Namespace
        data = data.as_dict()
    if isinstance(data, Mapping):
        for key, value in data.items():
            here = f"{where}.{key}" if where else str(key)
            if key in CLASS_PATH_KEYS:
                yield here, value
            else:
                yield from _class_paths(value, here)
    elif isinstance(data, list | tuple):
        for value in data:  # list positions are not part of the key: bases apply to all items
            yield from _class_paths(value, where)


def _leaves(data: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                yield f"{where}[{key!r}]", key
            yield from _leaves(value, f"{where}.{key}")
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _leaves(value, f"{where}[{i}]")
    else:
        yield where, data


def _expected(key: str, bases: Mapping[str, tuple[type, ...]]) -> tuple[type, ...]:
    """The bases for the ``class_path`` at ``key`` (``fit.model.encoder.class_path`` too)."""
    owner = key.rpartition(".")[0]
    for place, classes in bases.items():
        if owner == place or (place and owner.split(".", 1)[-1] == place):
            return classes
    return ()
