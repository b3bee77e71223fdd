"""Constructor checks that fail at the boundary, with a message a person can act on.

A bad value (``hidden_size=0``, ``dropout=1.5``) otherwise surfaces as a shape or index error deep
inside torch, far from the flag that caused it. Each helper here checks one value, names the
argument, the allowed range and the value it got, and returns the value so a constructor can write
``self.hidden_size = require_positive_int("hidden_size", hidden_size)``.

``ConfigValueError`` is a ``ValueError``, so existing ``except ValueError`` code keeps working; the
CLI prints it as one line instead of a traceback.

Example:
    >>> require_positive_int("hidden_size", 16)
    16
    >>> require_positive_int("hidden_size", 0)
    Traceback (most recent call last):
        ...
    lit_seqcls.validation.ConfigValueError: hidden_size must be a positive integer, got 0
    >>> require_fraction("dropout", 1.0)
    Traceback (most recent call last):
        ...
    lit_seqcls.validation.ConfigValueError: dropout must be a number in [0, 1), got 1.0
"""

from __future__ import annotations

import argparse
import math
from numbers import Integral, Real

from lit_seqcls.errors import UserError

__all__ = [
    "ConfigValueError",
    "integers_name_classes",
    "require_fraction",
    "require_non_negative",
    "require_non_negative_int",
    "require_open_fraction",
    "require_positive_int",
    "require_positive_ints",
]


class ConfigValueError(ValueError, UserError):
    """A constructor or config argument outside its allowed range; the message names all three."""


def _is_int(value: object) -> bool:
    # bool is an int subclass, but ``hidden_size=True`` is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def require_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer ``>= 1``, else raise ``ConfigValueError``.

    Example:
        >>> require_positive_int("num_layers", 2)
        2
    """
    if not _is_int(value) or value < 1:
        raise ConfigValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def require_positive_ints(name: str, values: object) -> tuple[int, ...]:
    """Return ``values`` as a tuple if it is a non-empty sequence of integers ``>= 1``, else raise.

    A bare integer is refused rather than wrapped: ``kernel_sizes=3`` is a slip for ``(3,)``.

    Example:
        >>> require_positive_ints("kernel_sizes", [3, 4])
        (3, 4)
        >>> require_positive_ints("sizes", (3, 0))
        Traceback (most recent call last):
            ...
        lit_seqcls.validation.ConfigValueError: sizes must be one or more positive ... got (3, 0)
    """
    if (
        not isinstance(values, list | tuple)
        or not values
        or not all(_is_int(v) and v >= 1 for v in values)
    ):
        raise ConfigValueError(f"{name} must be one or more positive integers, got {values!r}")
    return tuple(int(v) for v in values)


def require_non_negative(name: str, value: object) -> float:
    """Return ``value`` if it is a finite number ``>= 0``, else raise ``ConfigValueError``.

    Example:
        >>> require_non_negative("weight_decay", 0.0)
        0.0
    """
    if not _is_real(value) or value < 0:
        raise ConfigValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def require_fraction(name: str, value: object) -> float:
    """Return ``value`` if ``0 <= value < 1`` (a dropout probability), else raise.

    1 is excluded: dropout 1 zeroes every unit, so nothing is learnt.

    Example:
        >>> require_fraction("dropout", 0.5)
        0.5
    """
    if not _is_real(value) or not 0 <= value < 1:
        raise ConfigValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return value


def require_non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer ``>= 0`` (a count or a seed), else raise.

    Example:
        >>> require_non_negative_int("num_workers", -1)
        Traceback (most recent call last):
            ...
        lit_seqcls.validation.ConfigValueError: num_workers must be an integer >= 0, got -1
    """
    if not _is_int(value) or value < 0:
        raise ConfigValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def require_open_fraction(name: str, value: object) -> float:
    """Return ``value`` if ``0 < value < 1`` (a share of the data that leaves some on both sides).

    Example:
        >>> require_open_fraction("val_fraction", 0.0)
        Traceback (most recent call last):
            ...
        lit_seqcls.validation.ConfigValueError: val_fraction must be a number in (0, 1), got 0.0
    """
    if not _is_real(value) or not 0 < value < 1:
        raise ConfigValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return value


def parse_bool(value: str) -> bool:
    """An ``argparse`` type for ``--flag true|false`` (also ``1/0``, ``yes/no``).

    Example:
        >>> parse_bool("True"), parse_bool("0")
        (True, False)
    """
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def integers_name_classes(class_names: list[str]) -> bool:
    """Whether an integer label *names* its class (``2`` is class ``"2"``) rather than indexing it.

    True when a class name is an integer written out: classes read from integer labels (star
    ratings 1..5, or half stars 0.5..5.0) are named so, and the same labels read back as indices
    would shift, scoring texts against another class. Class names such as ``neg``, ``pos`` (a
    hub ``ClassLabel``, or ``class_names`` given) make integers indices. The one rule for every
    reader of labels: a DataModule's splits and ``export --eval_data``.

    Example:
        >>> integers_name_classes(["1", "2", "5"]), integers_name_classes(["0.5", "1", "1.5"])
        (True, True)
        >>> integers_name_classes(["neg", "pos"])
        False
    """
    return any(_integer_name(name) for name in class_names)


def _integer_name(name: str) -> bool:
    try:
        return str(int(name)) == name
    except ValueError:
        return False
