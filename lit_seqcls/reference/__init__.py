"""NumPy float64 reference implementations of every encoder, forward and backward, as an oracle.

Written from the equations, not from torch: the tests load a torch encoder's weights into the
matching class here and check pooled outputs and every gradient against autograd; the backward
passes here are themselves checked by finite differences. Nothing in training uses this package.

Each class takes its parameters keyed exactly as the torch module's ``named_parameters()`` and
returns gradients under the same keys:

============================  ===========================================  ===================
reference                     torch module                                 keys
============================  ===========================================  ===================
``RecurrentReference``        ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (an        ``weight_ih_l0``,
                              encoder's ``.rnn``)                          ``bias_hh_l1_reverse``
``AttentionPoolingReference`` ``encoders.attention.AdditiveAttention``     ``proj.weight``, ...
``AttentionEncoderReference`` ``encoders.AttentionEncoder``                ``lstm.*``, ...
``CNNReference``              ``encoders.CNNEncoder``                      ``convs.0.weight``, ...
``SWEMReference``             ``encoders.SWEMEncoder``                     (no parameters)
``NetworkReference``          ``network.TextClassifierNetwork`` (forward)  ``embedding.weight``,
                                                                           ``head.weight``, ...
============================  ===========================================  ===================

How torch lays out the recurrent parameters (layer ``k``; the suffix ``_reverse`` marks the
right-to-left direction; ``H`` is the hidden size, ``G`` the number of gate blocks):

- ``weight_ih_lk`` ``(G*H, E_k)`` and ``weight_hh_lk`` ``(G*H, H)`` stack the gate blocks row-wise;
  ``E_0`` is the embedding size, deeper layers read both directions' outputs, ``E_k = D*H``.
- Every gate has two biases, ``b_ih`` and ``b_hh`` (``bias_ih_lk``, ``bias_hh_lk``, ``(G*H,)``).
  Where they are simply added, only their sum matters and their gradients are equal.
- RNN (``G = 1``): ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``.
- LSTM (``G = 4``, block order **i, f, g, o**)::

      i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
      g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
      c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')

- GRU (``G = 3``, block order **r, z, n**); ``b_hn`` sits *inside* the reset product, so the two
  candidate biases are not interchangeable (their gradients differ by the factor ``r``)::

      r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
      n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
      h' = (1 - z) ⊙ n + z ⊙ h

What the encoders compute, and so what the oracle models: the recurrences run over the real
tokens only (packed sequences), from a zero state. The forward direction reads tokens
``0 .. len-1``; the backward direction starts at each text's *last real token* ``len-1`` and reads
back to 0, so padding never enters either. The per-token outputs are 0 on padding; the pooled
vector of a recurrent encoder is the last layer's final ``h`` of each direction, concatenated
(forward first). Dropout between layers is left out: the oracle is the network in eval mode.
"""

from lit_seqcls.reference.attention import AttentionEncoderReference, AttentionPoolingReference
from lit_seqcls.reference.cnn import CNNReference
from lit_seqcls.reference.network import NetworkReference
from lit_seqcls.reference.recurrent import RecurrentReference
from lit_seqcls.reference.swem import SWEMReference

__all__ = [
    "AttentionEncoderReference",
    "AttentionPoolingReference",
    "CNNReference",
    "NetworkReference",
    "RecurrentReference",
    "SWEMReference",
]
