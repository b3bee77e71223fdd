"""``MODEL_CARD.md``: what the checkpoint, its run folder and (optionally) an evaluation know.

Nothing is invented: a fact the run did not record is written as "not recorded". The facts come
from ``facts.RunFacts`` (checkpoint and run folder) and ``evaluation.Evaluation`` (the bundle
measured on ``--eval_data``, with intervals).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
from pathlib import Path
from typing import Any

from lit_seqcls.export.evaluation import Evaluation
from lit_seqcls.export.facts import RunFacts, fingerprints
from lit_seqcls.metrics import MULTI_LABEL

__all__ = ["RunFacts", "model_card", "shell_command"]


def model_card(
    pipeline: dict[str, Any],
    facts: RunFacts,
    evaluation: Evaluation | None,
    command: str | None,
    files: list[str],
) -> str:
    """The Markdown text of ``MODEL_CARD.md``."""
    names = pipeline["class_names"]
    encoder = _encoder_name(pipeline.get("encoder"))
    parts = [
        f"# Model card: {encoder} text classifier ({', '.join(names)})\n",
        f"Exported by lit-seqcls {pipeline['lit_seqcls_version']} on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d} from `{facts.ckpt_path.name}` "
        f"(sha256 `{facts.ckpt_sha256[:16]}…`). Serve it without torch: "
        "`pip install lit-seqcls[serve]`, then "
        '`from lit_seqcls.serving import Bundle; Bundle("<this folder>").predict([...])`.\n',
        _model_section(pipeline, facts),
        _data_section(pipeline, facts, evaluation),
        _training_section(facts),
        _evaluation_section(facts, evaluation),
        _use_section(pipeline, facts),
        _reproduce_section(facts, command),
        "## Files\n\n"
        + "\n".join(f"- `{f}`" for f in [*files, "MODEL_CARD.md", "checksums.sha256"])
        + "\n\n`checksums.sha256` holds the SHA-256 of every other file (`sha256sum -c "
        "checksums.sha256`); `Bundle` checks it when it loads.\n",
    ]
    return "\n".join(parts)


# ---- sections ------------------------------------------------------------------------------
def _model_section(p: dict[str, Any], f: RunFacts) -> str:
    model = p["model"]
    rows = [
        ("Task", p["task"].replace("_", "-") + " classification"),
        ("Classes", ", ".join(f"`{n}`" for n in p["class_names"])),
        ("Encoder", f"`{_encoder_name(p.get('encoder'))}` {_encoder_args(p.get('encoder'))}"),
        ("Embedding size", str(f.hparams.get("embedding_dim"))),
        ("Dropout", str(f.hparams.get("dropout"))),
        ("Parameters", f"{f.parameters:,}"),
        ("Vocabulary", _vocabulary(f)),
        ("Normalisation", _normalisation(p, f)),
        ("Max length", _max_length(p)),
        ("Temperature", f"{p['temperature']:g}"
         + (" (not calibrated)" if p["temperature"] == 1.0 else "")),
        ("Thresholds", "argmax" if p["thresholds"] is None
         else ", ".join(f"{t:g}" for t in p["thresholds"])),
        ("Graph", f"{model['format']}" + (f", opset {model['opset']}" if "opset" in model else "")
         + f", exported with torch {model['torch_version']}; max |logit − PyTorch| "
         f"{model['max_abs_logit_difference']:.1e} on texts of length 1..16"),
    ]  # fmt: skip
    return "## Model\n\n" + _table(("", ""), rows) + "\n"


def _data_section(p: dict[str, Any], f: RunFacts, evaluation: Evaluation | None) -> str:
    data = f.config.get("data") or {}
    args = data.get("init_args") or {}
    rows = [("DataModule", f"`{data.get('class_path', 'not recorded')}`")]
    for key in ("path", "name", "revision", "split", "text_field", "label_field"):
        if args.get(key) is not None:
            rows.append((key, f"`{args[key]}`"))
    if args.get("data_files"):
        rows.append(("data_files", f"`{json.dumps(args['data_files'])}`"))
    found, missing = fingerprints(args)
    if missing:
        shown = ", ".join(f"`{m}`" for m in missing)
        found += ("<br>" if found else "") + (
            f"the recorded files {shown} were not found from the folder export ran in; "
            "export from the folder `fit` ran in to fingerprint them"
        )
    rows.append(("File fingerprints", found or "not recorded (no local files found)"))
    digest = next((s.get("tokenizer_sha256") for s in f.datamodule_state.values()), None)
    if digest:
        rows.append(("Tokenizer sha256", f"`{digest}`"))
    batch = args.get("batch_size")
    if f.batches_per_epoch and batch:
        rows.append((
            "Training split",
            f"{f.batches_per_epoch:,} batches of up to {batch} texts per epoch "
            f"(≤ {f.batches_per_epoch * batch:,} texts); validation carved with val_fraction "
            f"{args.get('val_fraction', 'n/a')}, seed {args.get('seed', 'n/a')}",
        ))  # fmt: skip
    else:
        rows.append(("Split sizes", "not recorded"))
    if evaluation is not None:
        counts = ", ".join(f"{n}: {c:,}" for n, c in evaluation.class_counts.items())
        rows.append(
            ("Evaluation data", f"`{evaluation.source}`: {evaluation.size:,} texts ({counts})")
        )
    rows.append(("Class counts (training)", _class_counts(p, f)))
    return "## Data\n\n" + _table(("", ""), rows) + "\n"


def _training_section(f: RunFacts) -> str:
    trainer = f.config.get("trainer") or {}
    model = f.config.get("model") or {}
    optimizer = model.get("optimizer") or {}
    opt = optimizer.get("class_path", "not recorded") if isinstance(optimizer, dict) else optimizer
    lr = (optimizer.get("init_args") or {}).get("lr") if isinstance(optimizer, dict) else None
    rows = [
        ("Seed", f"seed_everything {f.config.get('seed_everything', 'not recorded')}"),
        ("Epochs / steps", f"{'n/a' if f.epoch is None else f.epoch + 1} epochs "
         f"(max_epochs {trainer.get('max_epochs', 'n/a')}), {f.global_step or 0:,} steps"),
        ("Optimizer", f"`{opt}`" + (f", lr {lr}" if lr is not None else "")),
        ("Gradient clipping", str(trainer.get("gradient_clip_val", "not recorded"))),
        ("Training time", _duration(f)),
        ("Hardware", _hardware(f, trainer)),
    ]  # fmt: skip
    tokens = f.metrics.get("train/tokens_per_sec")
    if tokens:
        rows.append(("Throughput", f"{tokens:,.0f} real tokens/s in training (last logged)"))
    for key in ("val/acc", "val/f1_macro"):
        if key in f.metrics:
            rows.append((f"Best {key}", f"{f.metrics[key]:.4f}"))
    return "## Training\n\n" + _table(("", ""), rows) + "\n"


def _evaluation_section(f: RunFacts, e: Evaluation | None) -> str:
    test = {k: v for k, v in f.metrics.items() if k.startswith("test/")}
    if e is None and not test:
        return (
            "## Evaluation\n\nNo test results were recorded with this run. Measure the bundle "
            "with `lit-seqcls export ... --eval_data test.jsonl` (accuracy, macro-F1 and "
            "per-class F1 with intervals, calibration error, accuracy by length).\n"
        )
    out = ["## Evaluation\n"]
    if e is not None:
        out.append(
            f"Predictions of {e.measured} on `{Path(e.source).name}` ({e.size:,} texts); "
            "95% intervals from 1,000 bootstrap resamples of the texts.\n"
        )
        ece = "not recorded (no probabilities)" if e.ece is None else f"{e.ece:.4f}"
        out.append(_table(("metric", "value", "95% interval"), [
            ("accuracy", f"{e.accuracy:.4f}", _ci(e.accuracy_ci)),
            ("macro-F1", f"{e.macro_f1:.4f}", _ci(e.macro_f1_ci)),
            ("expected calibration error (15 bins)", ece, ""),
        ]))  # fmt: skip
        out.append("\nPer class:\n")
        out.append(_table(("class", "precision", "recall", "F1", "F1 95% interval", "support"), [
            (f"`{c['name']}`", f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}",
             _ci(c["f1_ci"]), f"{c['support']:,}")
            for c in e.per_class
        ]))  # fmt: skip
        if e.by_length:
            out.append(
                "\nAccuracy by length (tokens after truncation, buckets of about equal size):\n"
            )
            out.append(_table(("tokens", "texts", "accuracy"), [
                (f"{lo}–{hi}" if lo < hi else str(lo), f"{n:,}", f"{acc:.4f}")
                for lo, hi, n, acc in e.by_length
            ]))  # fmt: skip
        if e.plots:
            out.append("\n" + "  \n".join(f"![{Path(p).stem}]({p})" for p in e.plots))
    if test:
        out.append("\nRecorded by `lit-seqcls test` in the run folder (no intervals):\n")
        out.append(_table(("metric", "value"), [(k, f"{v:.4f}") for k, v in sorted(test.items())]))
    return "\n".join(out) + "\n"


def _use_section(p: dict[str, Any], f: RunFacts) -> str:
    names = ", ".join(p["class_names"])
    limit = p["max_length"]
    kept = "first" if p["truncation_side"] == "right" else "last"
    limits = [
        f"Only the {kept} {limit} tokens of a text are read; the rest is ignored."
        if limit else "Texts are read whole (no max_length): very long texts cost time and memory.",
        f"The vocabulary ({_vocabulary(f)}) was learned from the "
        "training data; other words become `[UNK]`, so new slang, names and other languages are "
        "read as unknown.",
        "The language and domain are those of the training data (see Data); nothing checks that "
        "an input matches them, and accuracy on other text is not measured here.",
        "Probabilities are "
        + ("not calibrated (temperature 1.0): read them as scores, not frequencies."
           if p["temperature"] == 1.0
           else f"scaled by the fitted temperature {p['temperature']:g}."),
        "An empty text is read as one `[UNK]` token and still gets a label.",
    ]  # fmt: skip
    return (
        "## Intended use\n\n"
        f"Labelling texts like the training data with one of: {names}; research baselines, "
        "batch jobs and services where a small CPU model is wanted. Not for decisions about "
        "people without human review.\n\n## Known limits\n\n"
        + "\n".join(f"- {line}" for line in limits)
        + "\n"
    )


def _reproduce_section(f: RunFacts, command: str | None) -> str:
    lines = []
    if f.run_dir is not None and (f.run_dir / "config.yaml").is_file():
        lines.append(f"lit-seqcls fit --config {f.run_dir / 'config.yaml'}")
    else:
        lines.append("# the training config was not found next to the checkpoint")
    lines.append(command or f"lit-seqcls export --ckpt_path {f.ckpt_path} --output_dir <folder>")
    return "## Reproduce\n\n```bash\n" + "\n".join(lines) + "\n```\n"


# ---- helpers -------------------------------------------------------------------------------
def _encoder_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and isinstance(spec.get("class_path"), str):
        return spec["class_path"].rsplit(".", 1)[-1]
    return "custom"


def _encoder_args(spec: Any) -> str:
    if isinstance(spec, dict) and spec.get("init_args"):
        return "(" + ", ".join(f"{k}={v}" for k, v in spec["init_args"].items()) + ")"
    return "(defaults)"


def _vocabulary(f: RunFacts) -> str:
    size = f.tokenizer.get("vocab_size")
    return f"{size:,} tokens ({f.tokenizer.get('model')})" if isinstance(size, int) else "unknown"


def _normalisation(p: dict[str, Any], f: RunFacts) -> str:
    steps = list(f.tokenizer.get("normalizers") or [])
    if p["strip_html"]:
        steps.insert(0, "HTML tags → space")
    return ", ".join(steps) or "none"


def _max_length(p: dict[str, Any]) -> str:
    if p["max_length"] is None:
        return "none"
    kept = "first" if p["truncation_side"] == "right" else "last"
    return f"{p['max_length']} tokens (truncation keeps the {kept})"


def _class_counts(p: dict[str, Any], f: RunFacts) -> str:
    counts = f.hparams.get("class_counts")
    if not isinstance(counts, dict) or not counts:
        return "not recorded in the checkpoint"
    shown = ", ".join(f"{n}: {c:,}" for n, c in list(counts.items())[:20])
    shown += f", ... ({len(counts):,} classes)" if len(counts) > 20 else ""
    return shown + (" (texts holding each label)" if p["task"] == MULTI_LABEL else "")


def _duration(f: RunFacts) -> str:
    if f.training_seconds is None:
        return "not recorded"
    minutes = f"{f.training_seconds / 60:,.1f} min"
    if f.training_time_source == "compare":
        return f"{minutes} (fit, as `lit-seqcls compare` recorded it)"
    return (
        f"≈ {minutes} (from the run's config.yaml to this checkpoint's write time; includes "
        "data preparation and validation)"
    )


def _hardware(f: RunFacts, trainer: dict[str, Any]) -> str:
    recorded = f.record.get("hardware")
    if isinstance(recorded, dict) and recorded:
        return ", ".join(f"{k} {v}" for k, v in recorded.items()) + " (recorded by compare)"
    return (
        f"accelerator {trainer.get('accelerator', 'n/a')}, devices {trainer.get('devices', 'n/a')}"
        f", precision {trainer.get('precision') or '32 (default)'}; the machine itself is not "
        "recorded"
    )


def _ci(interval: tuple[float, float]) -> str:
    low, high = interval
    return "n/a" if math.isnan(low) else f"[{low:.4f}, {high:.4f}]"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shell_command(argv: list[str]) -> str:
    """``argv`` as one shell line (for the card's Reproduce section)."""
    return shlex.join(argv)
