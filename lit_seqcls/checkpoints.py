"""Reading a checkpoint: the one way lit-seqcls loads one, safe for files from anywhere.

``load_checkpoint`` is ``torch.load(weights_only=True)`` always, with the zip checksums verified
(``torch.load`` does not notice flipped bytes inside a tensor), and a truncated, corrupted or
pickled-object file turned into a ``CheckpointError`` naming the file and saying what to do.
``checkpoint_problem`` is the same check as a value, for choosing among files. The model, the
DataModules, the callbacks and the runtime's ``AtomicCheckpointIO`` all read through it.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lit_seqcls.errors import UserError, first_line

# The checkpoint key under which the model keeps its DataModule's text pipeline (plain data).
TEXT_PIPELINE_KEY = "text_pipeline"
# Its version, which every reader (predict's DataModule, export) checks: 2 added
# `truncation_side` (version 1 always kept a text's first tokens) and `task`.
TEXT_PIPELINE_VERSION = 2


class CheckpointError(ValueError, UserError):
    """A checkpoint that cannot be used: truncated, corrupted, not plain data, or non-finite.

    ``reason`` is the short why (``"truncated or corrupted (...)"``) without the advice.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def load_checkpoint(
    path: str | Path, map_location: Any = "cpu", mmap: bool = False, checksums: bool = True
) -> dict:
    """``torch.load(path, weights_only=True)`` with checksums verified and errors for people.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated or corrupted, holds a pickled Python object, or
            is not a checkpoint dictionary.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "cut.ckpt"
        >>> torch.save({"state_dict": {"w": torch.ones(3)}}, path)
        >>> _ = path.write_bytes(path.read_bytes()[:100])  # cut short, as by a kill
        >>> load_checkpoint(path)
        Traceback (most recent call last):
        ...
        lit_seqcls.checkpoints.CheckpointError: Checkpoint .../cut.ckpt is truncated or ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    damage = _zip_damage(path) if checksums else None
    if damage is not None:
        raise _corrupted(path, damage)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch raises UnpicklingError both for a damaged pickle and for a global it will not
        # load; which one it was comes from torch's public scanner, not from its wording.
        code = _pickled_globals(path)
        if not code:
            raise _corrupted(path, first_line(err)) from None
        reason = f"holds pickled Python code or objects ({', '.join(code[:3])})"
        raise CheckpointError(
            f"Checkpoint {path} {reason}, not only tensors and plain data, so it was not "
            "loaded: unpickling it would run code chosen by whoever made the file. Do not trust "
            "its source. If you made it yourself, convert it once in Python: `ckpt = "
            f"torch.load({str(path)!r}, weights_only=False)`, replace the object by plain data "
            "(str, numbers, lists, dicts, tensors) and `torch.save(ckpt, new_path)`.",
            reason,
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        raise _corrupted(path, first_line(err)) from err
    if not isinstance(checkpoint, dict):
        reason = f"holds a {type(checkpoint).__name__}, not a checkpoint dictionary"
        raise CheckpointError(
            f"{path} {reason}; give a .ckpt file written by `lit-seqcls fit` or "
            "`Trainer.save_checkpoint`.",
            reason,
        )
    return checkpoint


def checkpoint_problem(path: str | Path, checksums: bool = True) -> str | None:
    """Why ``path`` cannot be loaded (a short reason), or ``None`` if it can.

    ``checksums=False`` skips the CRC of every entry: right after writing a file, it would only
    compare the bytes this process wrote with themselves (benchmarks/checkpoint_check.py).
    """
    try:
        # mmap: tensors are mapped, not read (the checksums, when asked for, read every byte)
        load_checkpoint(path, mmap=True, checksums=checksums)
    except CheckpointError as err:
        return err.reason
    except FileNotFoundError as err:
        return str(err)
    return None


def _pickled_globals(path: Path) -> list[str]:
    """Globals in ``path``'s pickle that ``weights_only`` loading refuses (``[]``: none/unknown)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # a pickle too damaged to scan holds no code we could name
        return []


def _zip_damage(path: Path) -> str | None:
    """What is wrong with ``path`` as a zip archive (``torch.save``'s format), or ``None``."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every entry and compares its CRC-32
    except zipfile.BadZipFile:
        return "no zip directory at its end: the file was cut short or is not a checkpoint"
    except (OSError, EOFError, ValueError, RuntimeError) as err:  # zlib/struct errors
        return first_line(err)
    return None if bad is None else f"entry {bad} fails its checksum"


def _corrupted(path: Path, detail: str) -> CheckpointError:
    reason = f"is truncated or corrupted ({detail})"
    return CheckpointError(
        f"Checkpoint {path} {reason}, so it cannot be loaded; a crash or a full disk while it "
        "was written can do this. Resume from an earlier checkpoint, or pass `--ckpt_path auto` "
        "to use the newest checkpoint that loads.",
        reason,
    )
