"""``datasets.load_dataset`` with errors for people: bad files are named by line, offline by hint.

Loading is attempted first (fast path, no extra reading); only when ``datasets`` fails is a local
file scanned line by line to say exactly where it is broken (invalid UTF-8, malformed JSON, a
record with too many fields). Every error about the data is a ``DataError``. No source ever runs
code: dataset loading scripts are refused, and paths are only ever opened, never evaluated.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from datamodules.column_types import check_csv_files, check_json_files, check_parquet_files
from datamodules.datasets_internals import (
    hub_offline,
    hub_offline_default,
    json_chunksize_for_one_block,
)
from datamodules.diagnosis import (
    SEPARATORS,
    check_csv_records,
    check_exists_and_not_empty,
    diagnose,
    header_line,
    root_cause,
    separator,
    starts_with_bom,
)
from datamodules.schema import DataError
from lit_seqcls.validation import ConfigValueError

BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
_ONE_BLOCK_MAX = 64 << 20  # JSON files up to this size are parsed in one block (see below)


def as_file_lists(data_files: dict[str, str | list[str]] | None) -> dict[str, list[str]]:
    files = data_files or {}
    return {split: [f] if isinstance(f, str) else list(f) for split, f in files.items()}


def check_delimiter(delimiter: str | None) -> str | None:
    r"""A CSV separator as given (``None``: read from each header); ``\t`` as typed on a command
    line (a backslash and a t) means a tab.

    Example:
        >>> check_delimiter(";"), check_delimiter("\\t"), check_delimiter(None)
        (';', '\t', None)
        >>> check_delimiter(";;")
        Traceback (most recent call last):
        ...
        lit_seqcls.validation.ConfigValueError: delimiter must be one character ...
    """
    if delimiter is None:
        return None
    delimiter = "\t" if delimiter == "\\t" else delimiter
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ConfigValueError(
            "delimiter must be one character other than a quote or a newline, such as ',', "
            f"';', '|' or '\\t' (a tab), got {delimiter!r}"
        )
    return delimiter


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
    delimiter: str | None = None,
) -> datasets.DatasetDict:
    """Load local ``data_files``; raise a DataError naming the bad file and line.

    ``builder`` (``csv``/``json``/``parquet``/``text``) applies to every file; by default each
    split's format comes from its extensions, so ``train.jsonl`` and ``predict.txt`` mix.
    ``text_fields`` and ``label_field`` tell the CSV reader which columns are text (read as
    written, even "NA" or "1") and which one may be missing (an empty cell). ``delimiter``
    separates CSV fields; by default each file's header line says (``diagnosis.separator``).
    """
    kinds = {split: builder or builder_for(files) for split, files in data_files.items()}
    for path in (Path(f) for fs in data_files.values() for f in fs):
        check_exists_and_not_empty(path)
    used = [*text_fields, *([label_field] if label_field else [])]
    groups: dict[tuple[str, str | None], dict[str, list[str]]] = {}  # (builder, CSV separator)
    for split, files in data_files.items():
        sep = _csv_separator(split, files, delimiter, used) if kinds[split] == "csv" else None
        groups.setdefault((kinds[split], sep), {})[split] = files
    loaded = {}
    for (name, sep), files in groups.items():
        paths = [Path(f) for fs in files.values() for f in fs]
        if len(paths) > 1 and name == "json":  # files must agree on column types
            check_json_files(paths, text_fields, used, sample_first=True)
        if len(paths) > 1 and name == "parquet":
            check_parquet_files(paths, text_fields, used)
        options = _reader_options(name, paths, text_fields, label_field, sep)
        group = _load_group(name, files, cache_dir, options, text_fields)
        if name == "json":
            _check_json_types(group, files, text_fields, used)
        loaded.update(group)
    return datasets.DatasetDict({split: loaded[split] for split in data_files})


def _csv_separator(split: str, files: list[str], delimiter: str | None, used: Sequence[str]) -> str:
    """The separator of a split's CSV files: ``delimiter``, or the one their headers share."""
    seps = {f: separator(Path(f), delimiter) for f in files}
    if len(set(seps.values())) > 1:
        found = ", ".join(f"{f}: {s!r}" for f, s in seps.items())
        raise DataError(
            f"the files of split {split!r} are separated differently ({found}); save them with "
            "one separator, or set it with --data.init_args.delimiter."
        )
    for file, sep in seps.items():
        _check_header(Path(file), sep, used)
    return next(iter(seps.values()))


def _check_header(file: Path, sep: str, used: Sequence[str]) -> None:
    """A header read as one column that holds another separator: say which one to pass."""
    header = next(csv.reader([header_line(file)], delimiter=sep), [])
    others = [s for s in SEPARATORS if s != sep and len(header) == 1 and s in header[0]]
    if others and header[0] not in used:
        other = max(others, key=header[0].count)
        raise DataError(
            f"{file}, line 1: the header {header[0]!r:.80} is one column, not separated by "
            f"{sep!r}; it looks {other!r}-separated: pass --data.init_args.delimiter {other!r} "
            f"(`delimiter: {other!r}` under `data.init_args` in a config)."
        )


def _reader_options(
    builder: str,
    files: list[Path],
    text_fields: Sequence[str],
    label_field: str | None,
    sep: str | None,
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if builder in ("csv", "json", "text") and any(starts_with_bom(f) for f in files):
        options["encoding"] = "utf-8-sig"  # else the BOM sticks to the first column name / value
    if builder == "json":
        options["chunksize"] = _one_block_chunksize(files)
    if builder == "csv":
        if sep != ",":
            options["sep"] = sep
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
    in the 320 KB blocks ``datasets`` uses (``chunksize / 32``, fenced in
    ``datasets_internals``). With one block per file nothing straddles. Files too big to read
    whole keep the default (10 MB chunks).
    """
    largest = max(_uncompressed_size(f) for f in files)
    return json_chunksize_for_one_block(largest) if largest <= _ONE_BLOCK_MAX else 10 << 20


def _uncompressed_size(file: Path) -> int:
    size = file.stat().st_size
    if file.suffix.lower() != ".gz" or size > _ONE_BLOCK_MAX:
        return size
    with open(file, "rb") as f:  # gzip ends with the uncompressed size (mod 2**32)
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _load_group(
    builder: str,
    data_files: dict[str, list[str]],
    cache_dir: str | None,
    options: dict,
    text_fields: Sequence[str],
) -> datasets.DatasetDict:
    files = [Path(f) for fs in data_files.values() for f in fs]
    sep = options.get("sep", ",")
    if builder == "csv":
        for file in files:  # pandas would silently take an extra first field as the row index
            check_csv_records(file, limit=1, sep=sep)
    try:
        return datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, **options)
    except Exception as err:
        for file in files:
            diagnose(file, builder, sep)
        if len(files) > 1:  # a cast to the first file's column types failed: say where
            _EXPLAIN_FAILURE.get(builder, lambda *_: None)(files, text_fields, sep)
        names = [str(f) for f in files]
        raise DataError(f"could not read {names} as {builder}: {root_cause(err)}") from err


_EXPLAIN_FAILURE = {
    "json": lambda files, texts, _: check_json_files(files, texts, None),
    "parquet": lambda files, texts, _: check_parquet_files(files, texts, None),
    "csv": lambda files, texts, sep: check_csv_files(files, sep, texts),
}


def _check_json_types(
    loaded: datasets.DatasetDict,
    data_files: dict[str, list[str]],
    text_fields: Sequence[str],
    used: Sequence[str],
) -> None:
    """Refuse a used JSON column of mixed types, naming the line where the type changes.

    ``datasets`` stores such a column as JSON text and decodes it again, so a text ``"true"``
    came back as ``True``, ``"1"`` as ``1`` and ``"null"`` as ``None``, and the error then
    named the wrong row. A column only one file reads is left alone.
    """
    for split, ds in loaded.items():
        for column in used:
            if column in ds.features and isinstance(ds.features[column], datasets.Json):
                files = [Path(f) for f in data_files[split]]
                check_json_files(files, text_fields, [column])
                raise DataError(f"{files}: column {column!r} mixes types; give every row one type.")


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
        with hub_offline(_offline_requested()):
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
    return hub_offline_default()
