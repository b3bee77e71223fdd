"""May we write here? The one place that decides, so nothing we write destroys a user's file.

Three rules, checked before any work is done:

- an output is never one of the run's inputs (the same file by path, symlink or hard link);
- an existing file is replaced only if it is one we wrote before (``looks_like_ours``), or the
  user says ``overwrite``;
- an existing non-empty folder is written into only if it holds an earlier output of ours.

And what we write is safe to open: ``spreadsheet_safe`` keeps a class name or a text such as
``=HYPERLINK(...)`` from running as a formula when a CSV file is opened in a spreadsheet.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lit_seqcls.errors import UserError

# OWASP "CSV injection": a cell starting with one of these is read as a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FIRST_LINE_LIMIT = 16 << 20  # bytes of a first line read to recognise a file (a row + its text)


class OutputFileError(ValueError, UserError):
    """An output path that would destroy a user's file; the message names it and what to do."""


def check_output_file(
    path: str | Path,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
    looks_like_ours: Callable[[Path], bool] | None = None,
    *,
    option: str = "the output",
    overwrite_option: str = "overwrite=True",
    kind: str = "output",
    extension: str | None = None,
) -> None:
    """Raise ``OutputFileError`` unless writing ``path`` is safe.

    Args:
        path: the file about to be written (need not exist).
        inputs: the files this run reads; ``path`` may never be one of them, even with
            ``overwrite`` (compared after resolving symlinks and ``..``, and by inode).
        overwrite: replace an existing file that ``looks_like_ours`` does not recognise.
        looks_like_ours: whether an existing file is an earlier output of ours (then it may be
            replaced); ``None``: none is.
        option: how the user names the output, for the message (``--predictions.output``).
        overwrite_option: how the user allows replacing a file (``--predictions.overwrite true``).
        kind: what we write there, for the message (``predictions``); the other name it
            suggests is ``<stem>-<kind><extension>`` next to ``path``.
        extension: of that suggested name; default ``path``'s own.

    Example:
        >>> import tempfile
        >>> data = Path(tempfile.mkdtemp()) / "customers.csv"
        >>> _ = data.write_text("id,text\\n1,hello\\n")
        >>> check_output_file(data.with_name("predictions.jsonl"), inputs=[data])  # a new file
        >>> check_output_file(data, inputs=[data])
        Traceback (most recent call last):
        ...
        lit_seqcls.runtime.outputs.OutputFileError: ...customers.csv is one of this run's input ...
    """
    path = Path(path).expanduser()
    other = _fresh_sibling(path, kind, path.suffix if extension is None else extension)
    for source in inputs:
        if _same_file(path, Path(source).expanduser()):
            raise OutputFileError(
                f"{option} {path} is one of this run's input files ({source}); writing there "
                f"would replace your data. Write elsewhere, e.g. {option} {other}."
            )
    if path.is_dir():
        raise OutputFileError(
            f"{option} {path} is a folder; give a file name, e.g. {option} {path / 'out.jsonl'}."
        )
    if not path.exists() or overwrite or path.stat().st_size == 0:
        return
    if looks_like_ours is not None and looks_like_ours(path):
        return
    raise OutputFileError(
        f"{option} {path} already exists and is not an earlier lit-seqcls {kind} file, so "
        f"writing there would destroy it. Write elsewhere, e.g. {option} {other}, or pass "
        f"{overwrite_option} to replace it."
    )


def check_output_dir(
    path: str | Path,
    overwrite: bool = False,
    looks_like_ours: Callable[[Path], bool] | None = None,
    *,
    option: str = "the output folder",
    overwrite_option: str = "--overwrite",
) -> None:
    """Raise ``OutputFileError`` unless writing into the folder ``path`` is safe.

    A missing or empty folder is safe; so is one that ``looks_like_ours`` recognises (an earlier
    run of the same command, which the new one updates), or any folder with ``overwrite``.

    Example:
        >>> import tempfile
        >>> home = Path(tempfile.mkdtemp())
        >>> check_output_dir(home / "new")  # does not exist yet
        >>> _ = (home / "thesis.tex").write_text("...")
        >>> check_output_dir(home, option="--output_dir")
        Traceback (most recent call last):
        ...
        lit_seqcls.runtime.outputs.OutputFileError: --output_dir ... is a folder that already ...
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputFileError(
            f"{option} {path} is a file, not a folder; name a new folder, e.g. {option} "
            f"{_fresh_sibling(path, 'new', '')}."
        )
    if not path.is_dir() or overwrite or not any(path.iterdir()):
        return
    if looks_like_ours is not None and looks_like_ours(path):
        return
    raise OutputFileError(
        f"{option} {path} is a folder that already holds other files (not an earlier output of "
        f"this command), which writing there could replace. Name a new folder, e.g. {option} "
        f"{_fresh_sibling(path, 'new', '')}, or pass {overwrite_option} to write into it anyway."
    )


def first_line_is_json_with(path: Path, keys: Iterable[str]) -> bool:
    """Whether ``path``'s first line is a JSON object with every one of ``keys``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "p.jsonl"
        >>> _ = path.write_text('{"index": 0, "probs": {"a": 1.0}}\\n')
        >>> first_line_is_json_with(path, ["index", "probs"])
        True
        >>> _ = path.write_text("index,probs\\n0,1\\n")
        >>> first_line_is_json_with(path, ["index", "probs"])
        False
    """
    try:
        with path.open("rb") as f:
            line = f.readline(_FIRST_LINE_LIMIT)
        row = json.loads(line)
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON, or a longer first line
        return False
    return isinstance(row, dict) and all(key in row for key in keys)


def spreadsheet_safe(cell: Any) -> Any:
    """``cell`` for a CSV file: text that a spreadsheet would run as a formula gets a ``'`` first.

    Only strings change (OWASP's advice for CSV injection); numbers stay numbers, so ``-0.5``
    written as a float is still a number. A program reading the CSV sees the ``'``.

    Example:
        >>> [spreadsheet_safe(c) for c in ["=1+1", "@SUM(A1)", "-x", "pos", -0.5, 3]]
        ["'=1+1", "'@SUM(A1)", "'-x", 'pos', -0.5, 3]
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():  # symlinks, `..` and relative paths
        return True
    try:
        return os.path.samefile(a, b)  # hard links (both must exist)
    except (OSError, ValueError):
        return False


def _fresh_sibling(path: Path, tag: str, extension: str) -> Path:
    """A name next to ``path`` that is free: ``customers.csv`` → ``customers-predictions.jsonl``."""
    stem = path.name.split(".")[0] or "output"
    for n in range(1, 100):
        candidate = path.with_name(f"{stem}-{tag}{'' if n == 1 else n}{extension}")
        if not candidate.exists():
            return candidate
    return candidate
