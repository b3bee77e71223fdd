"""``datasets.load_dataset`` with errors for people: bad files are named by line, offline by hint.

Loading is attempted first (fast path, no extra reading); only when ``datasets`` fails is a local
file scanned line by line to say exactly where it is broken (invalid UTF-8, malformed JSON, a
record with too many fields). Every error about the data is a ``DataError``. No source ever runs
code: dataset loading scripts are refused, and paths are only ever opened, never evaluated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import datasets

from datamodules.diagnosis import (
    check_csv_records,
    check_exists_and_not_empty,
    diagnose,
    lines,
    root_cause,
    separator,
    starts_with_bom,
)
from datamodules.schema import DataError

BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
_ONE_BLOCK_MAX = 64 << 20  # JSON files up to this size are parsed in one block (see below)
_JSON_KINDS = {str: "string", bool: "boolean", list: "list", dict: "object"}


def as_file_lists(data_files: dict[str, str | list[str]] | None) -> dict[str, list[str]]:
    files = data_files or {}
    return {split: [f] if isinstance(f, str) else list(f) for split, f in files.items()}


def builder_for(files: list[str]) -> str:
    """The ``datasets`` builder (``csv``/``json``/``parquet``/``text``) for files' extensions.

    Example:
        >>> builder_for(["a.jsonl.gz", "b.json"]), builder_for(["x.tsv"])
        ('json', 'csv')
    """
    found = set()
    for file in files:
        suffixes = [s.lower() for s in Path(file).suffixes if s.lower() != ".gz"]
        builder = BUILDERS.get(suffixes[-1] if suffixes else "")
        if builder is None:
            raise DataError(
                f"cannot tell the format of {file} from its extension; use one of "
                f"{sorted(BUILDERS)} (optionally .gz) or set `path` to csv/json/parquet/text."
            )
        found.add(builder)
    if len(found) != 1:
        raise DataError(f"data files mix formats {sorted(found)}: {files}; use one format.")
    return found.pop()


def load_local_files(
    data_files: dict[str, list[str]],
    builder: str | None = None,
    cache_dir: str | None = None,
    text_fields: Sequence[str] = (),
    label_field: str | None = None,
) -> datasets.DatasetDict:
    """Load local ``data_files``; raise a DataError naming the bad file and line.

    ``builder`` (``csv``/``json``/``parquet``/``text``) applies to every file; by default each
    split's format comes from its extensions, so ``train.jsonl`` and ``predict.txt`` mix.
    ``text_fields`` and ``label_field`` tell the CSV reader which columns are text (read as
    written, even "NA" or "1") and which one may be missing (an empty cell).
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for split, files in data_files.items():
        groups.setdefault(builder or builder_for(files), {})[split] = files
    loaded = {}
    for name, files in groups.items():
        paths = [Path(f) for fs in files.values() for f in fs]
        for path in paths:
            check_exists_and_not_empty(path)
        options = _reader_options(name, paths, text_fields, label_field)
        group = _load_group(name, files, cache_dir, options)
        if name == "json":
            _check_json_types(group, files, text_fields, label_field)
        loaded.update(group)
    return datasets.DatasetDict({split: loaded[split] for split in data_files})


def _reader_options(
    builder: str, files: list[Path], text_fields: Sequence[str], label_field: str | None
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if builder in ("csv", "json", "text") and any(starts_with_bom(f) for f in files):
        options["encoding"] = "utf-8-sig"  # else the BOM sticks to the first column name / value
    if builder == "json":
        options["chunksize"] = _one_block_chunksize(files)
    if builder == "csv":
        if all(separator(f) == "\t" for f in files):
            options["sep"] = "\t"
        # pandas reads "NA", "null", "None", "nan" and empty cells as missing, and a column of
        # digits as numbers: a review "NA" was refused, a text "1" became the int 1. Only an
        # empty *label* cell is missing; an empty text cell is the empty text.
        options["keep_default_na"] = False
        options["na_values"] = {label_field: [""]} if label_field else {}
        options["converters"] = dict.fromkeys(text_fields, str)
    return options


def _one_block_chunksize(files: list[Path]) -> int:
    """A ``chunksize`` that has ``datasets`` parse each JSON file as one pyarrow block.

    pyarrow 26 crashes the process (a segfault, no message) when a line that straddles two
    parse blocks changes a column's type: two 250 KB lines, the label ``1.5`` then ``true``,
    in the 320 KB blocks ``datasets`` uses (``chunksize / 32``). With one block per file
    nothing straddles. Files too big to read whole keep the default (10 MB chunks).
    """
    largest = max(_uncompressed_size(f) for f in files)
    return 32 * (largest + 1) if largest <= _ONE_BLOCK_MAX else 10 << 20


def _uncompressed_size(file: Path) -> int:
    size = file.stat().st_size
    if file.suffix.lower() != ".gz" or size > _ONE_BLOCK_MAX:
        return size
    with open(file, "rb") as f:  # gzip ends with the uncompressed size (mod 2**32)
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _load_group(
    builder: str, data_files: dict[str, list[str]], cache_dir: str | None, options: dict
) -> datasets.DatasetDict:
    files = [f for fs in data_files.values() for f in fs]
    if builder == "csv":
        for file in files:  # pandas would silently take an extra first field as the row index
            check_csv_records(Path(file), limit=1)
    try:
        return datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, **options)
    except Exception as err:
        for file in files:
            diagnose(Path(file), builder)
        raise DataError(f"could not read {files} as {builder}: {root_cause(err)}") from err


def _check_json_types(
    loaded: datasets.DatasetDict,
    data_files: dict[str, list[str]],
    text_fields: Sequence[str],
    label_field: str | None,
) -> None:
    """Refuse a used JSON column of mixed types, naming the line where the type changes.

    ``datasets`` stores such a column as JSON text and decodes it again, so a text ``"true"``
    came back as ``True``, ``"1"`` as ``1`` and ``"null"`` as ``None``, and the error then
    named the wrong row. A column only one file reads is left alone.
    """
    for split, ds in loaded.items():
        for column in [*text_fields, *([label_field] if label_field else [])]:
            if column in ds.features and type(ds.features[column]).__name__ == "Json":
                _raise_at_type_change([Path(f) for f in data_files[split]], column, text_fields)


def _raise_at_type_change(files: list[Path], column: str, text_fields: Sequence[str]) -> None:
    first: tuple[str, str] | None = None  # the column's type, and where it was first seen
    for file in files:
        for number, line in lines(file):
            row = json.loads(line) if line.strip() else {}
            value = row.get(column) if isinstance(row, dict) else None
            kind = _JSON_KINDS.get(type(value), "number")
            where = f"{file}, line {number}, field {column!r}: a {kind} ({value!r:.40})"
            if value is None or (first is not None and kind == first[0]):
                continue
            if column in text_fields and kind != "string":
                raise DataError(f"{where} where a text belongs. Quote it, or fix the row.")
            if first is not None:
                raise DataError(
                    f"{where}, but {first[1]} has a {first[0]}; a column needs one type. "
                    'Quote the value to make it a string (e.g. "true"), or fix the row.'
                )
            first = (kind, f"line {number} of {file.name}")
    raise DataError(f"{files}: column {column!r} mixes types; give every row the same type.")


def load_hub_or_folder(
    path: str, name: str | None, revision: str | None, cache_dir: str | None = None
) -> datasets.DatasetDict:
    """Load a hub dataset or a local folder in the hub layout; offline without cache → hint.

    Give a local folder its own ``cache_dir`` (keyed by its contents): with
    ``HF_DATASETS_OFFLINE=1``, ``datasets`` otherwise serves *any* cached dataset of the same
    folder name (a fixture ``imdb/`` came back as the full IMDB copy cached earlier). A loading
    script is refused here, whatever the ``datasets`` version: no data source runs code.
    """
    _refuse_loading_script(Path(path).expanduser())
    try:
        # `datasets` reads HF_DATASETS_OFFLINE once, at import; honour a later setting too, so
        # offline means no network attempts (and no retry loop) whenever it is asked for.
        with mock.patch.object(datasets.config, "HF_HUB_OFFLINE", _offline_requested()):
            return datasets.load_dataset(path, name, revision=revision, cache_dir=cache_dir)
    except Exception as err:
        if Path(path).expanduser().exists():
            cause = root_cause(err)
            raise DataError(f"could not load the local dataset {path}: {cause}") from err
        raise ConnectionError(
            f"could not fetch the dataset {path!r} (config {name!r}, revision {revision!r}) from "
            f"the Hugging Face Hub ({root_cause(err)}). Without network access either "
            f"(a) use a pre-filled cache: download it once where the hub is reachable with the "
            f"same HF_HOME, then run with HF_DATASETS_OFFLINE=1 HF_HOME=<that folder>; or "
            f"(b) point the module at local files: `--data.path <folder in the hub layout>` or "
            f"`--data.path json --data.data_files.train <file>` (csv/json/parquet)."
        ) from err


def _refuse_loading_script(path: Path) -> None:
    # The names `datasets` would treat as a script: `x.py` itself, or `<folder>/<folder>.py`.
    script = path if path.suffix == ".py" else path / f"{path.name}.py"
    if script.is_file():
        raise DataError(
            f"{path}: {script.name} is a dataset loading script, and lit-seqcls never runs code "
            "from a data source. Convert the data to Parquet, JSON Lines or CSV files (in the "
            "folder's hub layout, or named with `data_files`)."
        )


def _offline_requested() -> bool:
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return bool(datasets.config.HF_HUB_OFFLINE)
