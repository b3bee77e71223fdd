"""Text encoders: embedded tokens ``(B, T, E)`` to one vector per text ``(B, output_dim)``.

Each encoder lives in its own module behind the small ``Encoder`` base. ``ENCODERS`` names them
as ``--model.encoder`` spells them; ``resolve`` builds one from a name, a class path or a factory,
and ``spec`` gives the plain data that builds it again (``encoders/registry.py``).
"""

from lit_seqcls.encoders.attention import AttentionEncoder
from lit_seqcls.encoders.base import Encoder
from lit_seqcls.encoders.bilstm import BiLSTMEncoder
from lit_seqcls.encoders.cnn import CNNEncoder
from lit_seqcls.encoders.gru import GRUEncoder
from lit_seqcls.encoders.lstm import LSTMEncoder
from lit_seqcls.encoders.registry import ENCODERS, EncoderFactory, EncoderSpec, resolve, spec
from lit_seqcls.encoders.rnn import RNNEncoder
from lit_seqcls.encoders.swem import SWEMEncoder

__all__ = [
    "ENCODERS",
    "AttentionEncoder",
    "BiLSTMEncoder",
    "CNNEncoder",
    "Encoder",
    "EncoderFactory",
    "EncoderSpec",
    "GRUEncoder",
    "LSTMEncoder",
    "RNNEncoder",
    "SWEMEncoder",
    "resolve",
    "spec",
]
