"""Texts in, prediction rows out, with the standard library only (no ``datasets``, no torch).

``read_rows`` reads what ``lit-seqcls predict`` reads for a ``predict`` split: ``.txt`` (one text
per line), ``.jsonl`` / ``.json`` (JSON Lines, a ``text`` field), ``.csv`` / ``.tsv`` (a ``text``
column), and ``.parquet`` when pyarrow is installed. ``write_rows`` writes JSON Lines through a
temporary file renamed into place, never over a file that is not an earlier predictions file
(unless told to), never over an input.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lit_seqcls.serving.bundle import BundleError

SEPARATORS = ",;\t|"


def read_rows(
    path: str | Path, text_field: str | Sequence[str] = "text", label_field: str | None = None
) -> list[tuple[str, Any]]:
    """``(text, label or None)`` per row of ``path``; several text fields joined by a newline."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BundleError(f"input file {path} does not exist")
    fields = [text_field] if isinstance(text_field, str) else list(text_field)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        if label_field is not None:
            raise BundleError(f"{path}: a .txt file holds texts only, no '{label_field}' labels")
        return [(line, None) for line in _read_text(path).splitlines()]
    if suffix in (".jsonl", ".json"):
        records = _json_lines(path)
    elif suffix in (".csv", ".tsv"):
        records = _csv_records(path, "\t" if suffix == ".tsv" else None)
    elif suffix == ".parquet":
        records = _parquet_records(path)
    else:
        raise BundleError(
            f"{path}: unknown file type {suffix or '(none)'}; give .txt, .jsonl, .csv, .tsv or "
            ".parquet"
        )
    return [_row(r, fields, label_field, path, n) for n, r in enumerate(records, 1)]


def _row(
    record: dict[str, Any], fields: list[str], label_field: str | None, path: Path, n: int
) -> tuple[str, Any]:
    texts = []
    for field in fields:
        value = record.get(field)
        if not isinstance(value, str):
            found = "missing" if field not in record else f"a {type(value).__name__}"
            raise BundleError(
                f"{path} row {n}: field '{field}' is {found}, not a text; name the text column "
                "with --data.text_field"
            )
        texts.append(value)
    label = None
    if label_field is not None:
        if record.get(label_field) is None:
            raise BundleError(f"{path} row {n}: the label field '{label_field}' is empty")
        label = record[label_field]
    return "\n".join(texts), label


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise BundleError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise BundleError(f"{path} line {n} is not JSON ({err}); one object per line") from None
        if not isinstance(record, dict):
            raise BundleError(f"{path} line {n} is a {type(record).__name__}, not an object")
        records.append(record)
    return records


def _csv_records(path: Path, delimiter: str | None) -> list[dict[str, Any]]:
    text = _read_text(path)
    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = max(SEPARATORS, key=header.count)
    return [dict(r) for r in csv.DictReader(text.splitlines(), delimiter=delimiter)]


def _parquet_records(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BundleError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    return pq.read_table(path).to_pylist()


def check_output(path: Path, inputs: Iterable[Path], overwrite: bool) -> None:
    """Refuse to write ``path`` over an input, or over a file that is not an earlier output."""
    for source in inputs:
        if _same_file(path, source):
            raise BundleError(
                f"--predictions.output {path} is one of the input files; writing there would "
                "replace your data. Write elsewhere."
            )
    if path.is_dir():
        raise BundleError(f"--predictions.output {path} is a folder; give a file name")
    if not path.exists() or overwrite or path.stat().st_size == 0 or _is_predictions(path):
        return
    raise BundleError(
        f"--predictions.output {path} already exists and is not an earlier lit-seqcls "
        "predictions file, so writing there would destroy it. Write elsewhere, or pass "
        "--predictions.overwrite true to replace it."
    )


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """JSON Lines through a temporary file in the same folder, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_predictions(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            row = json.loads(f.readline(16 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and "index" in row and "probs" in row


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError, ValueError):
        return os.path.samefile(a, b)
    return False
