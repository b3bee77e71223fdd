"""The text pipeline a checkpoint carries, read back without building a model.

``TextClassificationDataModule.text_pipeline`` is plain data (the tokenizer JSON, max length,
normalisation, class names) that the model stores in every checkpoint, so a checkpoint alone can
turn raw text into predictions; ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

PIPELINE_VERSION = 1
PIPELINE_KEY = "text_pipeline"  # the checkpoint key `SequenceClassifier.on_save_checkpoint` uses


def read_checkpoint_pipeline(path: str | Path) -> dict[str, Any]:
    """The text pipeline stored in checkpoint ``path`` (plain data; loads with weights_only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    pipeline = checkpoint.get(PIPELINE_KEY)
    if not isinstance(pipeline, dict) or "tokenizer" not in pipeline:
        raise ValueError(
            f"checkpoint {path} holds no text pipeline (it was saved without a DataModule that "
            "provides one). Predict with the data config it was trained with instead."
        )
    if pipeline.get("version", 0) > PIPELINE_VERSION:
        raise ValueError(
            f"checkpoint {path} was written by a newer lit-seqcls (text pipeline version "
            f"{pipeline['version']}); upgrade lit-seqcls to read it."
        )
    return pipeline
