"""A real fit + test with every analysis callback, W&B offline; read back what W&B wrote."""

from __future__ import annotations

import csv
import functools
import html
import json
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from callbacks import (
    AttentionMapLogger,
    CalibrationLogger,
    ConfusionMatrixLogger,
    LengthAnalysisLogger,
    MisclassifiedLogger,
)
from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.attribution import token_weights
from lit_seqcls.encoders import AttentionEncoder, GRUEncoder
from lit_seqcls.runtime.wandb_logger import WandbLogger

DATA = {
    "num_classes": 3, "train_size": 240, "test_size": 60, "median_length": 12,
    "max_text_length": 40, "batch_size": 16, "seed": 3,
}  # fmt: skip
TOP_K = 5


class Run:
    """One fit + test and the files it left: the W&B offline run dir and the local log dir."""

    def __init__(self, root: Path, encoder, max_epochs: int, callbacks: list) -> None:
        self.dm = SyntheticDataModule(**DATA)
        torch.manual_seed(0)
        self.model = SequenceClassifier(
            self.dm.vocab_size, self.dm.num_classes, encoder=encoder, embedding_dim=16,
            class_names=self.dm.class_names,
        )  # fmt: skip
        loggers = [CSVLogger(root / "logs"), WandbLogger(save_dir=str(root / "logs"))]
        self.trainer = L.Trainer(
            max_epochs=max_epochs, logger=loggers, callbacks=callbacks, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        self.trainer.fit(self.model, self.dm)
        self.trainer.test(self.model, self.dm)
        import wandb

        wandb.finish()
        (self.run_dir,) = (root / "logs" / "wandb").glob("offline-run-*")
        self.media = Path(self.trainer.log_dir) / "media"
        self.staged = root / "wandb_data" / "artifacts" / "staging"

    def tables(self, key: str) -> list[dict]:
        """Every table logged under ``key``, in logging order (W&B's step is in the name)."""
        files = (self.run_dir / "files" / "media" / "table").glob(f"{key}_[0-9]*.table.json")
        step = lambda p: int(p.name[len(Path(key).name) + 1 :].split("_")[0])  # noqa: E731
        return [json.loads(p.read_text()) for p in sorted(files, key=step)]

    def rows(self, key: str) -> list[dict]:
        table = self.tables(key)[-1]
        return [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]

    def ids(self, split: str, index: int) -> list[int]:
        loader = self.dm.val_dataloader() if split == "validation" else self.dm.test_dataloader()
        for batch in loader:
            for row, i in enumerate(batch.index.tolist()):
                if i == index:
                    return batch.input_ids[row, : batch.lengths[row]].tolist()
        raise KeyError(index)


def _offline_env(root: Path) -> dict[str, str]:
    # Module-scoped fixtures run before the per-test environment fixtures, so set it here too.
    names = ("DIR", "DATA_DIR", "CACHE_DIR", "CONFIG_DIR")
    return (
        {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        | {f"WANDB_{n}": str(root / f"wandb_{n.lower()}") for n in names}
        | {"WANDB_DATA_DIR": str(root / "wandb_data")}
    )


def _fit(tmp_path_factory, *args) -> Run:
    root = tmp_path_factory.mktemp("fit")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _offline_env(root).items():
            mp.setenv(key, value)
        mp.chdir(root)
        return Run(root, *args)


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory) -> Run:
    callbacks = [
        ConfusionMatrixLogger(),
        AttentionMapLogger(num_examples=6),
        LengthAnalysisLogger(num_buckets=4),
        MisclassifiedLogger(top_k=TOP_K),
    ]
    return _fit(tmp_path_factory, functools.partial(AttentionEncoder, hidden_size=16), 2, callbacks)


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory) -> Run:
    callbacks = [AttentionMapLogger(num_examples=4), CalibrationLogger()]
    return _fit(tmp_path_factory, functools.partial(GRUEncoder, hidden_size=16), 1, callbacks)


def test_confusion_matrix_counts_every_validation_and_test_text_once(attention_run):
    run = attention_run
    val, test = len(run.dm.splits["validation"]), len(run.dm.splits["test"])
    counts = run.tables("val/confusion_matrix_counts")
    assert len(counts) == 2  # one per epoch, none for the sanity check
    for table in counts:
        assert table["columns"] == ["true \\ predicted", *run.dm.class_names]
        assert sum(sum(row[1:]) for row in table["data"]) == val
    chart = run.tables("val/confusion_matrix_table")[-1]  # the chart's long-form table
    assert sum(row[2] for row in chart["data"]) == val
    assert {row[0] for row in chart["data"]} == set(run.dm.class_names)
    (test_counts,) = run.tables("test/confusion_matrix_counts")
    assert sum(sum(row[1:]) for row in test_counts["data"]) == test
    # The row sums are the true class sizes of the validation split.
    labels = run.dm.splits["validation"]["label"]
    assert [sum(row[1:]) for row in counts[-1]["data"]] == [
        labels.count(c) for c in range(run.dm.num_classes)
    ]


def test_logged_attention_weights_are_the_models_weights(attention_run):
    run = attention_run
    rows = run.rows("val/token_weights")
    assert len(rows) == 6
    per_class = [sum(r["true"] == name for r in rows) for name in run.dm.class_names]
    assert per_class == [2, 2, 2]  # balanced
    run.model.eval()
    # Calibrated (#18): the last epoch's maps use the temperature fitted after the epoch before.
    with open(Path(run.trainer.log_dir) / "metrics.csv", encoding="utf-8") as f:
        fitted = [float(r["val/temperature"]) for r in csv.DictReader(f) if r["val/temperature"]]
    for row in rows:
        ids = run.ids("validation", row["index"])
        with torch.no_grad():
            out = run.model(torch.tensor([ids]), torch.tensor([len(ids)]))
        logged = torch.tensor(json.loads(row["weights"]))
        torch.testing.assert_close(logged, out.attention[0], rtol=0, atol=1e-6)
        confidence = (out.logits / fitted[-2]).softmax(-1).max().item()
        assert row["confidence"] == pytest.approx(confidence, abs=1e-5)
        tokens = [run.dm.tokenizer.id_to_token(i) for i in ids]
        assert json.loads(row["tokens"]) == tokens
        assert row["text"] == run.dm.texts("validation")[row["index"]]


def test_the_html_w_and_b_stages_shows_every_token_of_each_example(attention_run):
    run = attention_run
    staged = [p.read_text(errors="replace") for p in run.staged.iterdir()]
    spans = [re.findall(r"<span[^>]*>([^<]*)</span>", text) for text in staged]
    for row in run.rows("val/token_weights"):
        tokens = [html.escape(t) for t in json.loads(row["tokens"])]
        assert tokens in spans, row["index"]


def test_the_same_examples_are_shown_every_epoch(attention_run):
    first, last = attention_run.tables("val/token_weights")
    assert [r[0] for r in first["data"]] == [r[0] for r in last["data"]]


def test_other_encoders_get_integrated_gradients_importance(gru_run):
    run = gru_run
    rows = run.rows("val/token_weights")
    ids = [run.ids("validation", r["index"]) for r in rows]
    width = max(map(len, ids))
    batch = torch.tensor([x + [0] * (width - len(x)) for x in ids])
    weights, _ = token_weights(run.model, batch, torch.tensor([len(x) for x in ids]))
    for row, w, n in zip(rows, weights, map(len, ids), strict=True):
        logged = torch.tensor(json.loads(row["weights"]))
        torch.testing.assert_close(logged, w[:n], atol=1e-5, rtol=0)
    page = (run.media / "token_weights" / "val_epoch000.html").read_text()
    assert "Token importance (integrated gradients), validation, epoch 0" in page


def test_length_analysis_covers_every_text(attention_run):
    run = attention_run
    rows = run.rows("val/accuracy_by_length_table")
    assert sum(r["texts"] for r in rows) == len(run.dm.splits["validation"])
    lows, highs = [r["min_length"] for r in rows], [r["max_length"] for r in rows]
    assert lows == sorted(lows) and all(h < lo for h, lo in zip(highs[:-1], lows[1:], strict=True))
    (test_rows,) = [run.rows("test/accuracy_by_length_table")]
    assert sum(r["texts"] for r in test_rows) == len(run.dm.splits["test"])


def test_misclassified_table_holds_the_most_confident_errors(attention_run):
    run = attention_run
    run.model.eval()
    errors = []
    for batch in run.dm.test_dataloader():
        with torch.no_grad():
            logits = run.model(batch.input_ids, batch.lengths).logits
            probs = (logits / run.model.temperature).softmax(-1)  # calibrated (#18)
        for row, i in enumerate(batch.index.tolist()):
            if probs[row].argmax() != batch.labels[row]:
                errors.append((probs[row].max().item(), i))
    expected = [i for _, i in sorted(errors, reverse=True)[:TOP_K]]
    rows = run.rows("test/misclassified")
    assert [r["index"] for r in rows] == expected
    assert all(r["true"] != r["predicted"] for r in rows)
    assert rows[0]["text"] == run.dm.texts("test")[expected[0]]


def test_every_picture_and_table_is_also_written_locally(attention_run):
    media = attention_run.media
    for name in ("confusion_matrix", "accuracy_by_length"):
        for stem in ("val_epoch000", "val_epoch001", "test_epoch001"):  # test: the last epoch
            for ext in ("png", "csv"):
                assert (media / name / f"{stem}.{ext}").is_file(), (name, stem, ext)
    for ext in ("png", "csv", "html"):
        assert (media / "token_weights" / f"val_epoch001.{ext}").is_file()
    assert (media / "misclassified" / "test_epoch001.csv").is_file()


def test_calibration_is_drawn_per_validation_epoch_and_for_test(gru_run):
    run = gru_run
    report = run.model.calibration
    (val_curve,) = run.tables("val/coverage_accuracy")  # one epoch, no sanity check
    (test_curve,) = run.tables("test/coverage_accuracy")
    assert val_curve["columns"] == ["min_confidence", "coverage", "accuracy"]
    assert val_curve["data"][0][:2] == [0.0, 1.0]  # threshold 0 labels every text
    assert [row[1] for row in test_curve["data"]] == [
        r["coverage"] for r in report["test"]["coverage"]
    ]
    files = {p.name for p in (run.media / "calibration").iterdir()}
    for stem in ("val_epoch000", "test_epoch000"):
        for name in ("reliability.png", "reliability.csv", "coverage.png", "coverage.csv"):
            assert f"{stem}_{name}" in files
    images = list((run.run_dir / "files" / "media" / "images").rglob("*reliability_diagram*.png"))
    assert len(images) == 2
