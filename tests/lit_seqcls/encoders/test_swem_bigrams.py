"""SWEM with hashed bigrams (``ngram_buckets``): the encoder contract with token ids.

The registry's contract tests (test_contract.py) build encoders with their defaults, without
bigrams; this file runs the same promises for ``ngram_buckets > 0``, which also reads the ids.
"""

from __future__ import annotations

import itertools

import lightning as L
import pytest
import torch

from lit_seqcls import SequenceClassifier, TextClassifierNetwork
from lit_seqcls.attribution import token_weights
from lit_seqcls.encoders import SWEMEncoder, resolve, spec
from lit_seqcls.encoders.swem import _HASH
from lit_seqcls.masking import lengths_to_mask
from lit_seqcls.validation import ConfigValueError

E, BUCKETS = 8, 13
GARBAGE = 1e3


def _padded(texts: list[torch.Tensor], ids: list[list[int]], extra: int):
    lengths = torch.tensor([len(t) for t in texts])
    width = int(lengths.max()) + extra
    embedded = GARBAGE * torch.randn(len(texts), width, E)  # garbage on padding
    padded_ids = torch.randint(0, 50, (len(texts), width))  # garbage ids too
    for row, (text, row_ids) in enumerate(zip(texts, ids, strict=True)):
        embedded[row, : len(text)] = text
        padded_ids[row, : len(row_ids)] = torch.tensor(row_ids)
    return embedded, lengths, lengths_to_mask(lengths, width), padded_ids


@pytest.mark.parametrize("pooling", ["mean", "max", "concat"])
@pytest.mark.parametrize("extra", [0, 3])
def test_padding_does_not_change_the_output(pooling, extra):
    torch.manual_seed(0)
    encoder = SWEMEncoder(E, pooling=pooling, ngram_buckets=BUCKETS)
    ids = [[3, 7, 9, 2], [5], [4, 4, 8, 1, 6, 2, 9, 3, 7]]
    texts = [torch.randn(len(i), E) for i in ids]
    with torch.no_grad():
        pooled, _ = encoder(*_padded(texts, ids, extra))
        for row, (text, row_ids) in enumerate(zip(texts, ids, strict=True)):
            alone, _ = encoder(*_padded([text], [row_ids], 0))
            torch.testing.assert_close(pooled[row], alone[0], atol=1e-5, rtol=0)


def test_mean_is_over_words_and_bigrams_like_fasttext():
    torch.manual_seed(0)
    encoder = SWEMEncoder(E, pooling="concat", ngram_buckets=BUCKETS)
    ids = [6, 2, 9]
    text = torch.randn(3, E)
    table = encoder.bigrams.weight.detach()
    rows = [(a * _HASH + b) % BUCKETS for a, b in itertools.pairwise(ids)]
    bag = torch.cat([text, table[rows]])  # 3 words + 2 bigrams
    with torch.no_grad():
        pooled, _ = encoder(*_padded([text], [ids], 2))
    torch.testing.assert_close(pooled[0], torch.cat([bag.mean(0), bag.amax(0)]))


def test_word_order_matters_with_bigrams_only():
    torch.manual_seed(0)
    ids = torch.tensor([[3, 7, 9], [9, 7, 3]])  # the same words, reversed
    lengths = torch.tensor([3, 3])
    words = torch.randn(10, E)[ids]  # (B, T, E)
    mask = lengths_to_mask(lengths, 3)
    plain, _ = SWEMEncoder(E)(words, lengths, mask)
    torch.testing.assert_close(plain[0], plain[1])
    bigram, _ = SWEMEncoder(E, ngram_buckets=1000)(words, lengths, mask, ids)
    assert not torch.allclose(bigram[0], bigram[1])


def test_one_token_text_has_no_bigram_and_gradients_reach_real_bigrams_only():
    torch.manual_seed(0)
    encoder = SWEMEncoder(E, pooling="mean", ngram_buckets=BUCKETS)
    one, _ = encoder(torch.ones(1, 1, E), torch.tensor([1]), torch.ones(1, 1, dtype=torch.bool),
                     torch.tensor([[4]]))  # fmt: skip
    torch.testing.assert_close(one, torch.ones(1, E))
    embedded, lengths, mask, ids = _padded([torch.randn(2, E)], [[3, 5]], 4)
    pooled, _ = encoder(embedded, lengths, mask, ids)
    pooled.sum().backward()
    touched = encoder.bigrams.weight.grad.abs().sum(-1).nonzero().flatten().tolist()
    assert touched == [(3 * _HASH + 5) % BUCKETS]


def test_needs_the_ids_and_refuses_negative_buckets():
    encoder = SWEMEncoder(E, ngram_buckets=BUCKETS)
    assert encoder.uses_token_ids and not SWEMEncoder(E).uses_token_ids
    with pytest.raises(ValueError, match="needs the input_ids"):
        encoder(torch.randn(1, 2, E), torch.tensor([2]), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ConfigValueError, match="ngram_buckets must be an integer >= 0"):
        SWEMEncoder(E, ngram_buckets=-1)


def test_network_passes_the_ids_and_stays_padding_invariant_in_eval():
    torch.manual_seed(0)
    network = TextClassifierNetwork(30, 3, SWEMEncoder(E, ngram_buckets=BUCKETS), E, 0.5).eval()
    ids = torch.tensor([[5, 9, 3, 7, 2], [4, 8, 0, 0, 0]])
    with torch.no_grad():
        logits = network(ids, torch.tensor([5, 2])).logits
        alone = network(ids[1:, :2], torch.tensor([2])).logits
    torch.testing.assert_close(logits[1:], alone)
    importance, _ = token_weights(network, ids, torch.tensor([5, 2]))  # attribution runs
    assert importance.shape == ids.shape


def test_spec_and_checkpoint_round_trip(tmp_path):
    encoder = {"class_path": "lit_seqcls.encoders.SWEMEncoder", "init_args": {"ngram_buckets": 13}}
    model = SequenceClassifier(30, 3, encoder=encoder, embedding_dim=E)
    assert spec(model.network.encoder)["init_args"] == {"ngram_buckets": BUCKETS}
    assert resolve(spec(model.network.encoder), E).bigrams.num_embeddings == BUCKETS
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, max_epochs=0)  # fmt: skip
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = SequenceClassifier.load_from_checkpoint(tmp_path / "m.ckpt")
    ids, lengths = torch.tensor([[5, 9, 3], [4, 8, 0]]), torch.tensor([3, 2])
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(ids, lengths).logits, model(ids, lengths).logits)
