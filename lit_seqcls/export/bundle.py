"""``export_bundle``: a checkpoint → a folder that serves without torch (``lit_seqcls.serving``).

The folder: ``model.onnx`` (or ``model.torchscript.pt`` / ``model.pt2``), ``tokenizer.json``,
``pipeline.json``, ``MODEL_CARD.md`` and ``checksums.sha256`` (``sha256sum -c`` reads it). It is
built in a temporary folder next to the target and renamed into place, so a crash never leaves
half a bundle; a folder holding other files is refused unless ``overwrite`` (then only the
bundle's own file names are replaced, the manifest last). The checkpoint is read only through
``load_checkpoint`` and its hyper-parameters checked as data first (``trust.py``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from lit_seqcls import __version__
from lit_seqcls.checkpoints import (
    TEXT_PIPELINE_KEY,
    TEXT_PIPELINE_VERSION,
    CheckpointError,
    load_checkpoint,
)
from lit_seqcls.export.card import RunFacts, model_card
from lit_seqcls.export.evaluation import Evaluation, evaluate, from_test_predictions
from lit_seqcls.export.graph import MODEL_FILES, Format, check_export, export_model
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.runtime.outputs import check_output_dir
from lit_seqcls.serving.bundle import (
    BUNDLE_VERSION,
    CARD_FILE,
    MANIFEST_FILE,
    MULTI_LABEL,
    PIPELINE_FILE,
    SINGLE_LABEL,
    TOKENIZER_FILE,
    Bundle,
    sha256,
)
from lit_seqcls.trust import check_checkpoint_hparams


def export_bundle(
    ckpt_path: str | Path,
    output_dir: str | Path,
    fmt: Format = "onnx",
    overwrite: bool = False,
    run_dir: str | Path | None = None,
    eval_data: str | Path | None = None,
    text_field: str = "text",
    label_field: str = "label",
    command: str | None = None,
) -> Path:
    """Export ``ckpt_path`` into the folder ``output_dir``; return the folder.

    Args:
        ckpt_path: a checkpoint written by ``lit-seqcls fit`` (it holds the text pipeline).
        output_dir: the bundle folder; missing, empty, an earlier bundle, or ``overwrite``.
        fmt: ``onnx`` (served without torch), ``torchscript`` or ``pt2`` (need torch).
        overwrite: write into a folder that holds other files (only the bundle's names change).
        run_dir: the training run's folder (``config.yaml``, ``metrics.csv``) for the model
            card; default: the folder above the checkpoint's ``checkpoints/``.
        eval_data: a labelled file (.jsonl/.csv/.parquet) the exported model is evaluated on
            for the card (accuracy, macro-F1 and per-class F1 with intervals, calibration,
            accuracy by length); ONNX only.
        text_field, label_field: the columns of ``eval_data``.
        command: the command line that made the bundle, for the card.
    """
    ckpt_path, output_dir = Path(ckpt_path).expanduser(), Path(output_dir).expanduser()
    check_output_dir(
        output_dir, overwrite, is_bundle, option="--output_dir", overwrite_option="--overwrite true"
    )
    if not ckpt_path.is_file():
        raise CheckpointError(
            f"--ckpt_path {ckpt_path} does not exist (or is not a file); give a .ckpt file "
            "written by `lit-seqcls fit`, e.g. lightning_logs/version_0/checkpoints/last.ckpt"
        )
    if eval_data is not None and fmt != "onnx":
        raise CheckpointError(f"--eval_data evaluates the ONNX bundle; drop it for --format {fmt}")
    checkpoint = load_checkpoint(ckpt_path)
    check_checkpoint_hparams(checkpoint, ckpt_path, SequenceClassifier)
    text_pipeline = _text_pipeline(checkpoint, ckpt_path)
    model = SequenceClassifier.load_from_checkpoint(ckpt_path, map_location="cpu").eval()
    network = model.network.eval()
    facts = RunFacts.gather(ckpt_path, checkpoint, run_dir)

    tmp = output_dir.with_name(f".{output_dir.name}.export-{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model_file = tmp / MODEL_FILES[fmt]
        info = export_model(network, model_file, fmt)
        info["max_abs_logit_difference"] = check_export(network, model_file, fmt)
        (tmp / TOKENIZER_FILE).write_text(text_pipeline["tokenizer"], encoding="utf-8")
        pipeline = pipeline_json(checkpoint, text_pipeline, model, info)
        _write_json(tmp / PIPELINE_FILE, pipeline)
        evaluation: Evaluation | None = None
        if eval_data is not None:
            bundle = Bundle(tmp, verify=False)
            evaluation = evaluate(bundle, Path(eval_data), text_field, label_field, tmp)
        if evaluation is None and facts.test_predictions is not None:  # compare's test run
            names = pipeline["class_names"]
            evaluation = from_test_predictions(facts.test_predictions, names, facts.record)
        card = model_card(pipeline, facts, evaluation, command, files=_files(tmp))
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
        _write_manifest(tmp)
        _move_into_place(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def pipeline_json(
    checkpoint: dict[str, Any], text_pipeline: dict[str, Any], model: SequenceClassifier, info: dict
) -> dict[str, Any]:
    """What serving needs besides the graph and the tokenizer, as plain data."""
    task, temperature, thresholds = calibration(checkpoint, text_pipeline)
    return {
        "bundle_version": BUNDLE_VERSION,
        "lit_seqcls_version": __version__,
        "model": info,
        "encoder": model.hparams.get("encoder"),
        "class_names": list(text_pipeline.get("class_names") or model.class_names),
        "task": task,
        "temperature": temperature,
        "thresholds": thresholds,
        "max_length": text_pipeline.get("max_length"),
        "truncation_side": text_pipeline.get("truncation_side", "right"),
        "strip_html": bool(text_pipeline.get("strip_html", False)),
        "pad_id": 0,
    }


def calibration(
    checkpoint: dict[str, Any], text_pipeline: dict[str, Any]
) -> tuple[str, float, list[float] | None]:
    """``(task, temperature, thresholds)`` from the checkpoint: the ``temperature`` and
    ``thresholds`` buffers of the system when it has them, the task from the text pipeline or
    the hyper-parameters; else ``single_label``, 1.0 and ``None``."""
    state = checkpoint.get("state_dict", {})
    hparams = checkpoint.get("hyper_parameters") or {}
    temperature = state.get("temperature")
    temperature = 1.0 if temperature is None else float(torch.as_tensor(temperature).item())
    thresholds = state.get("thresholds")
    if thresholds is not None:
        thresholds = [float(t) for t in torch.as_tensor(thresholds).flatten().tolist()]
    task = text_pipeline.get("task") or hparams.get("task")
    if task is None:
        multi = text_pipeline.get("multi_label") or hparams.get("multi_label")
        task = MULTI_LABEL if multi else SINGLE_LABEL
    task = str(task).replace("-", "_").lower()
    task = {"multilabel": MULTI_LABEL, "singlelabel": SINGLE_LABEL}.get(task, task)
    if task not in (SINGLE_LABEL, MULTI_LABEL):
        raise CheckpointError(f"checkpoint names an unknown task {task!r}; cannot export it")
    return task, temperature, thresholds


def is_bundle(path: Path) -> bool:
    """Whether the folder ``path`` holds an earlier bundle (its manifest and pipeline)."""
    return (path / MANIFEST_FILE).is_file() and (path / PIPELINE_FILE).is_file()


def _text_pipeline(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    pipeline = checkpoint.get(TEXT_PIPELINE_KEY)
    if not isinstance(pipeline, dict) or not isinstance(pipeline.get("tokenizer"), str):
        raise CheckpointError(
            f"checkpoint {path} holds no text pipeline (tokenizer, max length, class names), so "
            "a bundle could not turn raw text into ids. Export a checkpoint written by "
            "`lit-seqcls fit` with a lit-seqcls DataModule."
        )
    if pipeline.get("version", 0) > TEXT_PIPELINE_VERSION:
        raise CheckpointError(
            f"checkpoint {path} was written by a newer lit-seqcls (text pipeline version "
            f"{pipeline['version']}); upgrade lit-seqcls to export it."
        )
    return pipeline


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _write_manifest(folder: Path) -> None:
    names = [n for n in _files(folder) if n != MANIFEST_FILE]
    lines = [f"{sha256(folder / name)}  {name}\n" for name in names]
    (folder / MANIFEST_FILE).write_text("".join(lines), encoding="utf-8")


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder to ``target``; into an existing folder, file by file with the
    manifest last (a reader sees the old manifest until every new file is there)."""
    for path in tmp.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.replace(tmp, target)
        return
    names = [n for n in _files(tmp) if n != MANIFEST_FILE] + [MANIFEST_FILE]
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, target / name)
