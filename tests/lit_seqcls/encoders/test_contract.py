"""The encoder contract, run over every registered encoder and its layer/direction variants.

The cases come from ``ENCODERS``: an encoder added to the registry runs every test here (padding
invariance, one-token texts, gradients, attention, spec and checkpoint round trips) without a
line added to this file.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import re

import lightning as L
import pytest
import torch
from torch import Tensor, nn

from lit_seqcls import SequenceClassifier
from lit_seqcls.encoders import (
    ENCODERS,
    AttentionEncoder,
    BiLSTMEncoder,
    CNNEncoder,
    Encoder,
    GRUEncoder,
    LSTMEncoder,
    RNNEncoder,
    SWEMEncoder,
    resolve,
    spec,
)
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.validation import ConfigValueError

E, H = 8, 12  # embedding and hidden sizes: small, so the whole file runs in seconds
LENGTHS = (4, 1, 9)  # unsorted, so packing with enforce_sorted=False is exercised
GARBAGE = 1e3  # padding values: large, so an encoder that lets padding leak in is caught

# Size arguments set small for every encoder that takes them.
SMALL = {"hidden_size": H, "num_filters": H}
# More cases per registered encoder, beyond its small default one. Multi-layer variants carry
# dropout so eval mode must really switch it off.
VARIANTS: dict[str, dict[str, dict]] = {
    "rnn": {"2layer-bi": {"num_layers": 2, "bidirectional": True}},
    "gru": {"2layer-bi": {"num_layers": 2, "bidirectional": True}},
    "lstm": {"2layer-dropout": {"num_layers": 2, "dropout": 0.5}, "bi": {"bidirectional": True}},
    "bilstm": {"2layer-dropout": {"num_layers": 2, "dropout": 0.5}},
    "attention": {
        "uni-2layer": {"num_layers": 2, "dropout": 0.5, "bidirectional": False},
        "dim5": {"attention_dim": 5},
    },
    "cnn": {"wider-than-batch": {"kernel_sizes": (2, 11)}},
    "swem": {"mean": {"pooling": "mean"}},
}


def _small(cls: type[Encoder]) -> dict:
    accepted = inspect.signature(cls).parameters
    return {key: value for key, value in SMALL.items() if key in accepted}


def _cases() -> list[tuple[str, type[Encoder], dict]]:
    """(id, class, kwargs): each registered encoder small, then its variants."""
    cases = []
    for name, cls in ENCODERS.items():
        cases.append((name, cls, _small(cls)))
        for variant, kwargs in VARIANTS.get(name, {}).items():
            cases.append((f"{name}-{variant}", cls, {**_small(cls), **kwargs}))
    return cases


CASES = _cases()


def _implementations(name: str, cls: type[Encoder], kwargs: dict) -> list:
    """Every recurrent case runs both ways of keeping padding out of the recurrence."""
    if "implementation" not in inspect.signature(cls).parameters:
        return [pytest.param(cls, kwargs, id=name)]
    return [
        pytest.param(cls, {**kwargs, "implementation": run}, id=f"{name}-{run}")
        for run in ("masked", "packed")
    ]


ENCODER_PARAMS = [param for case in CASES for param in _implementations(*case)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tensors are tiny: with a busy CPU, intra-op threads spend far longer waiting for each
    # other than computing (measured: 4.7 s with one thread, 22-37 s with two under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(state)


def _texts(lengths=LENGTHS) -> list[Tensor]:
    return [torch.randn(n, E) for n in lengths]


def _pad(texts: list[Tensor], extra: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Batch ``texts`` with garbage (not zeros) in the padding, ``extra`` columns wider."""
    lengths = torch.tensor([len(t) for t in texts])  # (B,)
    width = int(lengths.max()) + extra
    embedded = GARBAGE * torch.randn(len(texts), width, E)  # (B, T, E)
    for row, text in enumerate(texts):
        embedded[row, : len(text)] = text
    return embedded, lengths, lengths_to_mask(lengths, width)


def _rnn_of(encoder: Encoder) -> nn.RNNBase:
    return next(m for m in encoder.modules() if isinstance(m, nn.RNNBase))


def _encode(encoder: Encoder, texts: list[Tensor], extra: int = 0) -> tuple[Tensor, Tensor | None]:
    return encoder(*_pad(texts, extra))


@pytest.mark.parametrize("extra", [0, 3], ids=["pad-to-longest", "pad-past-longest"])
@pytest.mark.parametrize("mode", ["eval", "train-no-dropout"])
@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_padding_does_not_change_the_output(cls, kwargs, mode, extra):
    if mode == "train-no-dropout":
        kwargs = {**kwargs, "dropout": 0.0} if "dropout" in kwargs else kwargs
    encoder = cls(E, **kwargs).train(mode != "eval")
    texts = _texts()
    with torch.no_grad():
        pooled, attention = _encode(encoder, texts, extra)
        for row, text in enumerate(texts):
            alone_pooled, alone_attention = _encode(encoder, [text])
            torch.testing.assert_close(pooled[row], alone_pooled[0], atol=1e-5, rtol=0)
            if cls.returns_attention:
                n = len(text)
                torch.testing.assert_close(
                    attention[row, :n], alone_attention[0], atol=1e-5, rtol=0
                )


@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_output_shape_matches_output_dim(cls, kwargs):
    encoder = cls(E, **kwargs)
    pooled, _ = _encode(encoder, _texts(), extra=3)
    assert pooled.shape == (len(LENGTHS), encoder.output_dim)
    assert pooled.dtype == torch.float32


@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_one_token_text(cls, kwargs):
    encoder = cls(E, **kwargs)
    pooled, attention = encoder(
        torch.randn(1, 1, E), torch.tensor([1]), torch.ones(1, 1, dtype=torch.bool)
    )
    assert pooled.shape == (1, encoder.output_dim)
    assert torch.isfinite(pooled).all()
    if cls.returns_attention:
        assert attention.tolist() == [[1.0]]


@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_gradients_reach_real_tokens_only(cls, kwargs):
    encoder = cls(E, **kwargs)
    embedded, lengths, mask = _pad(_texts(), extra=3)
    embedded.requires_grad_(True)
    pooled, _ = encoder(embedded, lengths, mask)
    # Random weights, so no direction of the output can cancel out in the sum.
    (pooled * torch.randn_like(pooled)).sum().backward()
    per_token = embedded.grad.abs().sum(-1)  # (B, T)
    assert (per_token[mask] > 0).all(), "some real token gets no gradient"
    assert (per_token[~mask] == 0).all(), "gradient leaks into padding"


@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_attention_weights(cls, kwargs):
    encoder = cls(E, **kwargs)
    embedded, lengths, mask = _pad(_texts(), extra=3)
    _, attention = encoder(embedded, lengths, mask)
    if not cls.returns_attention:
        assert attention is None
        return
    assert attention.shape == mask.shape
    assert (attention >= 0).all()
    assert (attention[~mask] == 0.0).all()
    sums = (attention * mask).sum(-1)  # (B,)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-6, rtol=0)


def test_only_attention_encoder_returns_attention():
    assert [name for name, cls in ENCODERS.items() if cls.returns_attention] == ["attention"]


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        p
        for p in ENCODER_PARAMS
        if p.values[0] in (RNNEncoder, GRUEncoder, LSTMEncoder, BiLSTMEncoder)
    ],
)
def test_recurrent_pools_last_layer_final_state(cls, kwargs):
    encoder = cls(E, **kwargs).eval()
    rnn = _rnn_of(encoder)
    texts = _texts()
    with torch.no_grad():
        pooled, _ = _encode(encoder, texts, extra=3)
        for row, text in enumerate(texts):
            # Unpacked run of the text alone: per-step outputs of the last layer (h, never c).
            steps, _ = rnn(text[None])  # (1, n, D * H)
            forward = steps[0, -1, :H]  # left to right: state after the last token
            expected = torch.cat([forward, steps[0, 0, H:]])  # right to left: after token 0
            torch.testing.assert_close(pooled[row], expected, atol=1e-5, rtol=0)


def test_attention_pools_lstm_states_by_additive_scores():
    encoder = AttentionEncoder(E, hidden_size=H, attention_dim=5).eval()
    attention = encoder.attention
    texts = _texts()
    with torch.no_grad():
        pooled, weights = _encode(encoder, texts, extra=3)
        for row, text in enumerate(texts):
            states, _ = encoder.lstm(text[None])  # (1, n, 2H): the text alone, unpacked
            states = states[0]  # (n, 2H)
            scores = torch.tanh(states @ attention.proj.weight.T + attention.proj.bias)
            scores = scores @ attention.score.weight[0]  # v^T tanh(W h_t + b), (n,)
            expected = torch.softmax(scores, dim=0)  # (n,)
            torch.testing.assert_close(weights[row, : len(text)], expected, atol=1e-6, rtol=0)
            torch.testing.assert_close(pooled[row], expected @ states, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cls", [RNNEncoder, GRUEncoder, LSTMEncoder, AttentionEncoder])
def test_dropout_acts_between_layers_only_and_never_warns(cls, recwarn):
    one_layer = cls(E, hidden_size=H, num_layers=1, dropout=0.5)
    two_layers = cls(E, hidden_size=H, num_layers=2, dropout=0.5)
    assert _rnn_of(one_layer).dropout == 0.0
    assert _rnn_of(two_layers).dropout == 0.5
    assert not [w for w in recwarn if "dropout" in str(w.message)]


def _cnn_reference(encoder: CNNEncoder, text: Tensor) -> Tensor:
    """Kim's max-over-time by explicit loops over the windows that count."""
    n = len(text)
    padded = torch.cat([text, torch.zeros(max(encoder.kernel_sizes), E)])  # zeros past the text
    pooled = []
    for conv, k in zip(encoder.convs, encoder.kernel_sizes, strict=True):
        windows = [padded[p : p + k].T for p in range(max(n - k + 1, 1))]  # each (E, k)
        scores = torch.stack([(conv.weight * w).sum((1, 2)) + conv.bias for w in windows])
        pooled.append(scores.amax(0).relu())  # (F,)
    return torch.cat(pooled)


@pytest.mark.parametrize("lengths", [(1, 2, 4, 5, 7), (3,)], ids=["mixed", "one-text"])
def test_cnn_matches_window_reference(lengths):
    encoder = CNNEncoder(E, num_filters=6, kernel_sizes=(3, 4, 5))
    nn.init.normal_(encoder.convs[0].bias)  # nonzero biases, so a counted zero window would show
    texts = _texts(lengths)
    with torch.no_grad():
        pooled, _ = _encode(encoder, texts, extra=2)
        expected = torch.stack([_cnn_reference(encoder, t) for t in texts])
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=0)


def test_swem_unknown_pooling_names_the_valid_ones():
    with pytest.raises(ValueError, match="mean, max, concat; got 'sum'"):
        SWEMEncoder(E, pooling="sum")


def test_variants_are_of_registered_encoders():
    assert set(VARIANTS) <= set(ENCODERS)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_resolve_by_name_class_path_and_factory(name):
    cls = ENCODERS[name]
    path = f"{cls.__module__}.{cls.__qualname__}"
    for given in (
        name,
        path,
        {"class_path": path, "init_args": _small(cls)},
        functools.partial(cls, **_small(cls)),
        lambda size, cls=cls: cls(size, **_small(cls)),
    ):
        encoder = resolve(given, E)
        assert type(encoder) is cls
        pooled, _ = _encode(encoder, _texts())
        assert pooled.shape[-1] == encoder.output_dim


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("transformer", "unknown encoder 'transformer'; choose one of 'rnn', 'gru', 'lstm'"),
        ("torch.nn.Linear", "names 'torch.nn.Linear', which is not a subclass of Encoder"),
        ({"class_path": "os.system"}, "names 'os.system', a function, not a class"),
        ({"class_path": "no.such.Thing"}, "names 'no.such.Thing', which does not exist here"),
        ({"class_path": "lit_seqcls.encoders.GRUEncoder", "init_args": 3}, "not a dictionary"),
        (lambda size: nn.Linear(size, 2), "the encoder factory returned Linear, not an Encoder"),
        (3, "encoder must be a name (rnn, gru, lstm, bilstm, attention, cnn, swem)"),
    ],
    ids=["name", "not-an-encoder", "function", "missing", "init-args", "factory", "type"],
)
def test_resolve_refuses_with_a_sentence(given, message):
    with pytest.raises(ConfigValueError, match=re.escape(message)):
        resolve(given, E)


@pytest.mark.parametrize(("cls", "kwargs"), ENCODER_PARAMS)
def test_spec_is_plain_data_that_rebuilds_the_same_encoder(cls, kwargs):
    encoder = cls(E, **kwargs).eval()
    data = spec(encoder)
    assert data == {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": kwargs}
    again = resolve(data, E).eval()
    again.load_state_dict(encoder.state_dict())  # strict: the same parameters, the same shapes
    texts = _texts()
    with torch.no_grad():
        torch.testing.assert_close(_encode(again, texts)[0], _encode(encoder, texts)[0])


def test_spec_survives_copies_and_reports_only_given_arguments():
    encoder = GRUEncoder(E, 5)  # positional arguments are named in the spec
    assert spec(copy.deepcopy(encoder))["init_args"] == {"hidden_size": 5}
    assert spec(GRUEncoder(E))["init_args"] == {}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_checkpoint_round_trip(name, tmp_path):
    """Saved as plain data, loaded without the CLI: the same encoder and the same logits."""
    cls = ENCODERS[name]
    factory = functools.partial(cls, **_small(cls))
    model = SequenceClassifier(30, 3, encoder=factory, embedding_dim=E)
    trainer = L.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=0,
    )  # fmt: skip
    trainer.strategy.connect(model)
    path = tmp_path / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    torch.load(path, weights_only=True)  # raises if anything but plain data was pickled
    again = SequenceClassifier.load_from_checkpoint(path)
    assert type(again.network.encoder) is cls
    assert again.hparams.encoder == model.hparams.encoder == spec(model.network.encoder)
    ids = torch.tensor([[5, 9, 3, 7, 2], [4, 8, 0, 0, 0]])
    lengths = torch.tensor([5, 2])
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ids, lengths).logits, model(ids, lengths).logits)


def _recurrent_modules() -> list[nn.RNNBase]:
    encoders = [
        RNNEncoder(E, hidden_size=H, num_layers=2, bidirectional=True),
        GRUEncoder(E, hidden_size=H, num_layers=2, bidirectional=True),
        LSTMEncoder(E, hidden_size=H, num_layers=2, bidirectional=True),
        BiLSTMEncoder(E, hidden_size=H),
        AttentionEncoder(E, hidden_size=H, num_layers=2),
    ]
    return [m for encoder in encoders for m in encoder.modules() if isinstance(m, nn.RNNBase)]


def test_lstm_forget_gate_bias_is_one():
    lstms = [m for m in _recurrent_modules() if isinstance(m, nn.LSTM)]
    assert len(lstms) == 3
    for lstm in lstms:
        for suffix in ("l0", "l1", "l0_reverse"):
            if not hasattr(lstm, f"bias_ih_{suffix}"):
                continue
            total = getattr(lstm, f"bias_ih_{suffix}") + getattr(lstm, f"bias_hh_{suffix}")
            i, f, g, o = total.detach().split(lstm.hidden_size)  # torch's gate order
            assert (f == 1).all()
            assert (i == 0).all() and (g == 0).all() and (o == 0).all()


def test_recurrent_weights_orthogonal_and_xavier():
    for rnn in _recurrent_modules():
        for name, param in rnn.named_parameters():
            blocks = param.detach().split(rnn.hidden_size)
            if name.startswith("weight_hh"):
                for w in blocks:  # (H, H) per gate
                    torch.testing.assert_close(w @ w.T, torch.eye(len(w)), atol=1e-5, rtol=0)
            elif name.startswith("weight_ih"):
                for w in blocks:  # (H, in) per gate: Xavier uniform bound from the block's fans
                    bound = math.sqrt(6 / sum(w.shape))
                    assert w.abs().max() <= bound
                    assert w.abs().max() > 0.8 * bound  # not a smaller default init
            elif name.startswith("bias_hh"):
                assert (param == 0).all()


def test_attention_linear_layers_are_xavier():
    attention = AttentionEncoder(E, hidden_size=H, attention_dim=5).attention
    for linear in (attention.proj, attention.score):
        w = linear.weight.detach()
        bound = math.sqrt(6 / sum(w.shape))
        assert bound * 0.5 < w.abs().max() <= bound
    assert (attention.proj.bias == 0).all()


@pytest.mark.parametrize(
    ("cls", "kwargs"), [p for p in ENCODER_PARAMS if p.values[1].get("implementation") == "masked"]
)
def test_masked_and_packed_runs_agree_in_outputs_and_gradients(cls, kwargs):
    kwargs = {**kwargs, "dropout": 0.0} if "dropout" in kwargs else kwargs
    masked = cls(E, **kwargs)
    packed = copy.deepcopy(masked)
    packed.implementation = "packed"
    embedded, lengths, mask = _pad(_texts(), extra=3)
    weights = torch.randn(len(LENGTHS), masked.output_dim)
    outputs = []
    for encoder in (masked, packed):
        pooled, attention = encoder(embedded, lengths, mask)
        (pooled * weights).sum().backward()
        outputs.append((pooled, attention))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=0)
    for (name, a), b in zip(masked.named_parameters(), packed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_unknown_implementation_names_the_valid_ones():
    with pytest.raises(ValueError, match="'masked', 'packed'"):
        LSTMEncoder(E, hidden_size=H, implementation="cudnn")
