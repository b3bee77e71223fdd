"""lit-seqcls: text classification baselines (RNN, GRU, LSTM, BiLSTM, attention, CNN)."""

from lit_seqcls.batch import Batch, collate
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.network import ClassifierOutput, TextClassifierNetwork
from lit_seqcls.text import BucketBatchSampler

__all__ = [
    "Batch",
    "BucketBatchSampler",
    "ClassifierOutput",
    "SequenceClassifier",
    "TextClassifierNetwork",
    "collate",
]
__version__ = "0.1.0"
