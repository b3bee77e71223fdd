"""``MODEL_CARD.md`` from the checkpoint, its run folder and an evaluation; the W&B artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from lit_seqcls.cli import main
from lit_seqcls.serving import Bundle, verify_manifest

CONFIG = {
    "seed_everything": 7,
    "trainer": {"max_epochs": 3, "gradient_clip_val": 1.0, "accelerator": "cpu", "devices": 1},
    "model": {"optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.002}}},
    "data": {
        "class_path": "datamodules.TextDataModule",
        "init_args": {
            "data_files": {"train": "train.jsonl"},
            "revision": "abc123",
            "batch_size": 16,
            "val_fraction": 0.1,
            "seed": 0,
        },
    },
}
METRICS = (
    "epoch,step,train/tokens_per_sec,val/acc,val/f1_macro,test/acc,test/f1_macro\n"
    "0,9,1234.5,,,,\n0,9,,0.61,0.58,,\n1,19,,0.72,0.70,,\n1,19,,,,0.69,0.66\n"
)


@pytest.fixture
def run(kit, tmp_path, monkeypatch):
    """A run folder as `lit-seqcls fit` leaves it: config.yaml, metrics.csv, checkpoints/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"text": "a great film", "label": "pos"}\n')
    version = tmp_path / "lightning_logs" / "version_0"
    (version / "checkpoints").mkdir(parents=True)
    (version / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (version / "metrics.csv").write_text(METRICS)
    return kit.write_checkpoint(version / "checkpoints" / "best.ckpt", "cnn")


def test_card_tells_what_the_run_recorded(run, kit, tmp_path):
    labelled = tmp_path / "test.jsonl"
    rows = [{"text": t, "label": kit.CLASSES[i % 3]} for i, t in enumerate(kit.CORPUS * 5)]
    labelled.write_text("\n".join(json.dumps(r) for r in rows))
    main(["export", "--ckpt_path", str(run), "--output_dir", "bundle", "--eval_data",
          str(labelled)])  # fmt: skip
    folder = tmp_path / "bundle"
    card = (folder / "MODEL_CARD.md").read_text()
    verify_manifest(folder)  # the figures are listed too
    assert "plots/reliability.png" in (folder / "checksums.sha256").read_text()
    for fact in ("`datamodules.TextDataModule`", "`abc123`", "seed_everything 7",
                 "max_epochs 3", "`torch.optim.AdamW`, lr 0.002", "Best val/acc | 0.7200",
                 "| test/acc | 0.6900 |", "1,234 real tokens/s", "`train.jsonl`", "opset 17",
                 "Only the first 12 tokens", "lit-seqcls export --ckpt_path",
                 f"lit-seqcls fit --config {run.parents[1] / 'config.yaml'}",
                 "![reliability](plots/reliability.png)"):  # fmt: skip
        assert fact in card, fact

    # The evaluation is the bundle's own predictions, with its numbers.
    bundle = Bundle(folder)
    preds = [r["label"] for r in bundle.predict([r["text"] for r in rows])]
    accuracy = np.mean([p == r["label"] for p, r in zip(preds, rows, strict=True)])
    assert f"| accuracy | {accuracy:.4f} |" in card
    assert "test.jsonl`: 30 texts (neg: 10, pos: 10, meh: 10)" in card


def test_card_without_a_run_folder_says_what_is_not_recorded(kit, tmp_path):
    ckpt = kit.write_checkpoint(tmp_path / "lonely.ckpt", "swem")
    main(["export", "--ckpt_path", str(ckpt), "--output_dir", str(tmp_path / "b")])
    card = (tmp_path / "b" / "MODEL_CARD.md").read_text()
    assert "Split sizes | not recorded" in card and "No test results were recorded" in card
    assert "Class counts (training) | not recorded in the checkpoint" in card


def test_card_shows_the_class_counts_the_checkpoint_recorded(kit, tmp_path):
    ckpt = kit.write_checkpoint(tmp_path / "counted.ckpt", "swem")
    checkpoint = torch.load(ckpt, weights_only=False)
    checkpoint["hyper_parameters"]["class_counts"] = {"neg": 10, "pos": 1200, "meh": 3}
    torch.save(checkpoint, ckpt)
    main(["export", "--ckpt_path", str(ckpt), "--output_dir", str(tmp_path / "b")])
    card = (tmp_path / "b" / "MODEL_CARD.md").read_text()
    assert "| Class counts (training) | neg: 10, pos: 1,200, meh: 3 |" in card


def test_card_names_the_data_files_it_could_not_find(run, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # train.jsonl is relative to the folder fit ran in
    main(["export", "--ckpt_path", str(run), "--output_dir", "bundle"])
    card = (elsewhere / "bundle" / "MODEL_CARD.md").read_text()
    assert "the recorded files `train.jsonl` were not found from the folder export ran in" in card
    assert str(elsewhere) not in card  # no local path in a card that ships with the model


def test_bundle_is_logged_to_the_training_runs_wandb(run, tmp_path):
    config = {**CONFIG, "trainer": {**CONFIG["trainer"], "logger": [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "logs"}},
        {"class_path": "lit_seqcls.runtime.WandbLogger",
         "init_args": {"log_model": True, "save_dir": "logs", "mode": "offline"}},
    ]}}  # fmt: skip
    (run.parents[1] / "config.yaml").write_text(yaml.safe_dump(config))
    main(["export", "--ckpt_path", str(run), "--output_dir", "bundle"])
    assert len(list((tmp_path / "logs" / "wandb").glob("offline-run-*"))) == 1
    # The artifact's files, staged for `wandb sync`: a copy of every file of the bundle.
    staged = {p.read_bytes() for p in (tmp_path / "wandb_data_dir").rglob("staging/*")}
    bundle = tmp_path / "bundle"
    assert staged == {p.read_bytes() for p in bundle.iterdir()}


def test_card_reads_what_compare_recorded_for_the_run(kit, tmp_path):
    run_dir = tmp_path / "runs" / "cnn-seed0"  # compare's run folder
    ckpt_dir = run_dir / "lightning_logs" / "version_0" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    ckpt = kit.write_checkpoint(ckpt_dir / "best.ckpt", "cnn")
    labels, preds = ["neg", "pos", "meh", "pos"], ["neg", "pos", "pos", "pos"]
    rows = [
        {"index": i, "label": y, "pred": p, "probs": {"neg": 0.2, "pos": 0.7, "meh": 0.1}}
        for i, (y, p) in enumerate(zip(labels, preds, strict=True))
    ]
    (run_dir / "test_predictions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    record = {"train_time_s": 90.0, "hardware": {"type": "cpu", "torch_threads": 1},
              "lengths": [3, 5, 9, 12], "correct": [1, 1, 0, 1]}  # fmt: skip
    (run_dir / "result.json").write_text(json.dumps(record))
    main(["export", "--ckpt_path", str(ckpt), "--output_dir", str(tmp_path / "b")])
    card = (tmp_path / "b" / "MODEL_CARD.md").read_text()
    for fact in ("Predictions of the checkpoint, by `lit-seqcls compare`'s test run",
                 "| accuracy | 0.7500 |", "1.5 min (fit, as `lit-seqcls compare` recorded it)",
                 "type cpu, torch_threads 1 (recorded by compare)",
                 "4 texts (neg: 1, pos: 2, meh: 1)",
                 "| 3 | 1 | 1.0000 |"):  # fmt: skip
        assert fact in card, fact
