"""Multi-label under real DDP (gloo, 2 CPU processes): thresholds and temperature agree (#18).

Run with ``pytest -m ddp``. The validation logits and labels are gathered from both ranks, so
each rank fits the same temperature and the same per-label thresholds, equal to a one-process
fit on the same validation texts with the checkpoint's weights.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from datamodules import TextDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.calibration import fit_sigmoid_temperature, fit_thresholds

pytestmark = pytest.mark.ddp

SCRIPT = """
import json, sys
import lightning as L, torch
from datamodules import TextDataModule
from lit_seqcls import SequenceClassifier

out = sys.argv[1]
torch.manual_seed(0)
dm = TextDataModule(data_files={"train": out + "/train.jsonl"}, cache_dir=out + "/cache",
                    batch_size=16)
model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="swem", embedding_dim=8,
                           class_names=dm.class_names, task=dm.label_task, class_weights="auto",
                           optimizer=lambda p: torch.optim.AdamW(p, lr=0.05))
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0)
trainer.fit(model, dm)
with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
    json.dump({"temperature": float(model.temperature), "thresholds": model.thresholds.tolist(),
               "count": model.calibration["val"]["count"],
               "pos_weight": model.loss_weight.tolist()}, f)
trainer.save_checkpoint(out + "/ddp.ckpt")
"""


def test_two_ranks_tune_the_same_thresholds_as_one_process(tmp_path, tag_rows, validation_logits):
    rows = "".join(json.dumps(r) + "\n" for r in tag_rows(300, drop=0.2))
    (tmp_path / "train.jsonl").write_text(rows, encoding="utf-8")
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # temperature, thresholds, count and pos_weight

    dm = TextDataModule(data_files={"train": str(tmp_path / "train.jsonl")},
                        cache_dir=str(tmp_path / "cache"), batch_size=16)  # fmt: skip
    dm.setup("fit")
    model = SequenceClassifier.load_from_checkpoint(tmp_path / "ddp.ckpt")
    logits, labels = validation_logits(model, dm)
    assert ranks[0]["count"] == len(labels) == len(dm.splits["validation"])
    temperature = fit_sigmoid_temperature(logits, labels)
    assert temperature == pytest.approx(ranks[0]["temperature"], rel=1e-5)
    assert float(model.temperature) == pytest.approx(ranks[0]["temperature"], abs=1e-7)
    one_process = fit_thresholds((logits / model.temperature).sigmoid(), labels)
    assert one_process.tolist() == pytest.approx(ranks[0]["thresholds"], abs=1e-6)
    assert model.thresholds.tolist() == pytest.approx(ranks[0]["thresholds"], abs=1e-7)
    assert ranks[0]["thresholds"] != [0.5] * 3
