"""The encoder registry and the one way to build an encoder from a spec.

``resolve`` is the only place that turns what a user gives (a short name, a class path, a
``{class_path, init_args}`` dictionary, or a factory) into an ``Encoder``; ``spec`` is its inverse,
the plain data saved in a checkpoint's hyper-parameters. The contract tests are generated from
``ENCODERS``, so an encoder registered here is tested like the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lit_seqcls.class_paths import class_problem, locate
from lit_seqcls.encoders.attention import AttentionEncoder
from lit_seqcls.encoders.base import Encoder
from lit_seqcls.encoders.bilstm import BiLSTMEncoder
from lit_seqcls.encoders.cnn import CNNEncoder
from lit_seqcls.encoders.gru import GRUEncoder
from lit_seqcls.encoders.lstm import LSTMEncoder
from lit_seqcls.encoders.rnn import RNNEncoder
from lit_seqcls.encoders.swem import SWEMEncoder
from lit_seqcls.validation import ConfigValueError

ENCODERS: dict[str, type[Encoder]] = {
    "rnn": RNNEncoder,
    "gru": GRUEncoder,
    "lstm": LSTMEncoder,
    "bilstm": BiLSTMEncoder,
    "attention": AttentionEncoder,
    "cnn": CNNEncoder,
    "swem": SWEMEncoder,
}

EncoderFactory = Callable[[int], Encoder]
"""Builds an encoder from the embedding size: ``functools.partial(LSTMEncoder, hidden_size=64)``.

On the command line / in YAML it is a ``class_path`` plus ``init_args`` without ``input_size``.
"""

EncoderSpec = str | Mapping[str, Any] | EncoderFactory
"""A name (``"gru"``), a class path, ``{"class_path": ..., "init_args": {...}}`` or a factory."""


def resolve(encoder: EncoderSpec, input_size: int) -> Encoder:
    """Build the encoder ``encoder`` describes for embeddings of size ``input_size``.

    Raises:
        ConfigValueError: an unknown name (the message lists the registered ones), a class path
            that does not name an ``Encoder`` class, or a factory that returns something else.

    Example:
        >>> resolve("bilstm", 8).output_dim
        512
        >>> spec = {"class_path": "lit_seqcls.encoders.GRUEncoder", "init_args": {"hidden_size": 4}}
        >>> resolve(spec, 8).output_dim
        4
    """
    if isinstance(encoder, str) and "." not in encoder:
        if encoder not in ENCODERS:
            names = ", ".join(repr(n) for n in ENCODERS)
            raise ConfigValueError(
                f"unknown encoder {encoder!r}; choose one of {names} or give a class_path"
            )
        return ENCODERS[encoder](input_size)
    if isinstance(encoder, str):
        encoder = {"class_path": encoder}
    if isinstance(encoder, Mapping):
        path, init_args = encoder.get("class_path"), encoder.get("init_args", {})
        problem = class_problem(path, (Encoder,))
        if problem is not None or not isinstance(init_args, Mapping):
            problem = problem or f"has init_args {init_args!r}, not a dictionary"
            raise ConfigValueError(f"encoder {problem}")
        return locate(path)(input_size, **init_args)
    if not callable(encoder):
        raise ConfigValueError(
            f"encoder must be a name ({', '.join(ENCODERS)}), a class path, a "
            f"{{class_path, init_args}} dictionary or an Encoder factory; got {encoder!r}"
        )
    built = encoder(input_size)
    if not isinstance(built, Encoder):
        raise ConfigValueError(
            f"the encoder factory returned {type(built).__name__}, not an Encoder"
        )
    return built


def spec(encoder: Encoder) -> dict[str, Any]:
    """The plain data ``resolve`` turns back into an encoder like ``encoder`` (same arguments).

    Example:
        >>> spec(resolve(lambda size: CNNEncoder(size, num_filters=5), 8))
        {'class_path': 'lit_seqcls.encoders.cnn.CNNEncoder', 'init_args': {'num_filters': 5}}
    """
    cls = type(encoder)
    return {
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": dict(getattr(encoder, "_init_args", {})),
    }
