"""Checkpoints that are written atomically, hold plain data only and load with ``weights_only``.

``AtomicCheckpointIO`` is the Lightning ``CheckpointIO`` plugin the CLI gives every trainer. It
writes through ``lit_seqcls.runtime.atomic.atomic_write`` (a kill never leaves half a
checkpoint), and before a new file replaces the old one it checks that the file loads with
``torch.load(weights_only=True)``, that the weights are finite and that no secret from the
environment is inside; otherwise the old file stays and a ``CheckpointError`` says why. Reading
is ``lit_seqcls.checkpoints.load_checkpoint``, the one reader every part of the package uses.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_seqcls.checkpoints import CheckpointError, checkpoint_problem, load_checkpoint
from lit_seqcls.errors import first_line
from lit_seqcls.runtime.atomic import atomic_write
from lit_seqcls.runtime.secrets import SecretInConfigError, find_secrets, secrets_message

_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.Size)
_PLAIN += (torch.dtype, torch.device)


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
        lit_seqcls.checkpoints.CheckpointError: Refusing to write ...: the weights hold NaN ...
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
                self._check_written(checkpoint, path, f)
        except (OSError, RuntimeError) as err:  # full disk, read-only folder, quota
            # (torch.save reports a failed write as a RuntimeError from its zip writer)
            raise CheckpointError(
                f"Could not write checkpoint {path}: {first_line(err)}{_free_space(path)}. "
                "Nothing was replaced: "
                "the checkpoints written before are intact. Free disk space or choose a "
                "writable --trainer.default_root_dir, then rerun with `--ckpt_path auto` to "
                "resume from the last good one."
            ) from err

    def _check_written(self, checkpoint: dict[str, Any], path: Any, f: Any) -> None:
        """The bytes about to replace the old file must load back as plain data.

        Not the zip checksums: they would compare the page cache this process just wrote with
        itself (0.17 s per 100 MB, caught nothing a load does not; benchmarks/checkpoint_check.py).
        A short write shows as a size that differs from what was written, or a load that fails.
        """
        written, on_disk = f.tell(), os.fstat(f.fileno()).st_size
        if written != on_disk:
            raise CheckpointError(
                f"Could not write {path}: {on_disk:,} of {written:,} bytes reached the disk; "
                "is the disk full? The previous checkpoint is kept."
            )
        problem = checkpoint_problem(f.name, checksums=False)
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
                    "Training diverged: see lit_seqcls.runtime.NonFiniteGuard, lower the "
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
