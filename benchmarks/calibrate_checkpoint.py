"""Calibrate a checkpoint trained before temperature scaling (#18), and measure it.

Rebuilds the run's DataModule from its ``config.yaml`` (the same validation rows, held out with
the same seed), fits the temperature on the validation logits, and reports accuracy and ECE
(15 bins) before and after on validation and test. With ``--output`` it writes a copy of the
checkpoint holding the temperature and the validation report (never over the input), which
``lit-seqcls predict``/``test`` then apply.

    OMP_NUM_THREADS=1 python benchmarks/calibrate_checkpoint.py \
        --config /work/runs/imdb-gru/lightning_logs/version_0/config.yaml \
        --ckpt /work/runs/imdb-gru/lightning_logs/version_0/checkpoints/epoch02-val_acc0.9056.ckpt
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import torch
import yaml

from lit_seqcls import SequenceClassifier
from lit_seqcls.calibration import calibration_report, fit_temperature
from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.model import CALIBRATION_KEY
from lit_seqcls.runtime import atomic_write


def _datamodule(config: Path):
    data = yaml.safe_load(config.read_text())["data"]
    module, _, name = data["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**data.get("init_args", {}))


@torch.no_grad()
def _logits(model: SequenceClassifier, loader) -> tuple[torch.Tensor, torch.Tensor]:
    logits, labels = [], []
    for batch in loader:
        logits.append(model(batch.input_ids, batch.lengths).logits.float())  # (B, C)
        labels.append(batch.labels)
    return torch.cat(logits), torch.cat(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the run's config.yaml")
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="write the calibrated checkpoint here")
    parser.add_argument("--json", type=Path, help="append the measurements as a JSON line")
    args = parser.parse_args()
    if args.output is not None and args.output.resolve() == args.ckpt.resolve():
        parser.error("--output must not be the input checkpoint")
    start = time.perf_counter()
    model = SequenceClassifier.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
    dm = _datamodule(args.config)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    val_logits, val_labels = _logits(model, dm.val_dataloader())
    test_logits, test_labels = _logits(model, dm.test_dataloader())
    temperature = fit_temperature(val_logits, val_labels)
    val = calibration_report(val_logits, val_labels, temperature)
    test = calibration_report(test_logits, test_labels, temperature)
    result = {
        "checkpoint": str(args.ckpt),
        "encoder": model.network.encoder.__class__.__name__,
        "temperature": temperature,
        "val_texts": val["count"],
        "test_texts": test["count"],
        "val_acc": val["accuracy"],
        "test_acc": test["accuracy"],
        "val_ece_raw": val["ece_raw"],
        "val_ece": val["ece"],
        "test_ece_raw": test["ece_raw"],
        "test_ece": test["ece"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        with args.json.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    if args.output is not None:
        checkpoint = load_checkpoint(args.ckpt)
        checkpoint["state_dict"]["temperature"] = torch.tensor(temperature)
        checkpoint[CALIBRATION_KEY] = val
        with atomic_write(args.output, "wb") as f:
            torch.save(checkpoint, f)
        print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
