import functools

import lightning as L
import pytest
import torch

from lit_seqcls import Batch, SequenceClassifier, TextClassifierNetwork
from lit_seqcls.checkpoints import CheckpointError
from lit_seqcls.encoders import ENCODERS, CNNEncoder, GRUEncoder
from lit_seqcls.validation import ConfigValueError


def _batch(vocab=30, b=6, t=9, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    ids = torch.randint(2, vocab, (b, t), generator=g)
    ids[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    return Batch(ids, lengths, torch.randint(0, classes, (b,), generator=g), torch.arange(b))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_by_name_gives_logits_and_padding_embedding_stays_zero(name):
    model = SequenceClassifier(30, 3, encoder=name, embedding_dim=8)
    batch = _batch()
    out = model(batch.input_ids, batch.lengths)
    assert out.logits.shape == (6, 3)
    assert (out.attention is not None) == (name == "attention")
    assert model.network.embedding.weight[0].abs().sum() == 0
    assert model.hparams.encoder == name  # a name is kept as the user gave it


def test_encoder_from_a_factory_and_checkpoint_is_plain_data(tmp_path):
    factory = functools.partial(CNNEncoder, num_filters=5, kernel_sizes=(2, 3))
    model = SequenceClassifier(30, 3, encoder=factory, embedding_dim=8, class_names=["a", "b", "c"])
    assert model.network.encoder.output_dim == 10
    assert model.hparams.encoder == {
        "class_path": "lit_seqcls.encoders.cnn.CNNEncoder",
        "init_args": {"num_filters": 5, "kernel_sizes": (2, 3)},
    }
    path = _save(model, tmp_path / "m.ckpt")
    torch.load(path, weights_only=True)  # raises if anything but plain data was pickled
    again = SequenceClassifier.load_from_checkpoint(path)
    batch = _batch()
    model.eval(), again.eval()
    assert torch.equal(
        model(batch.input_ids, batch.lengths).logits, again(batch.input_ids, batch.lengths).logits
    )
    assert again.class_names == ["a", "b", "c"]


def test_unknown_encoder_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown encoder 'transformer'.*choose one of"):
        SequenceClassifier(30, 3, encoder="transformer")


def test_class_names_must_match_num_classes():
    with pytest.raises(ValueError, match="2 class_names for num_classes=3"):
        SequenceClassifier(30, 3, class_names=["a", "b"])


def test_optimizer_and_scheduler_are_injected():
    model = SequenceClassifier(
        30,
        3,
        encoder="gru",
        embedding_dim=8,
        optimizer=functools.partial(torch.optim.SGD, lr=0.5),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1),
    )
    config = model.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD)
    assert config["optimizer"].param_groups[0]["lr"] == 0.5
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert isinstance(SequenceClassifier(30, 3).configure_optimizers(), torch.optim.AdamW)


@pytest.mark.parametrize(
    ("optimizer", "fused"),
    [
        (torch.optim.AdamW, True),  # the default: the fused kernel
        (functools.partial(torch.optim.Adam, lr=0.01), True),
        (functools.partial(torch.optim.AdamW, fused=False), False),  # the config said no
        (functools.partial(torch.optim.AdamW, foreach=True), None),  # nor asked another kernel
        (functools.partial(torch.optim.SGD, lr=0.5), None),  # torch's own choice
    ],
)
def test_adam_with_the_kernel_unset_runs_fused_and_keeps_its_settings(optimizer, fused):
    model = SequenceClassifier(30, 3, encoder="swem", optimizer=optimizer)
    built = model.configure_optimizers()
    assert type(built) is type(optimizer(model.parameters()))
    assert built.defaults.get("fused") == fused
    assert all(group.get("fused") == fused for group in built.param_groups)  # what step() reads
    reference = optimizer(model.parameters())
    for key in ("lr", "betas", "weight_decay", "eps"):
        assert built.defaults.get(key) == reference.defaults.get(key), key
    assert [p for g in built.param_groups for p in g["params"]] == list(model.parameters())


def test_a_fused_step_follows_the_per_tensor_step():
    results = []
    for fused in (False, None):  # None: rebuilt with the fused kernel
        torch.manual_seed(0)  # the same weights and dropout masks
        model = SequenceClassifier(50, 3, encoder="swem", embedding_dim=8)
        model.optimizer_factory = functools.partial(torch.optim.AdamW, lr=0.05, fused=fused)
        optimizer = model.configure_optimizers()
        batch = Batch(
            torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]), torch.tensor([0, 2])
        )
        for _ in range(3):
            optimizer.zero_grad()
            model.training_step(batch, 0)["loss"].backward()
            optimizer.step()
        results.append([p.detach().clone() for p in model.parameters()])
    assert optimizer.defaults["fused"] is True
    torch.testing.assert_close(results[0], results[1])


def test_training_steps_fit_a_small_batch():
    torch.manual_seed(0)
    model = SequenceClassifier(
        30, 3, encoder=functools.partial(GRUEncoder, hidden_size=16), embedding_dim=8, dropout=0.0
    )
    batch = _batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(
            model(batch.input_ids, batch.lengths).logits, batch.labels
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 < losses[0]


def test_predict_step_returns_probabilities_and_index():
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8).eval()
    out = model.predict_step(_batch(), 0)
    assert torch.allclose(out["probs"].sum(-1), torch.ones(6))
    assert torch.equal(out["pred"], out["probs"].argmax(-1))
    assert out["index"].tolist() == list(range(6))


def test_stage_without_labels_says_what_to_do():
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8)
    batch = _batch()
    batch.labels = None
    with pytest.raises(ValueError, match="only `predict` runs on unlabelled text"):
        model.validation_step(batch, 0)


def test_steps_return_loss_and_detached_logits_for_callbacks():
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8)
    out = model._common_step(_batch(), "val")
    assert out["loss"].requires_grad and not out["logits"].requires_grad
    assert out["logits"].shape == (6, 3) and torch.equal(out["preds"], out["logits"].argmax(-1))


def test_encoder_by_dotted_class_path_string():
    model = SequenceClassifier(30, 3, encoder="lit_seqcls.encoders.CNNEncoder", embedding_dim=8)
    assert isinstance(model.network.encoder, CNNEncoder)
    with pytest.raises(ValueError, match="which is not a subclass of Encoder"):
        SequenceClassifier(30, 3, encoder="torch.nn.Linear")


def _save(model: SequenceClassifier, path) -> object:
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=0,
    )
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def test_the_system_holds_a_plain_network_and_forwards_through_it():
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8).eval()
    assert type(model.network) is TextClassifierNetwork
    assert not isinstance(model.network, L.LightningModule)
    assert {name.split(".")[0] for name, _ in model.named_parameters()} == {"network"}
    batch = _batch()
    expected = model.network(batch.input_ids, batch.lengths).logits
    assert torch.equal(model(batch.input_ids, batch.lengths).logits, expected)


def _old_format(path, vocab: int | None = None) -> None:
    """Rewrite a checkpoint as written before #15: flat keys, a `pad_id` hyper-parameter, and
    LightningCLI's instantiator (the hyper-parameters a CLI run saves)."""
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint["state_dict"]
    checkpoint["state_dict"] = {k.removeprefix("network."): v for k, v in state.items()}
    if vocab is not None:
        checkpoint["state_dict"]["embedding.weight"] = torch.zeros(vocab, 8)
    checkpoint["hyper_parameters"]["pad_id"] = 0
    checkpoint["hyper_parameters"]["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
    torch.save(checkpoint, path)


def test_a_checkpoint_saved_before_the_network_module_still_loads(tmp_path):
    factory = functools.partial(GRUEncoder, hidden_size=6)
    model = SequenceClassifier(30, 3, encoder=factory, embedding_dim=8).eval()
    path = _save(model, tmp_path / "old.ckpt")
    _old_format(path)
    assert "embedding.weight" in torch.load(path, weights_only=True)["state_dict"]
    again = SequenceClassifier.load_from_checkpoint(path).eval()
    batch = _batch()
    assert torch.equal(
        again(batch.input_ids, batch.lengths).logits, model(batch.input_ids, batch.lengths).logits
    )
    # Built by jsonargparse (the instantiator), the encoder is still saved as plain data.
    assert again.hparams.encoder["class_path"] == "lit_seqcls.encoders.gru.GRUEncoder"
    assert again.hparams.encoder["init_args"]["hidden_size"] == 6
    assert "pad_id" not in again.hparams


def test_an_old_checkpoint_of_other_data_is_refused_in_words(tmp_path):
    path = _save(SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8), tmp_path / "o.ckpt")
    _old_format(path, vocab=40)
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8)
    with pytest.raises(CheckpointError, match="a vocabulary of 40 tokens and 3 classes"):
        model.on_load_checkpoint(torch.load(path, weights_only=True))


def test_pad_id_is_fixed_at_zero():
    SequenceClassifier(30, 3, encoder="cnn", pad_id=0)  # what older checkpoints hold
    with pytest.raises(ConfigValueError, match="pad_id must be 0"):
        SequenceClassifier(30, 3, encoder="cnn", pad_id=1)
