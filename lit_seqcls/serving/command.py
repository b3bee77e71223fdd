"""``lit-seqcls predict --bundle DIR --data.data_files.predict FILE``: predict with a bundle.

The rows are those of ``lit-seqcls predict --ckpt_path`` (``index``, ``label`` or ``labels``,
``probs``, ``text``), in input order. Without torch installed (``pip install lit-seqcls[serve]``)
the same command is ``python -m lit_seqcls.serving --bundle DIR --data.data_files.predict FILE``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lit_seqcls.errors import DEBUG_ENV, UserError
from lit_seqcls.serving.bundle import Bundle
from lit_seqcls.serving.files import check_output, read_rows, write_rows
from lit_seqcls.validation import parse_bool


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lit-seqcls predict --bundle",
        description="Predict with an exported bundle (onnxruntime; torch not needed).",
        allow_abbrev=False,
    )
    p.add_argument("--bundle", required=True, help="the folder `lit-seqcls export` wrote")
    p.add_argument(
        "--data.data_files.predict",
        dest="files",
        action="append",
        required=True,
        help="texts to label: .txt (one per line), .jsonl, .csv, .tsv or .parquet; repeatable",
    )
    p.add_argument(
        "--data.text_field", dest="text_field", default="text", help="text column (default text)"
    )
    p.add_argument(
        "--predictions.output",
        dest="output",
        default="predictions.jsonl",
        help="JSON Lines file to write (default ./predictions.jsonl)",
    )
    p.add_argument(
        "--predictions.overwrite",
        dest="overwrite",
        type=parse_bool,
        default=False,
        help="replace --predictions.output even if it is not an earlier predictions file",
    )
    p.add_argument("--batch_size", type=int, default=64, help="texts per onnxruntime call")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads (all cores)")
    return p


def run(argv: list[str]) -> Path:
    """Parse ``argv`` (after ``predict``), predict, write; return the output path."""
    args = parser().parse_args([a for a in argv if a != "predict"])
    output = Path(args.output).expanduser()
    files = [Path(f).expanduser() for f in args.files]
    check_output(output, files, args.overwrite)  # before any work
    bundle = Bundle(args.bundle, batch_size=args.batch_size, threads=args.threads)
    texts = [text for file in files for text, _ in read_rows(file, args.text_field)]
    rows = bundle.predict(texts)
    indexed = enumerate(zip(rows, texts, strict=True))
    write_rows(output, ({"index": i, **row, "text": text} for i, (row, text) in indexed))
    print(f"Wrote {len(rows):,} predictions to {output}")
    return output


def main(argv: list[str] | None = None) -> None:
    try:
        run(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        if os.environ.get(DEBUG_ENV):
            raise
        sys.exit(f"lit-seqcls: error: {err}\n(set {DEBUG_ENV}=1 to see the traceback)")
