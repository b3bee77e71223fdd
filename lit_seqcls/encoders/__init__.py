"""Text encoders: embedded tokens ``(B, T, E)`` to one vector per text ``(B, output_dim)``.

Each encoder lives in its own module behind the small ``Encoder`` base. ``build_encoder`` makes one
from its short name, as the ``--model.encoder`` names in the configs and docs spell them.
"""

from __future__ import annotations

from typing import Any

from lit_seqcls.encoders.attention import AttentionEncoder
from lit_seqcls.encoders.base import Encoder
from lit_seqcls.encoders.bilstm import BiLSTMEncoder
from lit_seqcls.encoders.cnn import CNNEncoder
from lit_seqcls.encoders.gru import GRUEncoder
from lit_seqcls.encoders.lstm import LSTMEncoder
from lit_seqcls.encoders.rnn import RNNEncoder
from lit_seqcls.encoders.swem import SWEMEncoder
from lit_seqcls.validation import ConfigValueError

__all__ = [
    "ENCODERS",
    "AttentionEncoder",
    "BiLSTMEncoder",
    "CNNEncoder",
    "Encoder",
    "GRUEncoder",
    "LSTMEncoder",
    "RNNEncoder",
    "SWEMEncoder",
    "build_encoder",
]

ENCODERS: dict[str, type[Encoder]] = {
    "rnn": RNNEncoder,
    "gru": GRUEncoder,
    "lstm": LSTMEncoder,
    "bilstm": BiLSTMEncoder,
    "attention": AttentionEncoder,
    "cnn": CNNEncoder,
    "swem": SWEMEncoder,
}


def build_encoder(name: str, input_size: int, **kwargs: Any) -> Encoder:
    """Build the encoder called ``name`` (a key of ``ENCODERS``).

    Args:
        name: one of ``rnn``, ``gru``, ``lstm``, ``bilstm``, ``attention``, ``cnn``, ``swem``.
        input_size: embedding size ``E``.
        **kwargs: the encoder's own constructor arguments, e.g. ``hidden_size``.

    Raises:
        ConfigValueError: for an unknown name; the message lists the valid ones.

    Example:
        >>> build_encoder("bilstm", 8, hidden_size=16).output_dim
        32
    """
    try:
        cls = ENCODERS[name]
    except KeyError:
        valid = ", ".join(repr(n) for n in ENCODERS)
        raise ConfigValueError(f"unknown encoder {name!r}; choose one of {valid}") from None
    return cls(input_size, **kwargs)
