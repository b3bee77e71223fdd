"""``lit-seqcls export --ckpt_path model.ckpt --output_dir bundle/``: see ``export_bundle``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.export.artifacts import log_bundle_to_training_run
from lit_seqcls.export.bundle import export_bundle
from lit_seqcls.export.card import RunFacts, shell_command
from lit_seqcls.export.graph import FORMATS
from lit_seqcls.runtime.wandb_logger import RUN_ID_KEY
from lit_seqcls.validation import parse_bool


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lit-seqcls export",
        description=(
            "Write a checkpoint as a bundle folder: model.onnx, tokenizer.json, pipeline.json, "
            "MODEL_CARD.md, checksums.sha256. Serve it without torch: lit_seqcls.serving.Bundle "
            "or `lit-seqcls predict --bundle DIR --data.data_files.predict FILE`."
        ),
        allow_abbrev=False,
    )
    p.add_argument("--ckpt_path", required=True, help="a checkpoint written by lit-seqcls fit")
    p.add_argument("--output_dir", required=True, help="the bundle folder (new or empty)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="model file format")
    p.add_argument(
        "--overwrite",
        nargs="?",
        const="true",
        default="false",
        type=parse_bool,
        help="write into a folder that holds other files (only the bundle's file names change)",
    )
    p.add_argument(
        "--run_dir",
        default=None,
        help="the training run folder (config.yaml, metrics.csv); default: above checkpoints/",
    )
    p.add_argument(
        "--eval_data",
        default=None,
        help="labelled .jsonl/.csv/.parquet to measure the bundle on, for the model card",
    )
    p.add_argument("--data.text_field", dest="text_field", default="text")
    p.add_argument("--data.label_field", dest="label_field", default="label")
    p.add_argument(
        "--wandb",
        choices=("auto", "false"),
        default="auto",
        help="auto: log the bundle as a W&B artifact when the run's WandbLogger had log_model",
    )
    return p


def main(argv: list[str]) -> Path:
    args = parser().parse_args(argv)
    folder = export_bundle(
        args.ckpt_path,
        args.output_dir,
        fmt=args.format,
        overwrite=args.overwrite,
        run_dir=args.run_dir,
        eval_data=args.eval_data,
        text_field=args.text_field,
        label_field=args.label_field,
        command=shell_command(["lit-seqcls", "export", *argv]),
    )
    print(f"Wrote the bundle {folder} ({args.format}); serve it with lit_seqcls.serving.Bundle.")
    if args.wandb == "auto":
        checkpoint = load_checkpoint(args.ckpt_path, mmap=True, checksums=False)
        facts = RunFacts.gather(Path(args.ckpt_path), checkpoint, args.run_dir)
        run_dir = log_bundle_to_training_run(folder, facts.config, checkpoint.get(RUN_ID_KEY))
        if run_dir is not None:
            print(f"Logged the bundle as a W&B artifact of the run in {run_dir}")
    return folder


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
