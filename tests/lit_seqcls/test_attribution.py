"""Token weights: attention read-out, gradient × input, integrated gradients, every encoder."""

from __future__ import annotations

import pytest
import torch

from lit_seqcls import SequenceClassifier
from lit_seqcls.attribution import _attributions, token_weights
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.masking import lengths_to_mask

IDS = torch.tensor([[5, 9, 3, 7, 2], [4, 8, 0, 0, 0]])  # (2, 5): the second text is padded
LENGTHS = torch.tensor([5, 2])


def _model(encoder: str) -> SequenceClassifier:
    torch.manual_seed(0)
    small = {"cnn": {"num_filters": 6}, "swem": {}}.get(encoder, {"hidden_size": 6})  # fast
    spec = {"class_path": f"{ENCODERS[encoder].__module__}.{ENCODERS[encoder].__name__}"}
    return SequenceClassifier(12, 3, encoder=spec | {"init_args": small}, embedding_dim=8)


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
def test_weights_are_a_distribution_over_real_tokens_for_every_encoder(encoder, method):
    model = _model(encoder).train()
    weights, probs = token_weights(model, IDS, LENGTHS, method, steps=8)
    assert weights.shape == IDS.shape and (weights >= 0).all()
    assert weights[1, 2:].eq(0).all()  # padding gets nothing
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    assert model.training  # the caller's mode is restored


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_padding_does_not_change_the_weights(encoder):
    model = _model(encoder)
    alone, _ = token_weights(model, IDS[1:, :2], LENGTHS[1:], "integrated_gradients", steps=8)
    padded, _ = token_weights(model, IDS, LENGTHS, "integrated_gradients", steps=8)
    torch.testing.assert_close(padded[1, :2], alone[0], atol=1e-5, rtol=1e-4)


def test_attention_method_returns_the_encoders_attention():
    model = _model("attention").eval()
    weights, _ = token_weights(model, IDS, LENGTHS, "attention")
    torch.testing.assert_close(weights, model(IDS, LENGTHS).attention)
    with pytest.raises(ValueError, match="returns no attention weights"):
        token_weights(_model("gru"), IDS, LENGTHS, "attention")


def test_gradient_x_input_matches_a_hand_written_reference():
    model = _model("lstm").eval()
    network = model.network
    embedded = network.embedding(IDS).detach().requires_grad_(True)  # (B, T, E)
    pooled, _ = network.encoder(embedded, LENGTHS, lengths_to_mask(LENGTHS, IDS.size(1)))
    logits = network.head(pooled)
    target = logits.argmax(-1)
    logits.gather(1, target[:, None]).sum().backward()
    expected = (embedded.grad * embedded).sum(-1).abs()
    expected = expected / expected.sum(-1, keepdim=True)
    weights, _ = token_weights(model, IDS, LENGTHS, "gradient_x_input")
    torch.testing.assert_close(weights, expected)


def test_integrated_gradients_are_complete():
    # Sundararajan et al.: the attributions sum to logit(x) - logit(zero embedding).
    model = _model("gru").eval()
    mask = lengths_to_mask(LENGTHS, IDS.size(1))
    target = model(IDS, LENGTHS).logits.argmax(-1)
    steps = 32
    network = model.network
    scores = _attributions(network, IDS, LENGTHS, target, (torch.arange(steps) + 0.5) / steps)
    with torch.no_grad():
        embedded = network.embedding(IDS)
        full = network.head(network.encoder(embedded, LENGTHS, mask)[0])
        zero = network.head(network.encoder(torch.zeros_like(embedded), LENGTHS, mask)[0])
    gap = (full - zero).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(scores.masked_fill(~mask, 0).sum(-1), gap, atol=2e-3, rtol=2e-2)


def test_works_inside_inference_mode_and_leaves_parameter_grads_alone():
    model = _model("cnn")
    with torch.inference_mode():
        ids, lengths = IDS.clone(), LENGTHS.clone()  # inference tensors, as in Lightning's loops
        weights, _ = token_weights(model, ids, lengths, "integrated_gradients", steps=4)
    assert weights.shape == IDS.shape
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
def test_the_networks_own_forward_in_eval_mode_dropout_off(method):
    # The system and its bare network give the same weights; a training caller's dropout (0.5
    # here, on embeddings and pooled vector) never reaches them.
    model = _model("gru")
    model.network.dropout.p = 0.5
    expected, _ = token_weights(model.network.eval(), IDS, LENGTHS, method, steps=4)
    weights, _ = token_weights(model.train(), IDS, LENGTHS, method, steps=4)
    torch.testing.assert_close(weights, expected)
    assert model.network.training


# ---- explaining a given class; probabilities that fit the model (#18) -----------------------
@pytest.mark.parametrize("method", ["integrated_gradients", "gradient_x_input"])
def test_an_explicit_target_explains_that_class(method):
    model = _model("gru").eval()
    default, probs = token_weights(model, IDS, LENGTHS, method, steps=4)
    argmax = probs.argmax(-1)  # (B,)
    same, _ = token_weights(model, IDS, LENGTHS, method, steps=4, target=argmax)
    torch.testing.assert_close(same, default)
    other = (argmax + 1) % probs.size(1)  # another class for every text
    weights, _ = token_weights(model, IDS, LENGTHS, method, steps=4, target=other)
    assert not torch.allclose(weights[0], default[0], atol=1e-3)
    # The reference: the same attributions of that class's logit, normalised.
    alphas = (torch.arange(4) + 0.5) / 4 if method == "integrated_gradients" else torch.ones(1)
    scores = _attributions(model.network, IDS, LENGTHS, other, alphas).abs()
    scores = scores.masked_fill(~lengths_to_mask(LENGTHS, IDS.size(1)), 0)
    torch.testing.assert_close(weights, scores / scores.sum(-1, keepdim=True))


def test_a_bad_target_is_refused_by_name():
    model = _model("cnn")
    for bad in (torch.tensor([0]), torch.tensor([0.0, 1.0]), torch.tensor([0, 3])):
        with pytest.raises(ValueError, match="target"):
            token_weights(model, IDS, LENGTHS, "gradient_x_input", target=bad)


def test_single_label_probabilities_are_the_calibrated_softmax():
    # Before #18's temperature the logger showed softmax(logits); `predict`, the confusion matrix
    # and the misclassified table show softmax(logits / T): token maps now agree with them.
    model = _model("cnn").eval()
    model.temperature.fill_(2.5)
    _, probs = token_weights(model, IDS, LENGTHS, "gradient_x_input")
    with torch.no_grad():
        logits = model(IDS, LENGTHS).logits
    torch.testing.assert_close(probs, (logits / 2.5).softmax(-1))
    _, bare = token_weights(model.network, IDS, LENGTHS, "gradient_x_input")  # no temperature
    torch.testing.assert_close(bare, logits.softmax(-1))


def test_multi_label_probabilities_are_sigmoids_with_temperature():
    torch.manual_seed(0)
    model = SequenceClassifier(12, 3, encoder="cnn", embedding_dim=8, task="multi_label").eval()
    model.temperature.fill_(0.5)
    weights, probs = token_weights(model, IDS, LENGTHS, "integrated_gradients", steps=4)
    with torch.no_grad():
        logits = model(IDS, LENGTHS).logits
    torch.testing.assert_close(probs, (logits / 0.5).sigmoid())
    assert not torch.allclose(probs.sum(-1), torch.ones(2))  # independent labels
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    # A bare network does not know its task: the caller says it.
    _, bare = token_weights(model.network, IDS, LENGTHS, "gradient_x_input", multi_label=True)
    torch.testing.assert_close(bare, logits.sigmoid())
