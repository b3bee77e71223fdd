"""Class paths: the one way lit-seqcls turns ``"a.b.C"`` into a class.

Used by the encoder registry (``encoders.resolve``) and by the trust boundary (``trust``), so a
config, a checkpoint and a Python caller are held to the same rule: a class path names a class,
of the kind its place expects, never a function or another object.
"""

from __future__ import annotations

import importlib
from typing import Any


def locate(dotted: str) -> Any:
    """The object ``a.b.C`` names: the longest importable module prefix, then attributes.

    Raises:
        ImportError: no prefix of ``dotted`` is a module.
        AttributeError: the module has no such attribute.

    Example:
        >>> locate("collections.OrderedDict").__name__
        'OrderedDict'
    """
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def class_problem(value: Any, bases: tuple[type, ...] = ()) -> str | None:
    """Why ``value`` is not a class path of a subclass of ``bases`` (``None`` if it is one).

    The reason reads after the place's name: ``f"encoder {problem}"``.

    Example:
        >>> class_problem("collections.OrderedDict", (dict,)) is None
        True
        >>> class_problem("os.system")
        "names 'os.system', a function, not a class"
    """
    if not isinstance(value, str) or not value.strip():
        return f"is {value!r}, not a class path"
    try:
        obj = locate(value)
    except (ImportError, AttributeError, ValueError):
        return f"names {value!r}, which does not exist here"
    if not isinstance(obj, type):
        kind = "a function" if callable(obj) else f"a {type(obj).__name__}"
        return f"names {value!r}, {kind}, not a class"
    if bases and not issubclass(obj, bases):
        names = " or ".join(b.__name__ for b in bases)
        return f"names {value!r}, which is not a subclass of {names}"
    return None
