"""The NumPy oracle against torch autograd, and the oracle's own backward by finite differences.

Every encoder runs in float64 on a padded batch (texts of different lengths, one of length 1, and
``T`` longer than the longest text); the pooled output must match to 1e-5 and so must the
gradients of every parameter and of the input for a random upstream gradient.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from lit_seqcls.encoders import (
    ENCODERS,
    AttentionEncoder,
    CNNEncoder,
    GRUEncoder,
    LSTMEncoder,
    RNNEncoder,
    SWEMEncoder,
)
from lit_seqcls.encoders.attention import AdditiveAttention
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.network import TextClassifierNetwork
from lit_seqcls.reference import (
    AttentionEncoderReference,
    AttentionPoolingReference,
    CNNReference,
    NetworkReference,
    RecurrentReference,
    SWEMReference,
)

ATOL = 1e-5
E, H = 5, 4
LENGTHS = torch.tensor([6, 3, 1, 5])  # padded to T = 7 below: no text fills the batch
T = 7
RECURRENT = {"rnn": RNNEncoder, "gru": GRUEncoder, "lstm": LSTMEncoder}


def _randomized(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` in float64 eval mode with every parameter random, biases included.

    The encoders start their biases at 0 (or equal pairs), which would hide a mix-up of ``b_ih``
    and ``b_hh`` (e.g. GRU's ``b_hn`` outside the reset product).
    """
    module = module.double().eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
    return module


def _numpy(params) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy() for name, p in params}


def _inputs(seed: int, steps: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), steps, E, generator=generator, dtype=torch.float64)
    # Garbage on the padding: no encoder may read it.
    x = torch.where(lengths_to_mask(LENGTHS, steps)[..., None], x, 100.0).requires_grad_()
    return x, generator


def _check(torch_value, reference_value, what: str) -> None:
    np.testing.assert_allclose(torch_value, reference_value, atol=ATOL, rtol=0, err_msg=what)


def _check_grads(module: torch.nn.Module, x: torch.Tensor, grads: dict, d_x: np.ndarray) -> None:
    names = {name for name, _ in module.named_parameters()}
    assert set(grads) == names, f"reference gradients {sorted(grads)} != parameters {names}"
    for name, p in module.named_parameters():
        _check(p.grad.numpy(), grads[name], f"gradient of {name}")
    _check(x.grad.numpy(), d_x, "gradient of the input")


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", sorted(RECURRENT))
def test_recurrent_encoder_matches_reference(cell, bidirectional, layers):
    torch.manual_seed(0)
    encoder = RECURRENT[cell](E, hidden_size=H, num_layers=layers, bidirectional=bidirectional)
    encoder = _randomized(encoder)
    x, generator = _inputs(seed=1)
    pooled, _ = encoder(x, LENGTHS, lengths_to_mask(LENGTHS, T))
    d_pooled = torch.randn(pooled.shape, generator=generator, dtype=torch.float64)
    (pooled * d_pooled).sum().backward()

    reference = RecurrentReference(cell, _numpy(encoder.rnn.named_parameters()))
    ref_pooled, _ = reference.forward(x.detach().numpy(), LENGTHS.numpy())
    _check(pooled.detach().numpy(), ref_pooled, "pooled output")
    d_x, grads = reference.backward(d_pooled.numpy())
    _check_grads(encoder.rnn, x, grads, d_x)


def test_backward_direction_starts_at_each_texts_last_real_token():
    # A one-token text: the reverse direction's final state is one step from zero, the same value
    # as the forward direction's when both directions share weights.
    torch.manual_seed(0)
    rnn = torch.nn.RNN(E, H, bidirectional=True, batch_first=True).double()
    params = _numpy(rnn.named_parameters())
    params.update({k.replace("_reverse", ""): v for k, v in params.items() if "_reverse" in k})
    pooled, _ = RecurrentReference("rnn", params).forward(np.ones((2, T, E)), np.array([1, T]))
    _check(pooled[0, :H], pooled[0, H:], "directions of a one-token text")


def test_attention_pooling_matches_reference():
    torch.manual_seed(0)
    attention = _randomized(AdditiveAttention(2 * H, 3))
    generator = torch.Generator().manual_seed(2)
    states = torch.randn(len(LENGTHS), T, 2 * H, generator=generator, dtype=torch.float64)
    states.requires_grad_()
    mask = lengths_to_mask(LENGTHS, T)
    pooled, weights = attention(states, mask)
    d_pooled = torch.randn(pooled.shape, generator=generator, dtype=torch.float64)
    d_weights = torch.randn(weights.shape, generator=generator, dtype=torch.float64)
    ((pooled * d_pooled).sum() + (weights * d_weights).sum()).backward()

    reference = AttentionPoolingReference(_numpy(attention.named_parameters()))
    ref_pooled, ref_weights = reference.forward(states.detach().numpy(), mask.numpy())
    _check(pooled.detach().numpy(), ref_pooled, "pooled output")
    _check(weights.detach().numpy(), ref_weights, "attention weights")
    d_states, grads = reference.backward(d_pooled.numpy(), d_weights.numpy())
    _check_grads(attention, states, grads, d_states)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_attention_encoder_matches_reference(bidirectional):
    torch.manual_seed(0)
    encoder = AttentionEncoder(
        E, hidden_size=H, num_layers=2, bidirectional=bidirectional, attention_dim=3
    )
    encoder = _randomized(encoder)
    x, generator = _inputs(seed=3)
    pooled, weights = encoder(x, LENGTHS, lengths_to_mask(LENGTHS, T))
    d_pooled = torch.randn(pooled.shape, generator=generator, dtype=torch.float64)
    (pooled * d_pooled).sum().backward()

    reference = AttentionEncoderReference(_numpy(encoder.named_parameters()))
    ref_pooled, ref_weights = reference.forward(x.detach().numpy(), LENGTHS.numpy())
    _check(pooled.detach().numpy(), ref_pooled, "pooled output")
    _check(weights.detach().numpy(), ref_weights, "attention weights")
    d_x, grads = reference.backward(d_pooled.numpy())
    _check_grads(encoder, x, grads, d_x)


@pytest.mark.parametrize("steps", [T, 4], ids=["T>=widest", "T<widest"])
def test_cnn_encoder_matches_reference(steps):
    # Kernels up to 5 wide; texts of 3 and 1 tokens are shorter than the widest, and with T = 4
    # the whole batch is narrower than it (the encoder pads the batch first).
    torch.manual_seed(0)
    lengths = LENGTHS.clamp(max=steps)
    encoder = _randomized(CNNEncoder(E, num_filters=3, kernel_sizes=(1, 2, 5)))
    x, generator = _inputs(seed=4, steps=steps)
    pooled, _ = encoder(x, lengths, lengths_to_mask(lengths, steps))
    d_pooled = torch.randn(pooled.shape, generator=generator, dtype=torch.float64)
    (pooled * d_pooled).sum().backward()

    reference = CNNReference(_numpy(encoder.named_parameters()))
    _check(pooled.detach().numpy(), reference.forward(x.detach().numpy(), lengths.numpy()), "out")
    d_x, grads = reference.backward(d_pooled.numpy())
    _check_grads(encoder, x, grads, d_x)


@pytest.mark.parametrize("pooling", SWEMEncoder.POOLINGS)
def test_swem_encoder_matches_reference(pooling):
    encoder = SWEMEncoder(E, pooling=pooling)
    x, generator = _inputs(seed=5)
    pooled, _ = encoder(x, LENGTHS, lengths_to_mask(LENGTHS, T))
    d_pooled = torch.randn(pooled.shape, generator=generator, dtype=torch.float64)
    (pooled * d_pooled).sum().backward()

    reference = SWEMReference(pooling)
    _check(pooled.detach().numpy(), reference.forward(x.detach().numpy(), LENGTHS.numpy()), "out")
    d_x, grads = reference.backward(d_pooled.numpy())
    _check_grads(encoder, x, grads, d_x)


@pytest.mark.parametrize("pooling", SWEMEncoder.POOLINGS)
def test_reference_swem_agrees_with_finite_differences(pooling):
    rng = np.random.default_rng(2)
    swem = SWEMReference(pooling)
    x, lengths = rng.normal(size=(3, 5, 4)), np.array([5, 2, 1])
    d_out = rng.normal(size=swem.forward(x, lengths).shape)

    def loss() -> float:
        return float((swem.forward(x, lengths) * d_out).sum())

    loss()
    d_x, _ = swem.backward(d_out)
    for index in _probe(rng, x, 12):
        assert d_x[index] == pytest.approx(_finite_difference(loss, x, index), abs=1e-6), index


# The reference of every registered encoder, from the torch encoder's parameters: a new encoder
# fails `test_every_registered_encoder_has_a_reference` until it has one.
REFERENCES = {
    "rnn": lambda enc: RecurrentReference("rnn", _numpy(enc.rnn.named_parameters())),
    "gru": lambda enc: RecurrentReference("gru", _numpy(enc.rnn.named_parameters())),
    "lstm": lambda enc: RecurrentReference("lstm", _numpy(enc.rnn.named_parameters())),
    "bilstm": lambda enc: RecurrentReference("lstm", _numpy(enc.rnn.named_parameters())),
    "attention": lambda enc: AttentionEncoderReference(_numpy(enc.named_parameters())),
    "cnn": lambda enc: CNNReference(_numpy(enc.named_parameters())),
    "swem": lambda enc: SWEMReference(enc.pooling),
}


def test_every_registered_encoder_has_a_reference():
    assert set(REFERENCES) == set(ENCODERS)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_network_forward_matches_reference(name):
    # The network's one forward (what training, attribution and prediction run), in eval mode:
    # its dropout (0.5 here) must be off, and padding ids must not matter.
    torch.manual_seed(0)
    cls = ENCODERS[name]
    small = {k: v for k, v in {"hidden_size": H, "num_filters": 3}.items()
             if k in inspect.signature(cls).parameters}  # fmt: skip
    network = TextClassifierNetwork(11, 3, cls(E, **small), embedding_dim=E, dropout=0.5)
    network = _randomized(network)
    generator = torch.Generator().manual_seed(6)
    ids = torch.randint(1, 11, (len(LENGTHS), T), generator=generator)
    ids = ids.masked_fill(~lengths_to_mask(LENGTHS, T), 0)  # (B, T), padded with 0
    with torch.no_grad():
        logits = network(ids, LENGTHS).logits
    reference = NetworkReference(
        REFERENCES[name](network.encoder), _numpy(network.named_parameters())
    )
    _check(logits.numpy(), reference.forward(ids.numpy(), LENGTHS.numpy()), "logits")


# -- the oracle's own backward, by central differences -------------------------------------------
def _finite_difference(loss, array: np.ndarray, index: tuple, eps: float = 1e-6) -> float:
    saved = array[index]
    array[index] = saved + eps
    plus = loss()
    array[index] = saved - eps
    minus = loss()
    array[index] = saved
    return (plus - minus) / (2 * eps)


def _probe(rng: np.random.Generator, array: np.ndarray, count: int) -> list[tuple]:
    return [tuple(int(rng.integers(n)) for n in array.shape) for _ in range(count)]


@pytest.mark.parametrize("cell", sorted(RECURRENT))
def test_reference_bptt_agrees_with_finite_differences(cell):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        3, 3, num_layers=2, bidirectional=True, batch_first=True
    )
    # Random biases too: torch starts them equal, which would hide a b_ih / b_hh mix-up.
    params = {k: rng.normal(size=v.shape) * 0.5 for k, v in _numpy(rnn.named_parameters()).items()}
    reference = RecurrentReference(cell, params)
    x, lengths = rng.normal(size=(3, 4, 3)), np.array([4, 2, 1])
    d_pooled, d_states = rng.normal(size=(3, 6)), rng.normal(size=(3, 4, 6))
    d_states[np.arange(4)[None, :] >= lengths[:, None]] = 0.0  # padding outputs are constants

    def loss() -> float:
        pooled, states = reference.forward(x, lengths)
        return float((pooled * d_pooled).sum() + (states * d_states).sum())

    loss()
    d_x, grads = reference.backward(d_pooled, d_states)
    for name in ("weight_ih_l0", "weight_hh_l1_reverse", "bias_hh_l0_reverse", "bias_ih_l1"):
        for index in _probe(rng, reference.params[name], 3):
            numeric = _finite_difference(loss, reference.params[name], index)
            assert grads[name][index] == pytest.approx(numeric, abs=1e-6), (name, index)
    for index in _probe(rng, x, 6):
        assert d_x[index] == pytest.approx(_finite_difference(loss, x, index), abs=1e-6), index


def test_reference_attention_and_cnn_agree_with_finite_differences():
    rng = np.random.default_rng(1)
    attention = AttentionPoolingReference(
        {"proj.weight": rng.normal(size=(3, 4)), "proj.bias": rng.normal(size=3)}
        | {"score.weight": rng.normal(size=(1, 3))}
    )
    cnn = CNNReference(
        {"convs.0.weight": rng.normal(size=(2, 4, 2)), "convs.0.bias": rng.normal(size=2)}
        | {"convs.1.weight": rng.normal(size=(2, 4, 3)), "convs.1.bias": rng.normal(size=2)}
    )
    x, lengths = rng.normal(size=(3, 5, 4)), np.array([5, 2, 1])
    mask = np.arange(5)[None, :] < lengths[:, None]
    d_out = rng.normal(size=(3, 4))

    def attention_loss() -> float:
        return float((attention.forward(x, mask)[0] * d_out).sum())

    def cnn_loss() -> float:
        return float((cnn.forward(x, lengths) * d_out).sum())

    for loss, ref, arrays in (
        (attention_loss, attention, {"proj.weight": attention.w, "proj.bias": attention.b}),
        (cnn_loss, cnn, {"convs.0.weight": cnn.convs[0][0], "convs.1.bias": cnn.convs[1][1]}),
    ):
        loss()
        d_x, grads = ref.backward(d_out)
        for name, array in arrays.items():
            for index in _probe(rng, array, 3):
                numeric = _finite_difference(loss, array, index)
                assert grads[name][index] == pytest.approx(numeric, abs=1e-6), (name, index)
        for index in _probe(rng, x, 6):
            assert d_x[index] == pytest.approx(_finite_difference(loss, x, index), abs=1e-6)
