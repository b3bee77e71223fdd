"""Temperature scaling under real DDP (gloo, 2 CPU processes): the ranks agree (#18).

Run with ``pytest -m ddp``. The validation logits are gathered from both ranks, so each rank
fits the same temperature, equal to a one-process fit on the same logits, and the checkpoint
(written by rank zero) holds it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lit_seqcls import SequenceClassifier
from lit_seqcls.calibration import fit_temperature

pytestmark = pytest.mark.ddp

DATA = {
    "train_size": 330, "test_size": 20, "median_length": 10, "max_text_length": 30,
    "batch_size": 16, "seed": 3, "num_classes": 3,
}  # fmt: skip

SCRIPT = """
import json, sys
import lightning as L, torch
from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier

out, data = sys.argv[1], json.loads(sys.argv[2])
torch.manual_seed(0)
dm = SyntheticDataModule(**data, cache_dir=out + "/cache")
model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="swem", embedding_dim=8,
                           class_names=dm.class_names)
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0)
trainer.fit(model, dm)
report = model.calibration["val"]
with open(f"{out}/rank{trainer.global_rank}.json", "w") as f:
    json.dump({"temperature": float(model.temperature), "count": report["count"],
               "ece": report["ece"]}, f)
trainer.save_checkpoint(out + "/ddp.ckpt")
"""


def test_two_ranks_fit_the_same_temperature_as_one_process_on_the_same_logits(
    tmp_path, validation_logits
):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), json.dumps(DATA)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # temperature, ECE and the count of gathered texts

    # One process, the checkpoint's weights, every validation text.
    from datamodules import SyntheticDataModule

    dm = SyntheticDataModule(**DATA, cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    model = SequenceClassifier.load_from_checkpoint(tmp_path / "ddp.ckpt")
    logits, labels = validation_logits(model, dm)
    assert ranks[0]["count"] == len(labels) == len(dm.splits["validation"])
    assert float(model.temperature) == pytest.approx(ranks[0]["temperature"], abs=1e-7)
    assert fit_temperature(logits, labels) == pytest.approx(ranks[0]["temperature"], rel=1e-5)
    assert ranks[0]["temperature"] != 1.0
