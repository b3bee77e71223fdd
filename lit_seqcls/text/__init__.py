"""The text pipeline the DataModules use: raw text → token ids → length-bucketed batches.

``tokenization`` trains or loads a tokenizer, ``encoding`` turns texts into its ids (fast, with
long texts cut first), ``vectors`` builds an embedding matrix from pretrained word vectors and
``bucketing`` plans batches of similar length. Nothing here knows the model or the runtime.
"""

from lit_seqcls.text.bucketing import BucketBatchSampler, ResumableDataLoader
from lit_seqcls.text.encoding import TRUNCATION_SIDES, TextEncoder, TruncationSide, encode
from lit_seqcls.text.tokenization import (
    TRAINERS,
    UNK_ID,
    TokenizerKind,
    UnicodeForm,
    load_tokenizer,
    tokenizer_json,
    train_bpe_tokenizer,
    train_word_tokenizer,
)
from lit_seqcls.text.vectors import PretrainedVectors, load_vectors

__all__ = [
    "TRAINERS",
    "TRUNCATION_SIDES",
    "UNK_ID",
    "BucketBatchSampler",
    "PretrainedVectors",
    "ResumableDataLoader",
    "TextEncoder",
    "TokenizerKind",
    "TruncationSide",
    "UnicodeForm",
    "encode",
    "load_tokenizer",
    "load_vectors",
    "tokenizer_json",
    "train_bpe_tokenizer",
    "train_word_tokenizer",
]
