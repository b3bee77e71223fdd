"""Token maps of a multi-label model (#18): one row per (text, predicted label)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from callbacks import AttentionMapLogger
from datamodules import TextDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.attribution import token_weights
from lit_seqcls.validation import ConfigValueError


class _SetThresholds(Callback):
    """Runs just before the logger: on the second validation epoch (the logger's texts are picked
    in the first) it sets thresholds that give some of those texts two labels and some none, and
    keeps what the logger will see."""

    def __init__(self, logger: AttentionMapLogger) -> None:
        self.logger, self.seen = logger, None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.logger.selected is None:
            return
        probs = torch.stack([_probs(pl_module, ex["ids"]) for ex in self.logger.selected])
        low, high = probs.quantile(0.3, dim=0), probs.quantile(0.7, dim=0)  # (C,)
        pl_module.thresholds.copy_(torch.stack([low[0], high[1], probs[:, 2].max() + 1e-3]))
        self.seen = (pl_module.thresholds.clone(), probs)


def _probs(model, ids: list[int]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids]), torch.tensor([len(ids)])).logits[0]  # (C,)
    return (logits / model.temperature).sigmoid()


def _fit(tmp_path: Path, encoder: str, tag_rows):
    files = {}
    for split, (n, seed) in {"train": (80, 0), "test": (20, 1)}.items():
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in tag_rows(n, seed)))
        files[split] = str(path)
    dm = TextDataModule(data_files=files, cache_dir=str(tmp_path / "cache"), batch_size=16)
    torch.manual_seed(0)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder=encoder, embedding_dim=8,
                               class_names=dm.class_names, task=dm.label_task)  # fmt: skip
    maps = AttentionMapLogger(num_examples=6)
    setter = _SetThresholds(maps)
    trainer = L.Trainer(max_epochs=2, logger=CSVLogger(tmp_path / "logs"), callbacks=[setter, maps],
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                        enable_checkpointing=False, accelerator="cpu")  # fmt: skip
    trainer.fit(model, dm)
    out = Path(trainer.log_dir) / "media" / "token_weights"
    with open(out / "val_epoch001.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return model.eval(), maps, setter.seen, rows, out


def _expected(thresholds, probs, names) -> list[tuple[list[str], bool]]:
    """Per text: its predicted labels, most probable first, and whether one reached a threshold."""
    expected = []
    for p in probs:
        order = p.argsort(descending=True).tolist()
        above = [names[c] for c in order if p[c] >= thresholds[c]]
        expected.append((above or [names[order[0]]], bool(above)))
    return expected


def test_one_row_per_predicted_label_each_explaining_that_label(tmp_path, tag_rows):
    model, maps, (thresholds, probs), rows, out = _fit(tmp_path, "gru", tag_rows)
    names = model.class_names
    expected = _expected(thresholds, probs, names)
    assert any(len(labels) == 2 for labels, _ in expected)  # the test sees two labels of one text
    assert any(not reached for _, reached in expected)  # and a text with none
    want = [
        (str(ex["index"]), label if reached else f"{label} (below threshold)")
        for ex, (labels, reached) in zip(maps.selected, expected, strict=True)
        for label in labels
    ]
    assert [(r["index"], r["predicted"]) for r in rows] == want
    by_index = {ex["index"]: (ex, p) for ex, p in zip(maps.selected, probs, strict=True)}
    for row in rows:
        ex, p = by_index[int(row["index"])]
        label = names.index(row["predicted"].removesuffix(" (below threshold)"))
        assert float(row["confidence"]) == pytest.approx(float(p[label]), abs=1e-5)
        ids = torch.tensor([ex["ids"]])
        weights, _ = token_weights(model, ids, torch.tensor([ids.size(1)]),
                                   target=torch.tensor([label]))  # fmt: skip
        torch.testing.assert_close(torch.tensor(json.loads(row["weights"])), weights[0],
                                   atol=1e-5, rtol=0)  # fmt: skip
    # The labels of one text get different maps.
    two = next(i for i, (labels, _) in enumerate(expected) if len(labels) == 2)
    first, second = [r["weights"] for r in rows if r["index"] == str(maps.selected[two]["index"])]
    assert first != second
    page = (out / "val_epoch001.html").read_text(encoding="utf-8")
    for r in rows:  # the captions: "#12: db|net → net (0.93)", "... → web (0.41, below threshold)"
        label, below = r["predicted"].removesuffix(" (below threshold)"), "below" in r["predicted"]
        numbers = f"{float(r['confidence']):.2f}" + (", below threshold" if below else "")
        assert f"#{r['index']}: {r['true']} → {label} ({numbers})" in page
    assert (out / "val_epoch001.png").is_file()


def test_attention_maps_keep_one_row_per_text_listing_its_labels(tmp_path, tag_rows):
    model, maps, (thresholds, probs), rows, _ = _fit(tmp_path, "attention", tag_rows)
    expected = _expected(thresholds, probs, model.class_names)
    assert [r["index"] for r in rows] == [str(ex["index"]) for ex in maps.selected]
    for row, (labels, reached) in zip(rows, expected, strict=True):
        assert row["predicted"] == "|".join(labels) + ("" if reached else " (below threshold)")
    assert any("|" in r["predicted"] for r in rows)


def test_max_labels_must_be_positive():
    with pytest.raises(ConfigValueError, match="max_labels"):
        AttentionMapLogger(max_labels=0)
