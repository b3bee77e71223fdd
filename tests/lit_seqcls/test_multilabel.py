"""Multi-label classification (#18 part 2): data, model, thresholds, predict, every encoder.

A label column holding lists of names makes the task multi-label by itself; the model then
trains a sigmoid per label with binary cross-entropy, tunes a threshold per label on the
validation split and writes label sets from ``predict``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules import TextDataModule
from datamodules.schema import DataError
from lit_seqcls import SequenceClassifier
from lit_seqcls.batch import collate
from lit_seqcls.calibration import (
    fit_sigmoid_temperature,
    fit_thresholds,
    multilabel_calibration_report,
    pos_weights,
)
from lit_seqcls.cli import main
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.runtime.prediction import _rows
from lit_seqcls.validation import ConfigValueError

ROOT = Path(__file__).resolve().parents[2]
CNN = str(ROOT / "configs" / "model" / "cnn.yaml")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _module(tmp_path, train, test=None, **kwargs) -> TextDataModule:
    files = {"train": write_jsonl(tmp_path / "train.jsonl", train)}
    if test is not None:
        files["test"] = write_jsonl(tmp_path / "test.jsonl", test)
    return TextDataModule(data_files=files, cache_dir=str(tmp_path / "cache"), **kwargs)


# ---- data ------------------------------------------------------------------------------------
def test_json_lists_make_the_data_multi_label(tag_rows, tmp_path):
    rows = tag_rows(40)
    dm = _module(tmp_path, rows, tag_rows(10, seed=1), batch_size=8)
    assert dm.multi_label and dm.label_task == "multi_label"
    assert dm.class_names == ["db", "net", "web"]
    dm.setup("fit")
    counts = {name: 0 for name in ("db", "net", "web")}
    for row in dm.splits["train"]["label"]:
        for i in row:
            counts[dm.class_names[i]] += 1
    assert dm.class_counts == counts and dm.num_train_texts == len(dm.splits["train"])
    batch = next(iter(dm.val_dataloader()))
    assert batch.labels.shape == (len(batch), 3) and batch.labels.dtype == torch.float32
    assert set(batch.labels.unique().tolist()) <= {0.0, 1.0}
    assert dm.text_pipeline["task"] == "multi_label"
    # A warm start reads the task from the cache, without the raw data.
    again = _module(tmp_path, rows, tag_rows(10, seed=1))
    assert again.multi_label and again._splits is None


def test_single_label_data_stays_single_label(tmp_path):
    rows = [{"text": f"w{i}", "label": ["a", "b"][i % 2]} for i in range(20)]
    dm = _module(tmp_path, rows)
    assert not dm.multi_label and dm.label_task == "single_label"
    assert dm.text_pipeline["task"] == "single_label"


def test_label_delimiter_splits_strings(tmp_path):
    path = tmp_path / "train.csv"
    lines = ["text,label"] + [f"t{i} x,{'net|web' if i % 3 else ''}" for i in range(30)]
    lines += ["solo,db"]
    path.write_text("\n".join(lines) + "\n")
    dm = TextDataModule(data_files={"train": str(path)}, label_delimiter="|",
                        cache_dir=str(tmp_path / "cache"))  # fmt: skip
    assert dm.multi_label and dm.class_names == ["db", "net", "web"]
    labels = [sorted(r) for s in ("train", "validation") for r in dm.splits[s]["label"]]
    assert [1, 2] in labels and [] in labels and [0] in labels


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        (
            [{"text": "a", "label": ["x"]}, {"text": "b", "label": "y"}],
            None,
            r"line 2, field 'label': a string \('y'\), but line 1 of train.jsonl has a list",
        ),
        (
            [{"text": "a", "label": ["x"]}, {"text": "b", "label": ["y", ""]}],
            None,
            r"row 2, field 'label': the label list holds ''",
        ),
        (
            [{"text": "a", "label": ["x"]}, {"text": "b", "label": None}],
            None,
            r"row 2, field 'label': the label is missing",
        ),
        (
            [{"text": "a", "label": []}, {"text": "b", "label": []}],
            None,
            r"every training row has an empty label list",
        ),
        (
            [{"text": f"t{i}", "label": [["x", "y"][i % 2]]} for i in range(10)],
            [{"text": "a", "label": ["x"]}, {"text": "b", "label": ["x", "zzz"]}],
            r"test\.jsonl \(split 'test'\), row 2, field 'label': label 'zzz' was never seen",
        ),
    ],
    ids=["mixed-list-scalar", "empty-name", "null", "all-empty", "unknown-at-test"],
)
def test_bad_multi_label_rows_are_named(tmp_path, train, test, expected):
    dm = _module(tmp_path, train, test)
    with pytest.raises(DataError, match=expected):
        _ = dm.splits


def test_collate_makes_multi_hot_rows():
    batch = collate([{"input_ids": [1, 2], "label": [2]}, {"input_ids": [3], "label": [0, 1]}],
                    num_labels=3)  # fmt: skip
    assert batch.labels.tolist() == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]


# ---- calibration maths -----------------------------------------------------------------------
def test_pos_weights_are_negatives_over_positives():
    weights = pos_weights(["a", "b", "c"], {"a": 1, "b": 3}, 4)
    assert weights.tolist() == pytest.approx([3, 1 / 3, 1])


def test_sigmoid_temperature_matches_a_hand_computed_one():
    # Half the logits at 2 are positive: sigmoid(2 / T) = 3/4 needs T = 2 / ln 3.
    logits = torch.full((8, 1), 2.0)
    targets = torch.tensor([[1]] * 6 + [[0]] * 2)
    assert fit_sigmoid_temperature(logits, targets) == pytest.approx(2 / torch.log(
        torch.tensor(3.0)).item(), rel=1e-6)  # fmt: skip


def test_multilabel_report_counts_every_pair():
    logits = torch.tensor([[3.0, -3.0], [-3.0, 3.0]])
    report = multilabel_calibration_report(logits, torch.tensor([[1, 0], [0, 1]]), 1.0,
                                           torch.tensor([0.5, 0.5]))  # fmt: skip
    assert report["accuracy"] == 1.0 and report["f1"] == [1.0, 1.0]
    assert sum(b["count"] for b in report["bins"]) == 4


def test_prediction_rows_are_label_sets():
    batch = {"probs": torch.tensor([[0.9, 0.2, 0.7]]), "labels": torch.tensor([[1, 0, 1]]),
             "index": torch.tensor([4])}  # fmt: skip
    (row,) = _rows(batch, ["db", "net", "web"])
    assert row["labels"] == ["db", "web"] and "label" not in row
    assert row["probs"] == {"db": 0.9, "net": 0.2, "web": 0.7}


# ---- the model, every encoder ------------------------------------------------------------------
def test_task_is_validated():
    with pytest.raises(ConfigValueError, match="task must be one of"):
        SequenceClassifier(vocab_size=10, num_classes=2, task="multilabel")


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_every_encoder_trains_and_predicts_label_sets(encoder):
    torch.manual_seed(0)
    model = SequenceClassifier(vocab_size=20, num_classes=3, encoder=encoder, embedding_dim=8,
                               task="multi_label", class_weights={"net": 2.0},
                               class_names=["db", "net", "web"])  # fmt: skip
    batch = collate([{"input_ids": [5, 6, 7], "label": [0, 2], "index": 0},
                     {"input_ids": [8], "label": [], "index": 1}], num_labels=3)  # fmt: skip
    out = model._common_step(batch, "val")
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert out["preds"].shape == (2, 3) and set(out["preds"].unique().tolist()) <= {0, 1}
    out["loss"].backward()
    assert model.network.embedding.weight.grad.abs().sum() > 0
    assert model.thresholds.tolist() == [0.5] * 3 and "thresholds" in model.state_dict()
    model.thresholds.copy_(torch.tensor([0.0, 1.1, 0.0]))  # every label / none / every
    pred = model.predict_step(batch, 0)
    assert pred["labels"].tolist() == [[1, 0, 1], [1, 0, 1]]
    assert pred["probs"].shape == (2, 3) and ((pred["probs"] > 0) & (pred["probs"] < 1)).all()


def test_single_label_models_have_no_thresholds():
    model = SequenceClassifier(vocab_size=10, num_classes=2, encoder="swem", embedding_dim=4)
    assert not hasattr(model, "thresholds") and "thresholds" not in model.state_dict()


def test_fit_tunes_thresholds_on_validation_and_the_checkpoint_keeps_them(
    tag_rows, tmp_path, validation_logits
):
    dm = _module(tmp_path, tag_rows(120), tag_rows(30, seed=1), batch_size=16)
    torch.manual_seed(0)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="swem", embedding_dim=8,
                               class_names=dm.class_names, task=dm.label_task, class_weights="auto",
                               optimizer=lambda p: torch.optim.AdamW(p, lr=0.05))  # fmt: skip
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        enable_checkpointing=False, accelerator="cpu")  # fmt: skip
    trainer.fit(model, dm)
    counts, total = dm.class_counts, dm.num_train_texts
    assert torch.allclose(model.loss_weight, pos_weights(dm.class_names, counts, total))
    # The thresholds are those of the validation probabilities at the fitted temperature.
    logits, labels = validation_logits(model, dm)
    temperature = fit_sigmoid_temperature(logits, labels)
    assert float(model.temperature) == pytest.approx(temperature, rel=1e-5)
    expected = fit_thresholds((logits / model.temperature).sigmoid(), labels)
    assert torch.allclose(model.thresholds, expected, atol=1e-6)
    assert not torch.equal(model.thresholds, torch.full((3,), 0.5))
    assert trainer.callback_metrics["val/f1_micro"] > 0.5
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = SequenceClassifier.load_from_checkpoint(ckpt)
    assert loaded.multi_label and torch.equal(loaded.thresholds, model.thresholds)
    assert float(loaded.temperature) == float(model.temperature)
    test = trainer.test(model, dm, verbose=False)[0]
    assert {"test/acc", "test/f1_micro", "test/f1_macro", "test/map", "test/f1/net"} <= set(test)


# ---- the command: fit on tags_*.jsonl with no other flag, predict from the checkpoint ----
@pytest.fixture
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


@pytest.mark.slow
def test_fit_on_tag_lists_then_predict_label_sets_from_the_checkpoint(
    tag_rows, tmp_path, cli_runs, _argv
):
    train = write_jsonl(tmp_path / "tags_train.jsonl", tag_rows(150))
    test = write_jsonl(tmp_path / "tags_test.jsonl", tag_rows(40, seed=1))
    main(["fit", "--data", "datamodules.TextDataModule", "--data.path", "json",
          "--data.data_files.train", train, "--data.data_files.test", test,
          "--config", CNN, "--trainer.max_epochs=2", *QUIET])  # fmt: skip
    (run,) = cli_runs
    assert run.model.hparams.task == "multi_label" and run.model.multi_label
    ckpt = run.trainer.checkpoint_callback.best_model_path
    new = tmp_path / "new.txt"
    new.write_text("sql query tcp\nthe a of\n")
    out = tmp_path / "preds.jsonl"
    main(["predict", "--ckpt_path", ckpt, "--data.data_files.predict", str(new),
          "--predictions.output", str(out), *QUIET])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["sql query tcp", "the a of"]
    for row in rows:
        assert set(row["labels"]) <= {"db", "net", "web"}
        assert set(row["probs"]) == {"db", "net", "web"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_analysis_callbacks_handle_multi_label(tag_rows, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from callbacks import (
        AttentionMapLogger,
        CalibrationLogger,
        ConfusionMatrixLogger,
        LengthAnalysisLogger,
        MisclassifiedLogger,
    )

    dm = _module(tmp_path, tag_rows(80), tag_rows(20, seed=1), batch_size=16)
    torch.manual_seed(0)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="attention",
                               embedding_dim=8, class_names=dm.class_names,
                               task=dm.label_task)  # fmt: skip
    callbacks = [AttentionMapLogger(num_examples=4), CalibrationLogger(), ConfusionMatrixLogger(),
                 LengthAnalysisLogger(), MisclassifiedLogger()]  # fmt: skip
    trainer = L.Trainer(max_epochs=1, logger=CSVLogger(tmp_path / "logs"), callbacks=callbacks,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, accelerator="cpu")  # fmt: skip
    trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    media = Path(trainer.log_dir) / "media"
    (labels_csv,) = sorted((media / "confusion_matrix").glob("test*_labels.csv"))
    lines = labels_csv.read_text().splitlines()
    assert lines[0] == "label,tp,fp,fn,tn,precision,recall,f1" and len(lines) == 4
    assert sum(int(line.split(",")[1]) + int(line.split(",")[3]) for line in lines[1:]) == sum(
        len(r) for r in dm.splits["test"]["label"]
    )  # every true label of the test texts counted once (tp + fn)
    assert list((media / "token_weights").glob("*.csv"))
    assert list((media / "calibration").glob("test*_reliability.csv"))


def test_compare_writes_label_sets_as_its_per_example_predictions():
    from lit_seqcls.compare.reporter import _prediction

    row = (3, 5, [1.0, 0.0, 1.0], [1, 1, 0], [0.9, 0.6, 0.4])
    line = _prediction(row, ["db", "net", "web"])
    assert line == {"index": 3, "label": "db|web", "pred": "db|net",
                    "probs": {"db": 0.9, "net": 0.6, "web": 0.4}}  # fmt: skip


def test_min_confidence_is_refused_for_multi_label_models():
    from lit_seqcls.runtime.prediction import PredictionWriter

    model = SequenceClassifier(vocab_size=10, num_classes=2, encoder="swem", embedding_dim=4,
                               task="multi_label")  # fmt: skip
    trainer = L.Trainer(logger=False, enable_progress_bar=False, accelerator="cpu")
    with pytest.raises(ConfigValueError, match="min_confidence applies to single-label"):
        PredictionWriter(min_confidence=0.8).setup(trainer, model, "predict")
