"""Word (embedding) dropout: whole word types dropped in training, the identity in evaluation."""

from __future__ import annotations

import pytest
import torch

from lit_seqcls import SequenceClassifier, TextClassifierNetwork
from lit_seqcls.encoders import SWEMEncoder
from lit_seqcls.validation import ConfigValueError

E, V = 6, 40


def _network(word_dropout: float) -> TextClassifierNetwork:
    torch.manual_seed(0)
    return TextClassifierNetwork(V, 3, SWEMEncoder(E), embedding_dim=E, word_dropout=word_dropout)


def _encoder_inputs(network: TextClassifierNetwork, ids: torch.Tensor, lengths: torch.Tensor):
    """What the encoder received (the embeddings after word dropout)."""
    seen = []
    hook = network.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        network(ids, lengths)
    finally:
        hook.remove()
    return seen[0]  # (B, T, E)


def test_training_drops_every_occurrence_of_a_word_together_and_scales_the_rest():
    network = _network(0.5).train()
    ids = torch.tensor([[5, 7, 5, 9, 7, 5], [7, 5, 9, 3, 0, 0]])  # repeated words, padded
    lengths = torch.tensor([6, 4])
    torch.manual_seed(1)
    seen = _encoder_inputs(network, ids, lengths)
    table = network.embedding.weight.detach()
    factors = {}
    for b, t in zip(*torch.nonzero(lengths[:, None] > torch.arange(6)).T.tolist(), strict=True):
        word, vector = int(ids[b, t]), seen[b, t]
        factor = 0.0 if vector.abs().sum() == 0 else 2.0  # 1 / (1 - p)
        torch.testing.assert_close(vector, table[word] * factor)
        assert factors.setdefault(word, factor) == factor, f"word {word} dropped only sometimes"
    assert (seen[1, 4:] == 0).all()  # padding stays zero


def test_drop_rate_is_the_probability():
    network = _network(0.3).train()
    torch.manual_seed(2)
    kept = torch.stack([network._kept_words(torch.arange(1, V)) for _ in range(200)])
    assert kept.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert (kept == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_evaluation_is_untouched_and_padding_invariant():
    with_dropout, without = _network(0.5).eval(), _network(0.0).eval()
    ids = torch.tensor([[4, 8, 2, 0, 0], [6, 3, 9, 11, 5]])
    lengths = torch.tensor([3, 5])
    with torch.no_grad():
        logits = with_dropout(ids, lengths).logits
        torch.testing.assert_close(logits, without(ids, lengths).logits)
        alone = with_dropout(ids[:1, :3], lengths[:1]).logits
    torch.testing.assert_close(logits[:1], alone)


def test_off_by_default_draws_no_random_numbers():
    network = _network(0.0).train()
    state = torch.random.get_rng_state()
    network(torch.tensor([[4, 8]]), torch.tensor([2]))
    assert torch.equal(torch.random.get_rng_state(), state)  # SWEM and dropout 0: no draws


@pytest.mark.parametrize("p", [1.0, -0.1])
def test_probability_out_of_range_is_refused(p):
    with pytest.raises(ConfigValueError, match=r"word_dropout must be a number in \[0, 1\)"):
        SequenceClassifier(V, 3, word_dropout=p)


def test_classifier_passes_it_on_and_saves_it():
    model = SequenceClassifier(V, 3, encoder="swem", embedding_dim=E, word_dropout=0.25)
    assert model.network.word_dropout == 0.25
    assert model.hparams.word_dropout == 0.25
