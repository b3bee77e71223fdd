"""One type per column in every file: a value of another type is named by file, line and field.

``datasets`` reads the files of a source as one table whose column types come from the first
file. A later file of another type was cast to them, silently or with an error naming no file:
integer texts in ``test.jsonl`` became the strings ``"5"``, a column of mixed types in a second
file came back as its JSON text (``'"x"'``), list labels failed with "Couldn't cast array of
type list<item: string> to string"; a column that the first file lacks failed the same way.
So each file is read on its own here:

- JSON Lines (and ``.json`` arrays), before loading a source of several files (one file is
  checked after loading, and only when ``datasets`` saw a column of mixed types);
- Parquet, before loading a source of several files, from each file's schema (no rows read);
- CSV, only when loading failed: every cell is text, and a column's type is what pandas makes of
  the first file's cells, so only a failed cast says that another file differs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from datamodules.diagnosis import csv_rows, diagnose, is_json_document, lines
from datamodules.schema import DataError

_JSON_KINDS = {str: "string", bool: "boolean", list: "list", dict: "object"}
_TRUE_FALSE = {"True", "TRUE", "true", "False", "FALSE", "false"}  # pandas reads these as bools
Seen = dict[str, tuple[str, Path, str]]  # column -> (its type, the file and place first seen)


def check_json_files(
    files: Sequence[Path],
    text_fields: Sequence[str],
    columns: Sequence[str] | None,
    sample_first: bool = False,
) -> None:
    """Raise a DataError at the first value whose type is not its column's (``None``: all).

    With ``sample_first``, the first file is read only until each of ``columns`` has a type:
    ``datasets`` takes the types from that file, and a mix of types inside it shows after
    loading as a ``Json`` column (see ``loading``), so only the other files need a full read.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     train, test = Path(folder, "train.jsonl"), Path(folder, "test.jsonl")
        ...     _ = train.write_text('{"text": "a", "label": "pos"}')
        ...     _ = test.write_text('{"text": "b", "label": ["pos"]}')
        ...     check_json_files([train, test], ["text"], None)
        Traceback (most recent call last):
        ...
        datamodules.schema.DataError: .../test.jsonl, line 1, field 'label': a list (['pos']), \
but .../train.jsonl, line 1 has a string there; every file must give a column the same type ...
    """
    seen: Seen = {}
    known: set[str] = set()  # the first file's columns (only with ``columns=None``)
    # A number column whose values in the first file are all integers is read as integers, and
    # a later file's 0.5 then failed the cast ("Float value 0.5 was truncated"), naming no file.
    # integers: each number column's first integer in the first file; fractions: the columns
    # the first file gives a float. Known only when the first file is read whole (not with
    # ``sample_first``).
    integers: dict[str, _Place] = {}
    fractions: set[str] = set()
    for i, file in enumerate(files):
        for place, row in _json_rows(file):
            if i == 0 and sample_first and columns is not None and seen.keys() >= set(columns):
                break
            if columns is None and i == 0:
                known.update(row)
            elif columns is None:
                _no_new_columns(files[0], known, place, row)
            for column in row if columns is None else columns:
                value = row.get(column)
                if value is None and column in text_fields and column in row:
                    # Refused later anyway; here, because a text column null in every row of
                    # the first file makes `datasets` fail on the next file's strings with a
                    # cast error that names no line ("cast array of type string to null").
                    raise DataError(
                        f"{place}, field {column!r}: the text is missing (null). Fill it in or "
                        "remove the row (an empty string is allowed)."
                    )
                if value is None:
                    continue
                kind = _JSON_KINDS.get(type(value), "number")
                first = seen.get(column)
                if first is None or first[0] != kind:  # only then is the message worth writing
                    what = f"a {kind} ({value!r:.40})"
                    _check(seen, file, str(place), column, kind, what, text_fields)
                if kind != "number" or sample_first:
                    continue
                if i == 0:
                    if isinstance(value, float):
                        fractions.add(column)
                    else:
                        integers.setdefault(column, place)
                elif column in integers and column not in fractions and _fraction(value):
                    raise DataError(
                        f"{place}, field {column!r}: a number that is not whole ({value!r:.40}), "
                        f"but every {column!r} in {files[0]} is a whole number (the first: "
                        f"{integers[column].unit} {integers[column].number}), so the column "
                        "is read as whole numbers, which cannot hold it. Use class indices (or "
                        "class names) in every file, or fix the row."
                    )


def _fraction(value: float | int) -> bool:
    """Whether a JSON number is not whole (NaN and infinity included: no integer holds them)."""
    return isinstance(value, float) and not value.is_integer()


def check_parquet_files(
    files: Sequence[Path], text_fields: Sequence[str], columns: Sequence[str] | None
) -> None:
    """The same for Parquet files, from their schemas: a column's type is the file's."""
    seen: Seen = {}
    for file in files:
        try:
            schema = pq.read_schema(file)
        except Exception:
            diagnose(file, "parquet")  # says what is wrong with the file
            raise
        if columns is None:
            _no_new_columns(files[0], set(pq.read_schema(files[0]).names), file, schema.names)
        for field in schema:
            if columns is None or field.name in columns:
                kind = _arrow_kind(field.type)
                if kind is not None:
                    what = f"a {kind} column ({field.type})"
                    _check(seen, file, str(file), field.name, kind, what, text_fields)


def check_csv_files(files: Sequence[Path], sep: str, text_fields: Sequence[str]) -> None:
    """Name the first cell whose type (as pandas reads it) differs from the column's in an earlier
    file. Text columns are read as written, so only the others (the label) can differ."""
    reference: dict[str, tuple[str, Path, dict[str, tuple[int, str]]]] = {}
    known: set[str] = set()
    for i, file in enumerate(files):
        header, cells = _csv_cells(file, sep, set(text_fields))
        known = set(header) if i == 0 else known
        _no_new_columns(files[0], known, _Place(file, "line", 1), header)
        for column, firsts in cells.items():
            kind = next(iter(firsts)) if len(firsts) == 1 else "string"  # else pandas: object
            ref_kind, ref_file, ref_firsts = reference.setdefault(column, (kind, file, firsts))
            if kind == ref_kind:
                continue
            line, value = min(v for k, v in firsts.items() if k != ref_kind)
            ref_line, ref_value = ref_firsts.get(ref_kind) or min(ref_firsts.values())
            raise DataError(
                f"{file}, line {line}, field {column!r}: {value!r:.40} reads as a "
                f"{_cell_kind(value)}, but {ref_file}, line {ref_line} has a {ref_kind} there "
                f"({ref_value!r:.40}), and a CSV column gets one type for every file. Use the "
                "same kind of value in every file (class names everywhere, or class indices "
                "everywhere), or fix the rows."
            )


def _no_new_columns(first: Path, known: set[str], place: object, columns: Iterable[str]) -> None:
    new = [c for c in columns if c not in known]
    if new:
        raise DataError(
            f"{place}, field {new[0]!r}: a column that {first} does not have (it has "
            f"{sorted(known)!r:.200}), and every file is read with the first file's columns. "
            f"Remove the column here, or add it to {first.name} (null where it has no value)."
        )


def _check(
    seen: Seen, file: Path, place: str, column: str, kind: str, what: str, texts: Sequence[str]
) -> None:
    if column in texts and kind != "string":
        raise DataError(
            f"{place}, field {column!r}: {what} where a text belongs. Quote it, or fix the row."
        )
    first_kind, first_file, first_place = seen.setdefault(column, (kind, file, place))
    if kind == first_kind:
        return
    if first_file == file:
        line = first_place.removeprefix(f"{file}, ")
        raise DataError(
            f"{place}, field {column!r}: {what}, but {line} of {file.name} has a {first_kind}; "
            'a column needs one type. Quote the value to make it a string (e.g. "true"), or fix '
            "the row."
        )
    raise DataError(
        f"{place}, field {column!r}: {what}, but {first_place} has a {first_kind} there; "
        "every file must give a column the same type (they are read as one table). Make the "
        "values of one file like the other's (e.g. quote numbers to make them strings), or fix "
        "the rows."
    )


def _json_rows(file: Path) -> Iterator[tuple[_Place, dict[str, Any]]]:
    """Each row of a JSON Lines file (``file, line N``) or a ``.json`` array (``file, row N``)."""
    if is_json_document(file):
        rows = _parsed(file, b"".join(line for _, line in lines(file)))
        for i, row in enumerate(rows if isinstance(rows, list) else [], 1):
            if isinstance(row, dict):
                yield _Place(file, "row", i), row
        return
    for number, line in lines(file):
        row = _parsed(file, line) if line.strip() else None
        if isinstance(row, dict):
            yield _Place(file, "line", number), row


class _Place(NamedTuple):
    """Where a row is, written out only for a message (most rows never need it)."""

    file: Path
    unit: str
    number: int

    def __str__(self) -> str:
        return f"{self.file}, {self.unit} {self.number}"


def _parsed(file: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))  # decoded here: json's own detection is slower
    except ValueError:  # malformed JSON or invalid UTF-8: say where
        diagnose(file, "json")
        raise


def _arrow_kind(arrow_type: pa.DataType) -> str | None:
    checks = [
        (pa.types.is_null, None),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
        (pa.types.is_boolean, "boolean"),
        (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "number"),
        (pa.types.is_decimal, "number"),
        (lambda t: pa.types.is_list(t) or pa.types.is_large_list(t), "list"),
        (pa.types.is_fixed_size_list, "list"),
        (pa.types.is_struct, "object"),
    ]
    return next((kind for check, kind in checks if check(arrow_type)), str(arrow_type))


def _csv_cells(
    file: Path, sep: str, skip: set[str]
) -> tuple[list[str], dict[str, dict[str, tuple[int, str]]]]:
    """The header, and per column (not ``skip``) the first line and value of each kind of cell."""
    firsts: dict[str, dict[str, tuple[int, str]]] = {}
    with contextlib.closing(csv_rows(file, sep)) as rows:
        _, header = next(rows, (0, []))
        for line, record in rows:
            for column, cell in zip(header, record, strict=False):
                if column not in skip and cell != "":  # an empty cell is missing, not a type
                    firsts.setdefault(column, {}).setdefault(_cell_kind(cell), (line, cell))
    return header, firsts


def _cell_kind(cell: str) -> str:
    """What pandas makes of a cell: a number, a boolean, or a string.

    Example:
        >>> [_cell_kind(c) for c in ["1", "-2.5e3", "true", "pos", "1,5"]]
        ['number', 'number', 'boolean', 'string', 'string']
    """
    if cell in _TRUE_FALSE:
        return "boolean"
    try:
        float(cell)
    except ValueError:
        return "string"
    return "number"
