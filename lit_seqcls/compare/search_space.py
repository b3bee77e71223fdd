"""The search space of ``lit-seqcls compare --tune``: one YAML file per encoder, checked on load.

A file maps a parameter name to its range and the ``fit`` key it sets::

    lr:
      type: float            # float | int | categorical
      low: 1.0e-4
      high: 1.0e-2
      log: true              # sample the logarithm (float, int); optional
      flag: model.optimizer.init_args.lr
    hidden_size:
      type: categorical
      choices: [64, 128, 256]
      flag: model.encoder.init_args.hidden_size

``float`` and ``int`` take ``low`` and ``high`` (both included) and optionally ``log`` or ``step``;
``categorical`` takes ``choices``, a list of plain values (numbers, strings, booleans). ``flag``
is the key as on the command line, without the ``--``. The shipped files are
``lit_seqcls/configs/tune/<encoder>.yaml``. Every problem is a ``SearchSpaceError`` naming the
file and the key, raised before any trial runs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lit_seqcls.encoders import ENCODERS
from lit_seqcls.errors import UserError
from lit_seqcls.model import SequenceClassifier

TYPES = ("float", "int", "categorical")
_KEYS = {
    "float": {"type", "low", "high", "log", "step", "flag"},
    "int": {"type", "low", "high", "log", "step", "flag"},
    "categorical": {"type", "choices", "flag"},
}
ENCODER_ARGS = "model.encoder.init_args."
# What compare sets itself, or what would give one encoder a larger budget than another.
OWNED_FLAGS = (
    "seed_everything", "model.encoder", "model.encoder.class_path", "trainer.default_root_dir",
    "trainer.callbacks", "trainer.max_epochs", "trainer.min_epochs", "trainer.max_steps",
    "trainer.min_steps", "trainer.max_time", "trainer.limit_train_batches",
    "trainer.limit_val_batches", "trainer.val_check_interval", "trainer.check_val_every_n_epoch",
)  # fmt: skip


class SearchSpaceError(ValueError, UserError):
    """A search-space file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Param:
    """One searched setting: its name in the study, its range and the ``fit`` key it sets."""

    name: str
    type: str
    flag: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter for an Optuna ``trial``."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(self.name, self.low, self.high, step=step, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def space_file(encoder: str, folder: str | Path | None = None) -> Path:
    """The search-space file of ``encoder``: ``<folder>/<encoder>.yaml``, the shipped one by
    default."""
    root = (
        Path(str(resources.files("lit_seqcls") / "configs" / "tune")) if folder is None else folder
    )
    return Path(root) / f"{encoder}.yaml"


def load_space(path: str | Path, encoder: str) -> list[Param]:
    """Read and check the search space in ``path`` for ``encoder`` (a key of ``ENCODERS``).

    Example:
        >>> space = load_space(space_file("cnn"), "cnn")
        >>> {p.name: p.flag for p in space}["num_filters"]
        'model.encoder.init_args.num_filters'
    """
    path = Path(path)
    if not path.is_file():
        raise SearchSpaceError(
            f"{path}: no search space for encoder {encoder!r}. Write one (see "
            f"{space_file(encoder).parent} for the shipped ones) or leave {encoder} out of --tune."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SearchSpaceError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict) or not raw:
        raise SearchSpaceError(
            f"{path}: a search space is a mapping of parameter names to ranges "
            "(name: {type: float, low: ..., high: ..., flag: ...}); got "
            f"{type(raw).__name__ if raw else 'nothing'}."
        )
    params = [_param(path, str(name), spec, encoder) for name, spec in raw.items()]
    first: dict[str, str] = {}
    for param in params:
        if param.flag in first:
            raise SearchSpaceError(
                f"{path}: {param.name}.flag: {param.flag} is already set by {first[param.flag]}."
            )
        first[param.flag] = param.name
    return params


def _param(path: Path, name: str, spec: Any, encoder: str) -> Param:
    def refuse(key: str, problem: str) -> SearchSpaceError:
        return SearchSpaceError(f"{path}: {name}.{key}: {problem}")

    if not isinstance(spec, dict):
        raise refuse("type", f"expected a mapping with type, flag and a range; got {spec!r}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise refuse("type", f"must be one of {', '.join(TYPES)}; got {kind!r}")
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise refuse(
            unknown[0], f"not a key of a {kind} parameter ({', '.join(sorted(_KEYS[kind]))})"
        )
    flag = _flag(spec.get("flag"), encoder, refuse)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise refuse("choices", f"must be a non-empty list; got {choices!r}")
        plain = (bool, int, float, str, type(None))
        if not all(isinstance(c, plain) for c in choices):
            raise refuse("choices", f"must hold plain values (numbers, strings); got {choices!r}")
        return Param(name, kind, flag, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    for key in ("low", "high"):
        value = spec.get(key)
        if not isinstance(value, number) or isinstance(value, bool):
            raise refuse(
                key, f"must be {'an integer' if kind == 'int' else 'a number'}; got {value!r}"
            )
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not low < high:
        raise refuse("high", f"must be larger than low ({low}); got {high}")
    if not isinstance(log, bool):
        raise refuse("log", f"must be true or false; got {log!r}")
    if log and low <= 0:
        raise refuse("low", f"must be positive with log: true; got {low}")
    if step is not None and (log or not isinstance(step, number) or step <= 0):
        raise refuse("step", f"must be a positive number, and not used with log; got {step!r}")
    return Param(name, kind, flag, low=low, high=high, log=log, step=step)


def _flag(flag: Any, encoder: str, refuse) -> str:
    if not isinstance(flag, str) or not flag.strip("-"):
        raise refuse("flag", f"must be a fit key such as model.dropout; got {flag!r}")
    flag = flag.lstrip("-")
    if flag in OWNED_FLAGS:
        raise refuse("flag", f"{flag} is set by compare (or is the budget, equal for all encoders)")
    if flag.startswith(ENCODER_ARGS):
        accepted = inspect.signature(ENCODERS[encoder]).parameters
        arg = flag[len(ENCODER_ARGS) :]
        if arg not in accepted or arg == "input_size":
            names = ", ".join(a for a in accepted if a != "input_size")
            raise refuse("flag", f"{ENCODERS[encoder].__name__} has no argument {arg!r} ({names})")
    elif flag.startswith("model."):
        top = flag.split(".")[1]
        if top not in inspect.signature(SequenceClassifier).parameters:
            raise refuse("flag", f"SequenceClassifier has no argument {top!r}")
    elif flag.split(".")[0] not in ("model", "data", "trainer"):
        raise refuse("flag", f"must start with model., data. or trainer.; got {flag!r}")
    return flag
