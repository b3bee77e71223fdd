"""Analysis callbacks: confusion matrices, token weights, accuracy by length, worst errors,
calibration (reliability diagrams and the coverage / accuracy curve).

Each is a plain Lightning ``Callback`` (usable from YAML, e.g. ``configs/callbacks/analysis.yaml``,
and from Python). They log to W&B when the Trainer has a ``WandbLogger`` and always write PNG,
CSV and HTML copies under ``<log dir>/media/``. Under DDP every rank counts its own share and
rank zero logs the reduced result.
"""

from callbacks.attention_maps import AttentionMapLogger
from callbacks.calibration import CalibrationLogger
from callbacks.confusion_matrix import ConfusionMatrixLogger
from callbacks.length_analysis import LengthAnalysisLogger
from callbacks.misclassified import MisclassifiedLogger

__all__ = [
    "AttentionMapLogger",
    "CalibrationLogger",
    "ConfusionMatrixLogger",
    "LengthAnalysisLogger",
    "MisclassifiedLogger",
]
