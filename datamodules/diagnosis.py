"""Where a data file is broken: the line, record or field, said in a ``DataError``.

``datamodules.loading`` tries ``datasets`` first (no extra reading); only when that fails is a
local file scanned here, line by line, to name exactly what is wrong (invalid UTF-8, malformed
JSON, a record with too many fields, a lone surrogate, a broken gzip or Parquet file).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from datamodules.schema import DataError, DataFileNotFoundError

_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"
SEPARATORS = ",;\t|"  # what a CSV file's header is looked at for, in this order


def diagnose(file: Path, builder: str, sep: str | None = None) -> None:
    """Raise a DataError for the first broken line or record of ``file`` read as ``builder``.

    ``builder`` is the ``datasets`` builder (``json``, ``csv``, ``parquet``, ``text``), as
    ``datamodules.loading.builder_for`` picks it; ``sep`` a CSV file's separator, if given.
    """
    if builder == "parquet":
        return _check_parquet(file)
    json_lines = builder == "json" and not is_json_document(file)
    columns = 0
    for number, line in lines(file):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{file}, line {number}: invalid UTF-8 at byte {err.start} of the line "
                f"({line[max(0, err.start - 10) : err.start + 10]!r}). Re-save the file as "
                "UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)."
            ) from None
        if json_lines and text.strip():
            columns = max(columns, _check_json_line(file, number, text))
    if json_lines and columns == 0:
        raise DataError(
            f"{file}: every line is an empty JSON object, so there are no columns. Write each "
            'row as {"text": "...", "label": "..."}.'
        )
    if builder == "csv":
        check_csv_records(file, sep=sep)


def _check_json_line(file: Path, number: int, text: str) -> int:
    """Raise a DataError if the line is not one well-formed JSON object; else its key count."""
    where = f"{file}, line {number}"
    try:
        value = json.loads(text, object_pairs_hook=functools.partial(_unique_keys, where))
    except json.JSONDecodeError as err:
        # Some of json's messages end in "at" ("Invalid control character at"): one "at" here.
        raise DataError(
            f"{where}: malformed JSON ({err.msg.removesuffix(' at')} at column {err.colno}). "
            'Each line must be one JSON object, e.g. {"text": "...", "label": "..."}; fix or '
            "remove that line."
        ) from None
    if not isinstance(value, dict):
        raise DataError(
            f"{where}: expected one JSON object per line, got {type(value).__name__} "
            f'{text.strip()!r:.60}. Write each row as {{"text": "...", "label": "..."}}.'
        )
    for field, item in value.items():
        if _has_lone_surrogate(item):
            raise DataError(
                f"{where}, field {field!r}: the string holds a lone UTF-16 surrogate (an escape "
                "like \\ud83d without its pair, e.g. half of an emoji cut off), which is not a "
                "character. Fix or remove it: export the data as UTF-8 text "
                "(`ensure_ascii=False`), or cut strings by characters, not UTF-16 units."
            )
    return len(value)


def _unique_keys(where: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise DataError(
                f"{where}, field {key!r}: the key appears twice in one object, so its value is "
                "ambiguous. Keep one of them."
            )
    return dict(pairs)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(v) for v in value.values())
    return isinstance(value, list) and any(_has_lone_surrogate(v) for v in value)


def check_csv_records(file: Path, limit: int | None = None, sep: str | None = None) -> None:
    """Records with more fields than the header (pandas shifts or drops them); none at all."""
    sep = separator(file, sep)
    with contextlib.closing(csv_rows(file, sep)) as rows:
        _, header = next(rows, (0, []))
        records = 0
        for line, record in rows:
            if not record:
                continue  # a blank line is no row, for pandas too
            records += 1
            if len(record) > len(header):
                raise DataError(
                    f"{file}, line {line}: {len(record)} fields, but the header has "
                    f"{len(header)} ({sep.join(header)!r:.80}). Quote fields that contain the "
                    f"separator {sep!r} (or a quote or newline), or remove the extra fields."
                )
            if limit is not None and records >= limit:
                return
    if records == 0:
        raise DataError(
            f"{file} has a header ({sep.join(header)!r:.80}) but no rows. Add rows, or leave "
            "the file out of `data_files`."
        )


def csv_rows(file: Path, sep: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` for each record of a CSV file, the header first (invalid UTF-8 as �)."""
    limit_before = csv.field_size_limit(2**31 - 1)  # a long text is fine (the default is 128 KB)
    try:
        with _open(file) as raw, io.TextIOWrapper(raw, "utf-8-sig", "replace", newline="") as f:
            reader = csv.reader(f, delimiter=sep)
            for record in reader:
                yield reader.line_num, record
    finally:
        csv.field_size_limit(limit_before)


def _check_parquet(file: Path) -> None:
    try:
        rows = pq.read_metadata(file).num_rows
    except Exception as err:
        raise DataError(
            f"{file} is not a readable Parquet file ({root_cause(err)}). Check that it was "
            "copied completely, or write it again (`Dataset.to_parquet`, `DataFrame.to_parquet`)."
        ) from None
    if rows == 0:
        raise DataError(f"{file} has no rows. Add rows, or leave it out of `data_files`.")


def check_exists_and_not_empty(file: Path) -> None:
    if file.is_dir():
        raise DataError(
            f"data file {file} is a folder; name the files in it under `data_files`, or give "
            "the folder as `path` if it is in the hub layout."
        )
    if not file.is_file():
        patterns = " (patterns like `*.jsonl` are not expanded: list the files)"
        hint = patterns if any(c in str(file) for c in "*?[") else ""
        raise DataFileNotFoundError(f"data file {file} does not exist; check `data_files`{hint}.")
    with _open(file) as f:
        chunk = f.read(_CHUNK).removeprefix(_BOM)
        while chunk.isspace():  # blank lines so far: read on (in chunks, never all at once)
            chunk = f.read(_CHUNK)
    if not chunk:
        raise DataError(
            f"data file {file} is empty (no rows). Fill it, or leave it out of `data_files`."
        )


def separator(file: Path, given: str | None = None) -> str:
    """``given``, else the separator that ``file``'s header line uses (see ``sniff_separator``)."""
    if given is not None:
        return given
    return sniff_separator(header_line(file), "\t" if ".tsv" in _suffixes(file) else ",")


def sniff_separator(header: str, default: str = ",") -> str:
    """``default`` if the header holds it, else the one of ``,;\\t|`` it holds most often.

    Excel writes ``;``-separated "CSV" in many locales; a header with none of them is one column.

    Example:
        >>> sniff_separator("text,label"), sniff_separator("text;label"), sniff_separator("text")
        (',', ';', ',')
        >>> sniff_separator("text\\tlabel", default="\\t"), sniff_separator('"a;b",c')
        ('\\t', ',')
    """
    found = [s for s in SEPARATORS if s in header]
    return default if default in header or not found else max(found, key=header.count)


def _suffixes(file: Path) -> list[str]:
    return [s.lower() for s in file.suffixes]


def header_line(file: Path) -> str:
    """The first line of a text file (up to 64 KB), without a BOM or the newline."""
    with _open(file) as f:
        line = f.readline(_CHUNK).removeprefix(_BOM)
    return line.decode("utf-8", "replace").rstrip("\r\n")


def starts_with_bom(file: Path) -> bool:
    with _open(file) as f:
        return f.read(3) == _BOM


def is_json_document(file: Path) -> bool:
    # A `.json` file may hold one JSON array/object over many lines rather than JSON Lines.
    with _open(file) as f:
        return f.read(64).replace(_BOM, b"").lstrip().startswith(b"[")


def lines(file: Path) -> Iterator[tuple[int, bytes]]:
    with _open(file) as f:
        for number, line in enumerate(f, start=1):
            yield number, line.removeprefix(_BOM) if number == 1 else line


@contextlib.contextmanager
def _open(file: Path) -> Iterator[BinaryIO]:
    if file.suffix.lower() != ".gz":
        with open(file, "rb") as f:
            yield f
        return
    with gzip.open(file, "rb") as f:
        try:
            yield f
        except (OSError, EOFError, zlib.error) as err:  # not gzip, or cut short
            raise DataError(
                f"{file} is not a complete gzip file ({err}). Unpack it to check, or drop the "
                "`.gz` suffix if it is not compressed."
            ) from None


def root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"
