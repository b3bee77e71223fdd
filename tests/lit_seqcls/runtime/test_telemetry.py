import csv
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.batch import collate
from lit_seqcls.runtime import BatchTelemetry, check_equal_batch_counts, distributed


def test_padding_ratio_counts_pad_tokens_of_the_tensor():
    batch = collate([{"input_ids": [1] * 6}, {"input_ids": [2] * 2}], pad_to_multiple_of=8)
    assert batch.padding_ratio == pytest.approx(1 - 8 / 16)


def test_fit_logs_padding_ratio_and_tokens_per_second(tmp_path, small_synthetic_kwargs):
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8)
    trainer = L.Trainer(
        max_epochs=1, callbacks=[BatchTelemetry()], logger=CSVLogger(tmp_path), log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, dm)
    text = (Path(trainer.logger.log_dir) / "metrics.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    ratios = [float(r["train/padding_ratio"]) for r in rows if r.get("train/padding_ratio")]
    speeds = [float(r["train/tokens_per_sec"]) for r in rows if r.get("train/tokens_per_sec")]
    assert len(ratios) == len(dm.train_dataloader()) and all(0 <= r < 0.5 for r in ratios)
    assert len(speeds) == len(ratios) - 1 and all(s > 0 for s in speeds)


def test_batch_counts_are_compared_across_ranks(monkeypatch):
    trainer = L.Trainer(logger=False)
    assert distributed.gather_objects(trainer, 5) == [5]  # one process: only its own count
    assert check_equal_batch_counts(trainer) is None
    monkeypatch.setattr(distributed, "gather_objects", lambda trainer, count: [3, 4])
    with pytest.raises(RuntimeError, match=r"different numbers .* \(rank 0: 3, rank 1: 4\)"):
        check_equal_batch_counts(trainer)
