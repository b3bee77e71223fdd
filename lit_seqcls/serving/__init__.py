"""Serving an exported bundle without torch: ``Bundle("bundle/").predict(["text", ...])``.

``bundle`` reads and checks the folder ``lit-seqcls export`` wrote and predicts with onnxruntime;
``files`` reads texts from .txt / .jsonl / .csv files and writes prediction rows; ``command`` is
``lit-seqcls predict --bundle DIR --data.data_files.predict FILE`` (also ``python -m
lit_seqcls.serving ...`` where only ``lit-seqcls[serve]`` is installed). Nothing here imports
torch or Lightning (``.importlinter``, ``tests/export/test_serving.py``).
"""

from lit_seqcls.serving.bundle import (
    CARD_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    PIPELINE_FILE,
    TOKENIZER_FILE,
    Bundle,
    BundleError,
    read_manifest,
    read_pipeline,
    verify_manifest,
)

__all__ = [
    "CARD_FILE",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "PIPELINE_FILE",
    "TOKENIZER_FILE",
    "Bundle",
    "BundleError",
    "read_manifest",
    "read_pipeline",
    "verify_manifest",
]
