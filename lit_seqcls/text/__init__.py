"""The text pipeline the DataModules use: raw text → token ids → length-bucketed batches.

``tokenization`` trains or loads a tokenizer, ``encoding`` turns texts into its ids (fast, with
long texts cut first), ``vectors`` builds an embedding matrix from pretrained word vectors and
``bucketing`` plans batches of similar length. Nothing here knows the model or the runtime.
"""

from lit_seqcls.text.bucketing import BucketBatchSampler, ResumableDataLoader
from lit_seqcls.text.encoding import CHARS_PER_TOKEN, TextEncoder, encode
from lit_seqcls.text.tokenization import (
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TRAINERS,
    UNK_ID,
    UNK_TOKEN,
    TokenizerKind,
    UnicodeForm,
    build_word_tokenizer,
    check_contiguous_ids,
    check_special_tokens,
    load_tokenizer,
    tokenizer_json,
    train_bpe_tokenizer,
    train_word_tokenizer,
)
from lit_seqcls.text.vectors import PretrainedVectors, load_vectors

__all__ = [
    "CHARS_PER_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "TRAINERS",
    "UNK_ID",
    "UNK_TOKEN",
    "BucketBatchSampler",
    "PretrainedVectors",
    "ResumableDataLoader",
    "TextEncoder",
    "TokenizerKind",
    "UnicodeForm",
    "build_word_tokenizer",
    "check_contiguous_ids",
    "check_special_tokens",
    "encode",
    "load_tokenizer",
    "load_vectors",
    "tokenizer_json",
    "train_bpe_tokenizer",
    "train_word_tokenizer",
]
