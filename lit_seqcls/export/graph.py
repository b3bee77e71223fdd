"""The network as a file: ONNX (served without torch), TorchScript or ``torch.export`` (pt2).

Every format takes ``input_ids`` ``(B, T)`` int64 (pad id 0) and ``lengths`` ``(B,)`` int64 and
gives ``logits`` ``(B, C)`` float32, with batch and sequence length both dynamic. What makes this
work for the recurrent encoders is the masked recurrent run (``encoders/recurrent.py``): a padded
batch through the fused kernel and a per-text read of the last real state, with no
``PackedSequence`` in the graph.

ONNX uses torch's TorchScript-based exporter (``dynamo=False``) at opset ``OPSET``: measured on
torch 2.13 it exports all seven encoders in under a second each, while the ``torch.export``-based
exporter fixed the sequence length of ``rnn``, ``bilstm`` and ``attention`` to the example's
(their one-direction ATen calls) and took 7-13 s per model. Torch marks that exporter deprecated;
its warning is silenced here, where we chose it knowingly.

``check_export`` runs the exported file on texts of every length 1..T in mixed batches and
refuses a file whose logits differ from the network's by more than ``TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seqcls.batch import PAD_ID
from lit_seqcls.errors import UserError
from lit_seqcls.network import TextClassifierNetwork

Format = Literal["onnx", "torchscript", "pt2"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "pt2")
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "pt2": "model.pt2"}
OPSET = 17
INPUT_NAMES = ("input_ids", "lengths")
OUTPUT_NAME = "logits"
TOLERANCE = 1e-4  # max |logit difference| between the exported file and the network


class ExportError(RuntimeError, UserError):
    """The network could not be exported in the format asked for, or the file disagrees."""


class LogitsModule(nn.Module):
    """The network in eval mode as ``(input_ids, lengths) -> logits``, for tracing.

    Convolutions need at least their widest window: the graph appends ``min_width - 1`` pad
    columns to every batch (the network is padding-invariant, so the logits do not change), so a
    one-token text needs no branch on the sequence length, which a traced graph cannot hold.
    """

    def __init__(self, network: TextClassifierNetwork) -> None:
        super().__init__()
        self.network = network
        self.extra_pad = max(getattr(network.encoder, "kernel_sizes", (1,))) - 1

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        if self.extra_pad:
            input_ids = F.pad(input_ids, (0, self.extra_pad), value=PAD_ID)  # (B, T + K - 1)
        return self.network(input_ids, lengths).logits  # (B, C)


def export_model(network: TextClassifierNetwork, path: Path, fmt: Format = "onnx") -> dict:
    """Write ``network`` to ``path`` in ``fmt``; return what ``pipeline.json`` records of it."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = LogitsModule(network).eval()
    example = example_batch(network, width=8)
    with torch.no_grad(), _quiet():
        if fmt == "onnx":
            _export_onnx(module, example, path)
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, example, check_trace=False), str(path))
        else:
            _export_pt2(module, example, path)
    info = {"file": path.name, "format": fmt, "torch_version": torch.__version__.split("+")[0]}
    if fmt == "onnx":
        info |= {"opset": OPSET, "exporter": "torch.onnx.export (TorchScript-based, dynamo=False)"}
    return info | {
        "inputs": {"input_ids": "int64 (batch, sequence), pad id 0", "lengths": "int64 (batch,)"},
        "outputs": {OUTPUT_NAME: "float32 (batch, classes), before temperature"},
    }


def _export_onnx(module: nn.Module, example: tuple[Tensor, Tensor], path: Path) -> None:
    torch.onnx.export(
        module,
        example,
        str(path),
        dynamo=False,
        input_names=list(INPUT_NAMES),
        output_names=[OUTPUT_NAME],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "lengths": {0: "batch"},
            OUTPUT_NAME: {0: "batch"},
        },
        opset_version=OPSET,
    )


def _export_pt2(module: nn.Module, example: tuple[Tensor, Tensor], path: Path) -> None:
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
    try:
        program = torch.export.export(
            module, example, dynamic_shapes={"input_ids": {0: batch, 1: seq}, "lengths": {0: batch}}
        )
    except Exception as err:  # torch.export raises many types for what it cannot capture
        raise ExportError(
            f"torch.export could not capture this encoder with a dynamic batch and sequence "
            f"length ({type(err).__name__}: {str(err).splitlines()[0][:200]}). Use --format onnx "
            "(served without torch) or --format torchscript."
        ) from err
    torch.export.save(program, str(path))


def load_runner(path: Path, fmt: Format) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``(input_ids, lengths) -> logits`` (numpy) of an exported file, to check it."""
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda ids, lengths: session.run(
            [OUTPUT_NAME], {"input_ids": ids, "lengths": lengths}
        )[0]
    with _quiet():  # torch.jit.load's deprecation warning
        loaded = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(path)
    module = loaded if fmt == "torchscript" else loaded.module()

    def run(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()

    return run


def check_export(
    network: TextClassifierNetwork, path: Path, fmt: Format, max_length: int = 16
) -> float:
    """Largest |logit difference| between ``path`` and ``network`` over mixed batches holding
    texts of every length 1..``max_length``; raises ``ExportError`` above ``TOLERANCE``."""
    run = load_runner(path, fmt)
    network.eval()
    worst = 0.0
    for ids, lengths in mixed_batches(network.embedding.num_embeddings, max_length):
        with torch.no_grad():
            expected = network(ids, lengths).logits.numpy()  # the network itself
        got = run(ids.numpy(), lengths.numpy())
        worst = max(worst, float(np.abs(got - expected).max()))
    if not worst <= TOLERANCE:  # also NaN
        raise ExportError(
            f"the exported {fmt} model's logits differ from PyTorch's by {worst:.3g} (more than "
            f"{TOLERANCE}); nothing was written. Please report this with the encoder's settings."
        )
    return worst


def mixed_batches(vocab_size: int, max_length: int, seed: int = 0) -> Iterator[tuple[Tensor, ...]]:
    """Batches ``(input_ids (B, T), lengths (B,))`` holding every length 1..``max_length`` once,
    shuffled together (so short texts sit in long batches), and each length alone."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randperm(max_length, generator=generator) + 1  # every length once
    for chunk in (*lengths.split(5), lengths, lengths[:1], torch.tensor([1])):
        width = int(chunk.max())
        ids = torch.randint(1, vocab_size, (len(chunk), width), generator=generator)
        ids[torch.arange(width)[None, :] >= chunk[:, None]] = PAD_ID  # (B, T)
        yield ids, chunk.clone()


def example_batch(network: TextClassifierNetwork, width: int) -> tuple[Tensor, Tensor]:
    """A small padded batch to trace with (lengths ``width``, 3 and 1)."""
    vocab = network.embedding.num_embeddings
    lengths = torch.tensor([width, min(3, width), 1])
    ids = (torch.arange(3 * width).reshape(3, width) % max(vocab - 1, 1)) + 1
    ids[torch.arange(width)[None, :] >= lengths[:, None]] = PAD_ID
    return ids, lengths


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's warnings (a branch on a shape, the exporter's deprecation) and prints."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
