"""lit-seqcls: text classification baselines (RNN, GRU, LSTM, BiLSTM, attention, CNN).

The names below are imported on first use, so ``lit_seqcls.serving`` (a bundle served with
onnxruntime alone, ``pip install lit-seqcls[serve]``) imports neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Batch": "lit_seqcls.batch",
    "BucketBatchSampler": "lit_seqcls.text",
    "ClassifierOutput": "lit_seqcls.network",
    "SequenceClassifier": "lit_seqcls.model",
    "TextClassifierNetwork": "lit_seqcls.network",
    "collate": "lit_seqcls.batch",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lit_seqcls' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
