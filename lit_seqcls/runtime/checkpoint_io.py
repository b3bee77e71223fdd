"""Checkpoints that are written atomically, hold plain data only and load with ``weights_only``.

``AtomicCheckpointIO`` is the Lightning ``CheckpointIO`` plugin the CLI gives every trainer. It
writes through ``lit_seqcls.atomic.atomic_write`` (a kill never leaves half a checkpoint), and
before a new file replaces the old one it checks that the file loads with
``torch.load(weights_only=True)``, that the weights are finite and that no secret from the
environment is inside; otherwise the old file stays and a ``CheckpointError`` says why.

``load_checkpoint`` is the one way lit-seqcls reads a checkpoint: ``weights_only=True`` always,
the zip checksums verified (``torch.load`` does not notice flipped bytes inside a tensor), and a
truncated, corrupted or pickled-object file turned into a ``CheckpointError`` naming the file and
saying what to do. ``checkpoint_problem`` is the same check as a value, for choosing among files.
"""

from __future__ import annotations

import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_seqcls.atomic import atomic_write
from lit_seqcls.env_secrets import SecretInConfigError, find_secrets, secrets_message
from lit_seqcls.errors import UserError

_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.Size)
_PLAIN += (torch.dtype, torch.device)


class CheckpointError(ValueError, UserError):
    """A checkpoint that cannot be used: truncated, corrupted, not plain data, or non-finite.

    ``reason`` is the short why (``"truncated or corrupted (...)"``) without the advice.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
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
        lit_seqcls.checkpoint_io.CheckpointError: Checkpoint .../cut.ckpt is truncated or ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    damage = _zip_damage(path)
    if damage is not None:
        raise _corrupted(path, damage)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch raises UnpicklingError both for a damaged pickle and for a global it will not
        # load; which one it was comes from torch's public scanner, not from its wording.
        code = _pickled_globals(path)
        if not code:
            raise _corrupted(path, _first_line(err)) from None
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
        raise _corrupted(path, _first_line(err)) from err
    if not isinstance(checkpoint, dict):
        reason = f"holds a {type(checkpoint).__name__}, not a checkpoint dictionary"
        raise CheckpointError(
            f"{path} {reason}; give a .ckpt file written by `lit-seqcls fit` or "
            "`Trainer.save_checkpoint`.",
            reason,
        )
    return checkpoint


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be loaded (a short reason), or ``None`` if it can."""
    try:
        load_checkpoint(path, mmap=True)  # mmap: tensors are mapped, not read (checksums were)
    except CheckpointError as err:
        return err.reason
    except FileNotFoundError as err:
        return str(err)
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that never leaves a truncated file and refuses unsafe checkpoints.

    Saving writes a temporary file in the checkpoint's directory, checks it loads with
    ``weights_only=True``, then renames it over the old file: a kill at any moment leaves the
    old checkpoint or the new one. A checkpoint whose weights hold NaN/inf, that holds a Python
    object other than tensors and plain data, or that holds a secret from the environment is not
    written (``CheckpointError``; the previous file stays). Loading is ``load_checkpoint``:
    ``weights_only=True`` always, whatever the caller asks for.

    Args:
        check_finite: refuse to write a checkpoint whose ``state_dict`` holds NaN or inf.

    Example:
        >>> import tempfile
        >>> io, path = AtomicCheckpointIO(), Path(tempfile.mkdtemp()) / "a.ckpt"
        >>> io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
        >>> io.load_checkpoint(path)["state_dict"]["w"]
        tensor([1., 1.])
        >>> io.save_checkpoint({"state_dict": {"w": torch.tensor([float("nan")])}}, path)
        Traceback (most recent call last):
        ...
        lit_seqcls.checkpoint_io.CheckpointError: Refusing to write ...: the weights hold NaN ...
    """

    def __init__(self, check_finite: bool = True) -> None:
        super().__init__()
        self.check_finite = check_finite

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        self._refuse_unsafe(checkpoint, path)
        if not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path)  # object stores: their own transactions
            return
        try:
            with atomic_write(path) as f:
                torch.save(checkpoint, f)
                f.flush()
                self._check_written(checkpoint, path, f.name)
        except (OSError, RuntimeError) as err:  # full disk, read-only folder, quota
            # (torch.save reports a failed write as a RuntimeError from its zip writer)
            raise CheckpointError(
                f"Could not write checkpoint {path}: {_first_line(err)}{_free_space(path)}. "
                "Nothing was replaced: "
                "the checkpoints written before are intact. Free disk space or choose a "
                "writable --trainer.default_root_dir, then rerun with `--ckpt_path auto` to "
                "resume from the last good one."
            ) from err

    def _check_written(self, checkpoint: dict[str, Any], path: Any, tmp: str) -> None:
        """The bytes about to replace the old file must load back as plain data."""
        problem = checkpoint_problem(tmp)
        if problem is not None and "pickled" in problem:
            raise CheckpointError(_not_plain(checkpoint, path, problem))
        if problem is not None:
            raise CheckpointError(
                f"Could not write {path}: the new file does not read back ({problem}); "
                "is the disk full? The previous checkpoint is kept."
            )

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # `weights_only` is ignored on purpose: lit-seqcls checkpoints are plain data, and a
        # file that is not is refused with an explanation rather than unpickled.
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return load_checkpoint(path, map_location=map_location)

    def _refuse_unsafe(self, checkpoint: dict[str, Any], path: Any) -> None:
        if self.check_finite:
            bad = _non_finite(checkpoint.get("state_dict") or {})
            if bad:
                raise CheckpointError(
                    f"Refusing to write {path}: the weights hold NaN or inf ({', '.join(bad[:3])}"
                    f"{', ...' if len(bad) > 3 else ''}); the previous checkpoint is kept. "
                    "Training diverged: see lit_seqcls.guards.NonFiniteGuard, lower the "
                    "learning rate or keep gradient clipping on, and resume from the last "
                    "good checkpoint."
                )
        found = find_secrets(checkpoint)
        if found:
            raise SecretInConfigError(secrets_message(found, f"checkpoint {path}"))


def _non_finite(state_dict: dict[str, Any]) -> list[str]:
    return [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def _free_space(path: Any) -> str:
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return ""
    return f" ({free / 2**20:,.1f} MiB free there)"


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
        return _first_line(err)
    return None if bad is None else f"entry {bad} fails its checksum"


def _not_plain(checkpoint: Any, path: Any, problem: str) -> str:
    where = _first_non_plain(checkpoint, "")
    place = f" at {where[0]} (a {where[1]})" if where else ""
    return (
        f"Refusing to write {path}: the checkpoint holds a Python object{place} that "
        f"`torch.load(weights_only=True)` cannot read, so nobody could load it safely; the "
        "previous checkpoint is kept. Store plain data (str, numbers, lists, dicts, tensors) in "
        f"`on_save_checkpoint` instead. ({problem})"
    )


def _first_non_plain(obj: Any, where: str) -> tuple[str, str] | None:
    if isinstance(obj, _PLAIN):
        return None
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple | set):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    else:
        return (where or "<root>", type(obj).__qualname__)
    for key, value in items:
        found = _first_non_plain(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _corrupted(path: Path, detail: str) -> CheckpointError:
    reason = f"is truncated or corrupted ({detail})"
    return CheckpointError(
        f"Checkpoint {path} {reason}, so it cannot be loaded; a crash or a full disk while it "
        "was written can do this. Resume from an earlier checkpoint, or pass `--ckpt_path auto` "
        "to use the newest checkpoint that loads.",
        reason,
    )


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
