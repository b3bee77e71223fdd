"""``Bundle``: an exported model served with onnxruntime, tokenizers and numpy alone.

``lit-seqcls export`` writes a folder (``docs/export.md``): ``model.onnx``, ``tokenizer.json``,
``pipeline.json`` (normalisation, max length, truncation side, class names, task, temperature,
thresholds), ``MODEL_CARD.md`` and ``checksums.sha256``. ``Bundle`` reads it back and turns raw
texts into rows shaped like ``lit-seqcls predict``'s JSON Lines::

    from lit_seqcls.serving import Bundle
    Bundle("bundle/").predict(["a great film", "dull"])
    # [{"label": "pos", "probs": {"neg": 0.03, "pos": 0.97}}, ...]

Install with ``pip install lit-seqcls[serve]``. Nothing here imports torch or Lightning
(``.importlinter`` and ``tests/export/test_serving.py`` hold it to that). The text is normalised
and tokenised exactly as in training (the ids of ``lit_seqcls.text.encode``), and texts are
batched by length as in training, so little padding is computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_seqcls.errors import UserError

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
PIPELINE_FILE = "pipeline.json"
CARD_FILE = "MODEL_CARD.md"
MANIFEST_FILE = "checksums.sha256"
BUNDLE_VERSION = 1
SINGLE_LABEL, MULTI_LABEL = "single_label", "multi_label"
TASKS = (SINGLE_LABEL, MULTI_LABEL)
UNK_TOKEN = "[UNK]"  # an empty text becomes this one token, as in training
# What the DataModule's strip_html removes (datamodules/base.py _HTML_TAG; a test holds them equal).
HTML_TAG_PATTERN = r"<\s*br\s*/?\s*>|</?[a-zA-Z][^<>]{0,40}>"
PROB_DECIMALS = 6  # as the rows of `lit-seqcls predict`


class BundleError(ValueError, UserError):
    """A bundle folder that cannot be served: missing, incomplete, altered or too new."""


class Bundle:
    """An exported model, ready to predict on raw text with onnxruntime.

    Args:
        path: the folder ``lit-seqcls export`` wrote.
        batch_size: texts per onnxruntime call (texts of similar length go together).
        threads: onnxruntime intra-op threads; ``None``: onnxruntime's default (all cores).
        verify: check every file against ``checksums.sha256`` first (a changed or cut file is
            refused, naming it).

    Example:
        >>> bundle = Bundle("bundle/")  # doctest: +SKIP
        >>> bundle.predict(["a great film"])  # doctest: +SKIP
        [{'label': 'pos', 'probs': {'neg': 0.031, 'pos': 0.969}}]
    """

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 64,
        threads: int | None = None,
        verify: bool = True,
    ) -> None:
        self.path = Path(path).expanduser()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise BundleError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        if verify:
            verify_manifest(self.path)
        self.pipeline = read_pipeline(self.path)
        self.class_names: list[str] = list(self.pipeline["class_names"])
        self.task: str = self.pipeline["task"]
        self.temperature = float(self.pipeline["temperature"])
        self.thresholds = _thresholds(self.pipeline, len(self.class_names))
        self.max_length: int | None = self.pipeline["max_length"]
        self._html = re.compile(HTML_TAG_PATTERN) if self.pipeline["strip_html"] else None
        self._tokenizer = _load_tokenizer(self.path / TOKENIZER_FILE)
        self._tokenizer.no_padding()
        if self.max_length is not None:
            side = self.pipeline["truncation_side"]
            self._tokenizer.enable_truncation(self.max_length, direction=side)
        else:
            self._tokenizer.no_truncation()
        self._unk = self._tokenizer.token_to_id(UNK_TOKEN)
        if self._unk is None:
            raise BundleError(f"{self.path / TOKENIZER_FILE} has no {UNK_TOKEN} token")
        self._session = _session(self.path / self.pipeline["model"]["file"], threads)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, classes={self.class_names}, task={self.task!r})"

    # ---- text → ids → logits → rows --------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, as in training: normalised, truncated, ``[UNK]`` if empty."""
        texts = [self._normalize(_checked_text(t, i)) for i, t in enumerate(texts)]
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [e.ids or [self._unk] for e in encodings]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits ``(N, C)`` float32 in input order (before temperature)."""
        return self.logits_of_ids(self.encode(texts))

    def logits_of_ids(self, ids: list[list[int]]) -> np.ndarray:
        """``logits`` of texts already encoded (``encode``), batched by length."""
        out = np.zeros((len(ids), len(self.class_names)), np.float32)
        for index in _buckets(ids, self.batch_size):
            input_ids, lengths = _pad([ids[i] for i in index])  # (B, T), (B,)
            feed = {"input_ids": input_ids, "lengths": lengths}
            out[index] = self._session.run(["logits"], feed)[0]
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, C)``: softmax (single-label) or sigmoid (multi-label) of logits / temperature."""
        return self.probabilities_of(self.logits(texts))

    def probabilities_of(self, logits: np.ndarray) -> np.ndarray:
        """``probabilities`` from ``logits`` ``(N, C)``."""
        scaled = logits.astype(np.float64) / self.temperature
        if self.task == MULTI_LABEL:
            return 1.0 / (1.0 + np.exp(-scaled))
        scaled -= scaled.max(axis=1, keepdims=True)
        exp = np.exp(scaled)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per text, in input order: ``label`` (or ``labels``) and ``probs``."""
        if isinstance(texts, str):
            raise BundleError("predict takes a list of texts; wrap one text as [text]")
        return [self._row(p) for p in self.probabilities(texts)]

    def _row(self, probs: np.ndarray) -> dict[str, Any]:
        names = self.class_names
        named = {n: round(float(p), PROB_DECIMALS) for n, p in zip(names, probs, strict=True)}
        if self.task == MULTI_LABEL:
            chosen = [n for n, p, t in zip(names, probs, self.thresholds, strict=True) if p >= t]
            return {"labels": chosen, "probs": named}
        return {"label": names[int(np.argmax(probs))], "probs": named}

    def _normalize(self, text: str) -> str:
        return self._html.sub(" ", text) if self._html is not None else text


# ---- reading and checking a bundle ---------------------------------------------------------
def read_pipeline(path: Path) -> dict[str, Any]:
    """``pipeline.json`` of the bundle folder ``path``, checked field by field."""
    file = Path(path) / PIPELINE_FILE
    if not Path(path).is_dir():
        raise BundleError(f"{path} is not a folder; give the folder `lit-seqcls export` wrote")
    try:
        pipeline = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(
            f"{path} holds no {PIPELINE_FILE}, so it is not a lit-seqcls bundle; make one with "
            "`lit-seqcls export --ckpt_path <model.ckpt> --output_dir <folder>`"
        ) from None
    except ValueError as err:
        raise BundleError(f"{file} is not valid JSON ({err}); export the bundle again") from None
    version = pipeline.get("bundle_version") if isinstance(pipeline, dict) else None
    if not isinstance(version, int):
        raise BundleError(f"{file}: field 'bundle_version' is missing; export the bundle again")
    if version > BUNDLE_VERSION:
        raise BundleError(
            f"{file} was written by a newer lit-seqcls (bundle version {version}); upgrade "
            "lit-seqcls to serve it"
        )
    problems = _pipeline_problems(pipeline)
    if problems:
        raise BundleError(f"{file}: {'; '.join(problems)}. Export the bundle again.")
    return pipeline


def _pipeline_problems(p: dict[str, Any]) -> list[str]:
    problems = []
    names = p.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append("field 'class_names' must be a non-empty list of strings")
    if p.get("task") not in TASKS:
        problems.append(f"field 'task' must be one of {list(TASKS)}, got {p.get('task')!r}")
    temperature = p.get("temperature")
    if not _is_number(temperature) or not temperature > 0 or not math.isfinite(temperature):
        problems.append(f"field 'temperature' must be a positive number, got {temperature!r}")
    max_length = p.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        problems.append(
            f"field 'max_length' must be a positive integer or null, got {max_length!r}"
        )
    if p.get("truncation_side") not in ("right", "left"):
        problems.append("field 'truncation_side' must be 'right' or 'left'")
    if not isinstance(p.get("strip_html"), bool):
        problems.append("field 'strip_html' must be true or false")
    model = p.get("model")
    if not isinstance(model, dict) or model.get("format") != "onnx":
        fmt = model.get("format") if isinstance(model, dict) else None
        problems.append(
            f"field 'model.format' is {fmt!r}: only an ONNX bundle is served without torch "
            "(load a torchscript/pt2 bundle with torch.jit.load / torch.export.load)"
        )
    elif not isinstance(model.get("file"), str) or "/" in model["file"] or "\\" in model["file"]:
        problems.append("field 'model.file' must be a file name inside the bundle")
    return problems


def _thresholds(pipeline: dict[str, Any], num_classes: int) -> list[float]:
    thresholds = pipeline.get("thresholds")
    if thresholds is None:
        return [0.5] * num_classes
    if isinstance(thresholds, int | float):
        thresholds = [thresholds] * num_classes
    if (
        not isinstance(thresholds, list)
        or len(thresholds) != num_classes
        or not all(_is_number(t) and 0 <= t <= 1 for t in thresholds)
    ):
        raise BundleError(
            f"{PIPELINE_FILE}: field 'thresholds' must be null or {num_classes} numbers in "
            f"[0, 1] (one per class), got {thresholds!r}. Export the bundle again."
        )
    return [float(t) for t in thresholds]


def read_manifest(path: Path) -> dict[str, str]:
    """``{file name: sha256}`` from ``checksums.sha256`` (``sha256sum`` format)."""
    file = Path(path) / MANIFEST_FILE
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BundleError(
            f"{path} holds no {MANIFEST_FILE}: it is not a complete lit-seqcls bundle (an "
            "export cut short, or files copied by hand). Export it again."
        ) from None
    entries = {}
    for number, line in enumerate(lines, 1):
        digest, sep, name = line.partition("  ")
        parts = name.split("/")
        if (
            not sep
            or len(digest) != 64
            or not name
            or "\\" in name
            or "" in parts
            or any(part.startswith(".") for part in parts)
        ):  # a name inside the bundle: no absolute path, no "..", no hidden file
            raise BundleError(f"{file} line {number} is not '<sha256>  <file name>': {line!r}")
        entries[name] = digest
    return entries


def verify_manifest(path: Path) -> None:
    """Every file listed in ``checksums.sha256`` exists and has its checksum."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle folder {path} does not exist (or is not a folder)")
    for name, digest in read_manifest(path).items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"{file} is missing from the bundle; export it again")
        if sha256(file) != digest:
            raise BundleError(
                f"{file} does not match its checksum in {MANIFEST_FILE}: the file was changed "
                "or damaged after export. Export the bundle again (or copy it again)."
            )
    for required in (PIPELINE_FILE, TOKENIZER_FILE):
        if required not in read_manifest(path):
            raise BundleError(f"{path / MANIFEST_FILE} does not list {required}; export again")


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- helpers -------------------------------------------------------------------------------
def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _checked_text(text: Any, index: int) -> str:
    if not isinstance(text, str):
        raise BundleError(f"text {index} is a {type(text).__name__}, not a string")
    return text


def _buckets(ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``ids`` in batches of similar length (longest first), as training buckets."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _pad(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, batch), np.int64, len(batch))  # (B,)
    input_ids = np.zeros((len(batch), int(lengths.max())), np.int64)  # (B, T); pad id 0
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
    return input_ids, lengths


def _load_tokenizer(file: Path) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - the serve extra installs it
        raise BundleError(_missing("tokenizers")) from None
    try:
        return Tokenizer.from_str(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{file} is missing from the bundle; export it again") from None
    except Exception as err:  # tokenizers raises a plain Exception for bad JSON
        raise BundleError(f"{file} is not a tokenizer file ({err}); export again") from None


def _session(file: Path, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BundleError(_missing("onnxruntime")) from None
    if not file.is_file():
        raise BundleError(f"{file} is missing from the bundle; export it again")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings a user cannot act on
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def _missing(package: str) -> str:
    return f"serving a bundle needs {package}: pip install 'lit-seqcls[serve]'"
