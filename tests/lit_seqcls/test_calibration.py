"""Class weights, label smoothing, temperature scaling, ECE and the coverage curve (#18)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from lit_seqcls import Batch, SequenceClassifier
from lit_seqcls.calibration import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    class_weights,
    coverage_curve,
    fit_temperature,
    fit_thresholds,
    reliability,
)
from lit_seqcls.validation import ConfigValueError


def _batch(b=8, t=7, vocab=30, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    ids = torch.randint(2, vocab, (b, t), generator=g)
    ids[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    return Batch(ids, lengths, torch.randint(0, classes, (b,), generator=g), torch.arange(b))


# ---- temperature --------------------------------------------------------------------------------
def test_temperature_matches_a_hand_computed_value():
    # Binary, every text with logits (2, 0): 4 right, 1 wrong. NLL(b) = 4 log(1 + e^-2b) +
    # log(1 + e^2b); its derivative is zero where sigmoid(2b) = 4/5, so b = ln(4) / 2, T = 1/b.
    logits = torch.tensor([[2.0, 0.0]] * 5)
    labels = torch.tensor([0, 0, 0, 0, 1])
    assert fit_temperature(logits, labels) == pytest.approx(2 / math.log(4), abs=1e-9)


def test_temperature_minimises_the_nll_and_ignores_row_order():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 5, generator=g) * 4
    labels = torch.where(
        torch.rand(200, generator=g) < 0.6,
        logits.argmax(-1),
        torch.randint(0, 5, (200,), generator=g),
    )
    t = fit_temperature(logits, labels)

    def nll(temp):
        return F.cross_entropy(logits.double() / temp, labels).item()

    assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01))
    assert nll(t) < nll(1.0)  # over-confident logits: T > 1 helps
    perm = torch.randperm(200, generator=g)
    assert fit_temperature(logits[perm], labels[perm]) == pytest.approx(t, rel=1e-9)


def test_temperature_is_clamped_for_separable_and_chance_data():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    assert fit_temperature(logits, torch.tensor([0, 1])) == MIN_TEMPERATURE  # always right
    assert fit_temperature(logits, torch.tensor([1, 0])) == MAX_TEMPERATURE  # always wrong
    assert fit_temperature(torch.empty(0, 2), torch.empty(0, dtype=torch.long)) == 1.0


# ---- per-label thresholds (multi-label) ---------------------------------------------------------
def _f1(pred: torch.Tensor, target: torch.Tensor) -> float:
    tp = float((pred & target).sum())
    return 2 * tp / (float(pred.sum()) + float(target.sum()))


def test_thresholds_reach_the_best_f1_of_any_threshold_and_ignore_row_order():
    g = torch.Generator().manual_seed(4)
    targets = (torch.rand(80, 4, generator=g) < 0.3).bool()
    probs = (targets.float() * 0.3 + torch.rand(80, 4, generator=g) * 0.7).round(decimals=2)
    probs[:, 3] = 0.5  # one probability for every text: all or nothing
    thresholds = fit_thresholds(probs, targets)
    for c in range(4):
        best = max(_f1(probs[:, c] >= t, targets[:, c]) for t in probs[:, c].unique().tolist())
        assert _f1(probs[:, c] >= thresholds[c], targets[:, c]) == pytest.approx(best)
    perm = torch.randperm(80, generator=g)
    assert torch.equal(fit_thresholds(probs[perm], targets[perm]), thresholds)
    assert fit_thresholds(probs, torch.zeros_like(targets)).tolist() == [0.5] * 4  # no positive


# ---- ECE and the coverage curve ------------------------------------------------------------------
def test_ece_equals_torchmetrics_and_a_hand_count():
    g = torch.Generator().manual_seed(2)
    probs = torch.randn(300, 4, generator=g).mul(3).softmax(-1)
    labels = torch.randint(0, 4, (300,), generator=g)
    ece, rows = reliability(probs, labels)
    expected = multiclass_calibration_error(probs, labels, num_classes=4, n_bins=15, norm="l1")
    assert ece == pytest.approx(float(expected), abs=1e-6)
    assert sum(r["count"] for r in rows) == 300 and len(rows) == 15
    # By hand: two texts, confidences 0.9 (right) and 0.6 (wrong): (|0.9-1| + |0.6-0|) / 2.
    ece, _ = reliability(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1]))
    assert ece == pytest.approx(0.35)


def test_coverage_curve_counts_the_confident_texts():
    probs = torch.tensor([[0.95, 0.05], [0.7, 0.3], [0.55, 0.45], [0.2, 0.8]])
    labels = torch.tensor([0, 1, 0, 1])
    rows = coverage_curve(probs, labels, [0.0, 0.6, 0.9, 0.99])
    assert [(r["coverage"], r["accuracy"]) for r in rows] == [
        (1.0, 0.75),
        (0.75, 2 / 3),
        (0.25, 1.0),
        (0.0, None),
    ]


# ---- class weights and label smoothing ----------------------------------------------------------
def test_auto_weights_are_inverse_class_frequency():
    weights = class_weights("auto", ["a", "b", "c"], {"a": 60, "b": 30, "c": 10})
    assert weights.tolist() == pytest.approx([100 / 180, 100 / 90, 100 / 30])
    # A class absent from training is never a target: weight 0, not infinity.
    assert class_weights("auto", ["a", "b"], {"a": 5})[1] == 0
    assert class_weights("none", ["a"], {"a": 1}) is None
    assert class_weights("auto", ["a"], None) is None  # counts come later (setup)


def test_named_weights_refuse_unknown_classes_and_negative_weights():
    assert class_weights({"b": 2.5}, ["a", "b"], None).tolist() == [1.0, 2.5]
    with pytest.raises(ConfigValueError, match=r"unknown classes \['z'\].*the classes are"):
        class_weights({"z": 1.0}, ["a", "b"], None)
    with pytest.raises(ConfigValueError, match="finite numbers >= 0"):
        class_weights({"a": -1.0}, ["a", "b"], None)


def test_weighted_smoothed_loss_is_torch_cross_entropy_with_those_settings():
    names = ["a", "b", "c"]
    counts = {"a": 10, "b": 5, "c": 1}
    model = SequenceClassifier(
        30, 3, encoder="cnn", embedding_dim=8, class_names=names, class_weights="auto",
        class_counts=counts, label_smoothing=0.1, dropout=0.0,
    )  # fmt: skip
    batch = _batch()
    out = model._common_step(batch, "val")
    logits = model(batch.input_ids, batch.lengths).logits
    weight = torch.tensor([16 / 30, 16 / 15, 16 / 3])
    expected = F.cross_entropy(logits, batch.labels, weight=weight, label_smoothing=0.1)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    plain = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8, dropout=0.0)
    plain.load_state_dict(model.state_dict())
    assert plain._common_step(batch, "val")["loss"].item() == pytest.approx(
        F.cross_entropy(logits, batch.labels).item(), rel=1e-5
    )
    with pytest.raises(ConfigValueError, match="label_smoothing"):
        SequenceClassifier(30, 3, label_smoothing=1.0)


def test_auto_weights_without_linked_counts_come_from_the_datamodule_in_setup():
    model = SequenceClassifier(30, 2, class_names=["x", "y"], class_weights="auto")
    assert model.loss_weight is None

    class Data(L.LightningDataModule):
        class_counts = {"x": 3, "y": 1}  # noqa: RUF012

    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.datamodule = Data()
    model.trainer = trainer
    model.setup("fit")
    assert model.loss_weight.tolist() == pytest.approx([4 / 6, 2.0])


# ---- the model: fitted after validation, kept in the checkpoint, used by predict ----------------
def _tiny_fit(tmp_path, kwargs, calibrate=True, epochs=2):
    from datamodules import SyntheticDataModule

    torch.manual_seed(0)
    data = SyntheticDataModule(**kwargs, cache_dir=str(tmp_path / "cache"))
    model = SequenceClassifier(
        data.vocab_size, data.num_classes, encoder="swem", embedding_dim=8,
        class_names=data.class_names, calibrate=calibrate,
    )  # fmt: skip
    trainer = L.Trainer(
        max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, num_sanity_val_steps=1,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return trainer, model, data


def test_fit_calibrates_on_validation_and_the_checkpoint_keeps_it(
    tmp_path, small_synthetic_kwargs, validation_logits
):
    trainer, model, data = _tiny_fit(tmp_path, small_synthetic_kwargs)
    logits, labels = validation_logits(model, data)
    assert float(model.temperature) == pytest.approx(fit_temperature(logits, labels), rel=1e-5)
    assert float(model.temperature) != 1.0
    report = model.calibration["val"]
    assert report["count"] == len(labels)
    assert report["ece"] == pytest.approx(
        reliability((logits / model.temperature).softmax(-1), labels)[0], abs=1e-6
    )
    assert {"val/ece", "val/ece_raw", "val/temperature"} <= set(trainer.callback_metrics)
    # The best checkpoint holds the temperature fitted for its own weights, and the report.
    again = SequenceClassifier.load_from_checkpoint(trainer.checkpoint_callback.best_model_path)
    assert again.calibration["val"]["temperature"] == float(again.temperature)
    # predict and the callbacks' logits are calibrated
    batch = next(iter(data.val_dataloader()))
    again.eval()
    raw = again(batch.input_ids, batch.lengths).logits
    probs = again.predict_step(batch, 0)["probs"]
    assert torch.allclose(probs, (raw / again.temperature).softmax(-1))
    assert torch.allclose(again._common_step(batch, "test")["logits"], raw / again.temperature)


def test_a_validation_split_of_one_text_is_calibrated(tmp_path, small_synthetic_kwargs):
    # torchmetrics gives one gathered label back as a 0-d tensor: the report crashed with
    # "len() of a 0-d tensor" (a user's file of a few rows, validation carved from it).
    kwargs = {**small_synthetic_kwargs, "train_size": 20, "val_fraction": 0.05}
    _, model, data = _tiny_fit(tmp_path, kwargs, epochs=1)
    assert len(data.splits["validation"]) == 1
    assert model.calibration["val"]["count"] == 1


def test_calibrate_false_keeps_temperature_one(tmp_path, small_synthetic_kwargs):
    _, model, _ = _tiny_fit(tmp_path, small_synthetic_kwargs, calibrate=False, epochs=1)
    assert float(model.temperature) == 1.0
    report = model.calibration["val"]
    assert report["ece"] == report["ece_raw"]


def test_a_checkpoint_saved_before_calibration_loads_uncalibrated(tmp_path):
    model = SequenceClassifier(30, 3, encoder="cnn", embedding_dim=8)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, max_epochs=0)
    trainer.strategy.connect(model)
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["state_dict"]["temperature"]
    torch.save(checkpoint, path)
    assert float(SequenceClassifier.load_from_checkpoint(path).temperature) == 1.0


# ---- abstaining: predict --predictions.min_confidence -------------------------------------------
def test_rows_below_min_confidence_are_left_unlabelled():
    from lit_seqcls.runtime.prediction import _rows

    batch = {
        "probs": torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]]),
        "pred": torch.tensor([0, 0, 1]),
        "index": torch.tensor([0, 1, 2]),
    }
    assert [r["label"] for r in _rows(batch, ["a", "b"])] == ["a", "a", "b"]
    rows = _rows(batch, ["a", "b"], min_confidence=0.8)
    assert [r["label"] for r in rows] == ["a", None, "b"]
    assert rows[1]["probs"] == {"a": 0.55, "b": 0.45}  # the probabilities are still given


def test_min_confidence_is_checked_and_reports_the_validation_trade_off():
    from lit_seqcls.runtime.prediction import PredictionWriter, _validation_trade_off

    with pytest.raises(ConfigValueError, match="min_confidence"):
        PredictionWriter(min_confidence=1.5)
    model = SequenceClassifier(30, 2)
    assert "saved before #18" in _validation_trade_off(model, 0.8)
    probs = torch.tensor([[0.95, 0.05], [0.7, 0.3], [0.55, 0.45], [0.2, 0.8]])
    labels = torch.tensor([0, 1, 0, 1])
    model.calibration["val"] = {"coverage": coverage_curve(probs, labels)}
    message = _validation_trade_off(model, 0.805)  # the curve's nearest threshold below: 0.8
    assert (
        "threshold of 0.8 kept 50.0% of the texts at accuracy 1.000 (all texts: 0.750)" in message
    )


# ---- through the CLI: linked counts, YAML and command-line weights -------------------------------
CLI_ARGS = [
    "--config", str(Path(__file__).resolve().parents[2] / "configs" / "data" / "synthetic.yaml"),
    "--data.init_args.train_size=120", "--data.init_args.test_size=20",
    "--data.init_args.median_length=8", "--data.init_args.max_text_length=20",
    "--model.embedding_dim=8", "--trainer.logger=false",
]  # fmt: skip


def _cli(*args: str):
    from lit_seqcls.cli import SeqClsCLI, cli_kwargs

    return SeqClsCLI(
        SequenceClassifier, L.LightningDataModule, **cli_kwargs(), run=False,
        args=[*CLI_ARGS, *args],
    )  # fmt: skip


def test_the_cli_links_class_counts_and_parses_weights_from_yaml_and_the_command_line(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cli = _cli("--model.class_weights=auto", "--model.label_smoothing=0.1")
    counts = cli.datamodule.class_counts
    assert cli.model.hparams.class_counts == counts
    assert sum(counts.values()) == len(cli.datamodule.splits["train"])  # the training split only
    labels = cli.datamodule.splits["train"]["label"]
    assert list(counts.values()) == [labels.count(i) for i in range(len(counts))]
    expected = class_weights("auto", cli.datamodule.class_names, counts)
    assert torch.allclose(cli.model.loss_weight, expected)
    assert cli.model.label_smoothing == 0.1

    assert _cli("--model.class_weights={topic_1: 3.0}").model.loss_weight.tolist() == [
        1.0, 3.0, 1.0, 1.0,
    ]  # fmt: skip
    config = tmp_path / "weights.yaml"
    config.write_text("model:\n  class_weights:\n    topic_0: 0.5\n  calibrate: false\n")
    model = _cli("--config", str(config)).model
    assert model.loss_weight.tolist() == [0.5, 1.0, 1.0, 1.0] and model.calibrate is False


@pytest.mark.slow
def test_fit_with_auto_weights_then_predict_abstains_from_the_checkpoint_alone(tmp_path, run_cli):
    configs = Path(__file__).resolve().parents[2] / "configs"
    out = run_cli(
        "fit", *CLI_ARGS[:-1], "--config", str(configs / "model" / "cnn.yaml"),
        "--model.class_weights=auto", "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false", cwd=tmp_path,
    )  # fmt: skip
    ckpt = tmp_path / re.search(r"--ckpt_path (\S+\.ckpt)", out).group(1)
    checkpoint = torch.load(ckpt, weights_only=True)
    assert checkpoint["hyper_parameters"]["class_weights"] == "auto"
    assert sum(checkpoint["hyper_parameters"]["class_counts"].values()) > 0
    temperature = float(checkpoint["state_dict"]["temperature"])
    assert temperature != 1.0 and checkpoint["calibration"]["temperature"] == temperature
    texts = tmp_path / "new.txt"
    texts.write_text("".join(f"topic word {i} filler filler\n" for i in range(12)))
    predictions = tmp_path / "predictions.jsonl"
    out = run_cli(
        "predict", "--ckpt_path", str(ckpt), "--data.data_files.predict", str(texts),
        "--predictions.output", str(predictions), "--predictions.min_confidence=0.99",
        cwd=tmp_path,
    )  # fmt: skip
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:
        top = max(row["probs"].values())
        assert (row["label"] is None) == (top < 0.99)
    assert re.search(r"\d+ of 12 texts left unlabelled \(top probability below 0.99\)", out)
    assert "On the validation split, a threshold of 0.99 kept" in out
