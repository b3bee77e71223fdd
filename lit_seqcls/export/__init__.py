"""``lit-seqcls export``: a checkpoint as a portable bundle served without torch (issue #19).

``graph`` writes the network as ONNX (or TorchScript / pt2) and checks the file against
PyTorch; ``bundle`` writes the folder (model, tokenizer, ``pipeline.json``, model card,
checksums) atomically; ``card`` and ``evaluation`` make ``MODEL_CARD.md``; ``artifacts`` logs
the bundle to W&B; ``command`` is the CLI. Serving is ``lit_seqcls.serving`` (no torch).
"""

from lit_seqcls.export.bundle import calibration, export_bundle, is_bundle, pipeline_json
from lit_seqcls.export.command import main
from lit_seqcls.export.graph import FORMATS, OPSET, ExportError, check_export, export_model

__all__ = [
    "FORMATS",
    "OPSET",
    "ExportError",
    "calibration",
    "check_export",
    "export_bundle",
    "export_model",
    "is_bundle",
    "main",
    "pipeline_json",
]
