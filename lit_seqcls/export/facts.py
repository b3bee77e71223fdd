"""What a checkpoint and its run folder record, for the model card (``RunFacts.gather``).

The checkpoint: hyper-parameters, text pipeline, epoch and step, batches per epoch, the
DataModule's tokenizer digest. The run folder (the folder above ``checkpoints/``, or
``--run_dir``): ``config.yaml`` (data source and revision, seeds, trainer) and ``metrics.csv``
(best validation scores, throughput, test scores if ``test`` ran there).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lit_seqcls.serving.bundle import sha256

# The network's weights; checkpoints from before #15 name them without "network."
NETWORK_KEYS = ("network.", "embedding.", "encoder.", "head.")
MAX_FINGERPRINTED = 20  # files of a data folder listed with their digests
# What `lit-seqcls compare` writes in each run's folder (compare/runs.py, compare/predictions.py).
COMPARE_RECORD, COMPARE_PREDICTIONS = "result.json", "test_predictions.jsonl"


@dataclass
class RunFacts:
    ckpt_path: Path
    ckpt_sha256: str
    epoch: int | None
    global_step: int | None
    hparams: dict[str, Any]
    parameters: int
    batches_per_epoch: int | None
    tokenizer: dict[str, Any]
    datamodule_state: dict[str, Any]
    run_dir: Path | None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    training_seconds: float | None = None
    training_time_source: str = ""
    # `lit-seqcls compare` records per run (result.json, test_predictions.jsonl), if found.
    record: dict[str, Any] = field(default_factory=dict)
    test_predictions: Path | None = None

    @classmethod
    def gather(
        cls, ckpt_path: Path, checkpoint: dict[str, Any], run_dir: str | Path | None
    ) -> RunFacts:
        run = _run_dir(ckpt_path, run_dir)
        config = _read_yaml(run / "config.yaml") if run else {}
        facts = cls(
            ckpt_path=ckpt_path,
            ckpt_sha256=sha256(ckpt_path),
            epoch=checkpoint.get("epoch"),
            global_step=checkpoint.get("global_step"),
            hparams=dict(checkpoint.get("hyper_parameters") or {}),
            parameters=sum(
                int(v.numel())
                for k, v in checkpoint.get("state_dict", {}).items()
                if k.startswith(NETWORK_KEYS) and hasattr(v, "numel")
            ),
            batches_per_epoch=_batches_per_epoch(checkpoint),
            tokenizer=_tokenizer_facts(checkpoint.get("text_pipeline", {}).get("tokenizer")),
            datamodule_state={
                k: v
                for k, v in checkpoint.items()
                if k.endswith("DataModule") and isinstance(v, dict)
            },
            run_dir=run,
            config=config,
            metrics=_read_metrics(run / "metrics.csv") if run else {},
        )
        if run and (run / "config.yaml").is_file():
            elapsed = ckpt_path.stat().st_mtime - (run / "config.yaml").stat().st_mtime
            facts.training_seconds = elapsed if elapsed > 0 else None
            facts.training_time_source = "config.yaml"
        compare_dir = _compare_run_dir(ckpt_path, run)
        if compare_dir is not None:
            facts.record = _read_json(compare_dir / COMPARE_RECORD)
            if isinstance(facts.record.get("train_time_s"), int | float):
                facts.training_seconds = float(facts.record["train_time_s"])
                facts.training_time_source = "compare"
            predictions = compare_dir / COMPARE_PREDICTIONS
            facts.test_predictions = predictions if predictions.is_file() else None
        return facts


def _run_dir(ckpt_path: Path, given: str | Path | None) -> Path | None:
    if given is not None:
        return Path(given).expanduser()
    folder = ckpt_path.resolve().parent
    run = folder.parent if folder.name == "checkpoints" else folder
    return run if (run / "config.yaml").is_file() or (run / "metrics.csv").is_file() else None


def _compare_run_dir(ckpt_path: Path, run: Path | None) -> Path | None:
    """The folder above the checkpoint holding compare's ``result.json``, within 3 levels."""
    for folder in [run, *ckpt_path.resolve().parents[:4]]:
        if folder is not None and (folder / COMPARE_RECORD).is_file():
            return folder
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_metrics(path: Path) -> dict[str, float]:
    """Best ``val/*`` (max), last ``train/tokens_per_sec``, any ``test/*`` of ``metrics.csv``."""
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except OSError:
        return {}
    out: dict[str, float] = {}
    for row in rows:
        for key, text in row.items():
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                continue
            if key in ("val/acc", "val/f1_macro"):
                out[key] = max(out.get(key, -math.inf), value)
            elif key.startswith("test/") or key == "train/tokens_per_sec":
                out[key] = value
    return out


def _batches_per_epoch(checkpoint: dict[str, Any]) -> int | None:
    try:
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        return int(progress["current"]["ready"]) or None
    except (KeyError, TypeError, ValueError):
        return None


def _tokenizer_facts(tokenizer_json: Any) -> dict[str, Any]:
    try:
        spec = json.loads(tokenizer_json)
    except (TypeError, ValueError):
        return {}
    model = spec.get("model") or {}
    norm = spec.get("normalizer") or {}
    steps = [s.get("type") for s in norm.get("normalizers", [norm]) if isinstance(s, dict)]
    vocab = model.get("vocab")
    return {
        "model": model.get("type"),
        "vocab_size": len(vocab) if isinstance(vocab, dict | list) else None,
        "normalizers": [s for s in steps if s],
    }


def fingerprints(args: dict[str, Any]) -> tuple[str, list[str]]:
    """The size and digest of each local data file the config names, and the ``data_files``
    paths not found from the current folder (relative paths are relative to where ``fit`` ran,
    which the run does not record). ``path`` is a builder or hub id unless it exists here."""
    files = args.get("data_files") or {}
    named: list[str] = []
    for value in files.values() if isinstance(files, dict) else [files]:
        named += (
            [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]
        )
    paths = [args["path"], *named] if isinstance(args.get("path"), str) else named
    found = []
    for given in paths:
        root = Path(given).expanduser()
        members = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in members[:MAX_FINGERPRINTED]:
            if file.is_file() and not file.name.startswith("."):
                found.append(
                    f"`{file.name}` {file.stat().st_size:,} B sha256 `{sha256(file)[:16]}…`"
                )
    missing = [given for given in named if not Path(given).expanduser().exists()]
    return "<br>".join(found), missing
