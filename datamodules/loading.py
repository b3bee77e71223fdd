"""``datasets.load_dataset`` with errors for people: bad files are named by line, offline by hint.

Loading is attempted first (fast path, no extra reading); only when ``datasets`` fails is a local
file scanned line by line to say exactly where it is broken (invalid UTF-8, malformed JSON).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import datasets

BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
_BOM = b"\xef\xbb\xbf"


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
            raise ValueError(
                f"cannot tell the format of {file} from its extension; use one of "
                f"{sorted(BUILDERS)} (optionally .gz) or set `path` to csv/json/parquet/text."
            )
        found.add(builder)
    if len(found) != 1:
        raise ValueError(f"data files mix formats {sorted(found)}: {files}; use one format.")
    return found.pop()


def load_local_files(
    data_files: dict[str, list[str]], builder: str | None = None, cache_dir: str | None = None
) -> datasets.DatasetDict:
    """Load local ``data_files``; raise a ValueError naming the bad file and line.

    ``builder`` (``csv``/``json``/``parquet``/``text``) applies to every file; by default each
    split's format comes from its extensions, so ``train.jsonl`` and ``predict.txt`` mix.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for split, files in data_files.items():
        groups.setdefault(builder or builder_for(files), {})[split] = files
    loaded = {}
    for name, files in groups.items():
        loaded.update(_load_group(name, files, cache_dir))
    return datasets.DatasetDict({split: loaded[split] for split in data_files})


def _load_group(
    builder: str, data_files: dict[str, list[str]], cache_dir: str | None
) -> datasets.DatasetDict:
    files = [f for fs in data_files.values() for f in fs]
    for file in files:
        _check_exists_and_not_empty(Path(file))
    kwargs = {}
    if builder in ("csv", "json", "text") and any(_starts_with_bom(Path(f)) for f in files):
        kwargs["encoding"] = "utf-8-sig"  # else the BOM sticks to the first column name / value
    if builder == "csv" and all(".tsv" in Path(f).suffixes for f in files):
        kwargs["sep"] = "\t"
    try:
        return datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, **kwargs)
    except Exception as err:
        for file in files:
            diagnose(Path(file), builder)
        raise ValueError(f"could not read {files} as {builder}: {_root_cause(err)}") from err


def load_hub_or_folder(
    path: str, name: str | None, revision: str | None, cache_dir: str | None = None
) -> datasets.DatasetDict:
    """Load a hub dataset or a local folder in the hub layout; offline without cache → hint.

    Give a local folder its own ``cache_dir`` (keyed by its contents): with
    ``HF_DATASETS_OFFLINE=1``, ``datasets`` otherwise serves *any* cached dataset of the same
    folder name (a fixture ``imdb/`` came back as the full IMDB copy cached earlier).
    """
    try:
        # `datasets` reads HF_DATASETS_OFFLINE once, at import; honour a later setting too, so
        # offline means no network attempts (and no retry loop) whenever it is asked for.
        with mock.patch.object(datasets.config, "HF_HUB_OFFLINE", _offline_requested()):
            return datasets.load_dataset(path, name, revision=revision, cache_dir=cache_dir)
    except Exception as err:
        if Path(path).expanduser().exists():
            cause = _root_cause(err)
            raise ValueError(f"could not load the local dataset {path}: {cause}") from err
        raise ConnectionError(
            f"could not fetch the dataset {path!r} (config {name!r}, revision {revision!r}) from "
            f"the Hugging Face Hub ({_root_cause(err)}). Without network access either "
            f"(a) use a pre-filled cache: download it once where the hub is reachable with the "
            f"same HF_HOME, then run with HF_DATASETS_OFFLINE=1 HF_HOME=<that folder>; or "
            f"(b) point the module at local files: `--data.path <folder in the hub layout>` or "
            f"`--data.path json --data.data_files.train <file>` (csv/json/parquet)."
        ) from err


def _offline_requested() -> bool:
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return bool(datasets.config.HF_HUB_OFFLINE)


def diagnose(file: Path, builder: str | None = None) -> None:
    """Raise a ValueError for the first invalid UTF-8 or malformed JSON line of ``file``."""
    builder = builder or builder_for([str(file)])
    if builder == "parquet":
        return
    for number, line in _lines(file):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{file}, line {number}: invalid UTF-8 at byte {err.start} of the line "
                f"({line[max(0, err.start - 10) : err.start + 10]!r}). Re-save the file as "
                "UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)."
            ) from None
        if builder == "json" and text.strip() and not _is_json_document(file):
            try:
                json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{file}, line {number}: malformed JSON ({err.msg} at column {err.colno}). "
                    "Each line must be one JSON object, e.g. "
                    '{"text": "...", "label": "..."}; fix or remove that line.'
                ) from None


def _check_exists_and_not_empty(file: Path) -> None:
    if not file.is_file():
        raise FileNotFoundError(f"data file {file} does not exist; check `data_files`.")
    with _open(file) as f:
        head = f.read(4096)
    if not head.replace(_BOM, b"").strip():
        raise ValueError(
            f"data file {file} is empty (no rows). Fill it, or leave it out of `data_files`."
        )


def _starts_with_bom(file: Path) -> bool:
    with _open(file) as f:
        return f.read(3) == _BOM


def _is_json_document(file: Path) -> bool:
    # A `.json` file may hold one JSON array/object over many lines rather than JSON Lines.
    with _open(file) as f:
        return f.read(64).replace(_BOM, b"").lstrip().startswith(b"[")


def _lines(file: Path) -> Iterator[tuple[int, bytes]]:
    with _open(file) as f:
        for number, line in enumerate(f, start=1):
            yield number, line.removeprefix(_BOM) if number == 1 else line


def _open(file: Path):
    return gzip.open(file, "rb") if file.suffix == ".gz" else open(file, "rb")


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"
