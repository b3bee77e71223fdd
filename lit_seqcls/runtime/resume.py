"""Exact resume: random-number generator states in the checkpoint, and ``--ckpt_path auto``.

Lightning's checkpoint holds weights, optimizer, loop progress and callback states but no RNG
state, so a resumed run draws different dropout masks than an uninterrupted one and drifts away
from it (~1e-2 in the weights after a few epochs). ``RNGStateCheckpoint`` stores every rank's
torch (CPU and CUDA), numpy and Python generator states as plain data (the checkpoint still loads
with ``torch.load(weights_only=True)``) and puts them back when ``fit`` resumes. The position in
the epoch is not stored here: the loop progress already records it and ``BucketBatchSampler``
skips the batches done (see ``datamodules.base.resume_point``).

``--ckpt_path auto`` resumes from the newest checkpoint under ``trainer.default_root_dir`` (a
pre-emption ``hpc_ckpt_N.ckpt``, an ``interrupted.ckpt``, a ``last.ckpt`` or a top-k checkpoint)
that loads, skipping truncated or corrupted files, and starts fresh when there is none, so a
requeued job or a re-run command needs no edit (``resolve_ckpt_path``). Before ``fit`` the CLI
removes the temporary files that writers killed mid-save left under the root (``clean_run_root``):
the resumed run writes into a new ``version_N`` directory, so nothing else would ever remove them.

``last.ckpt`` is the newest epoch's state, written after every epoch (``LastCheckpoint``), so a
run killed outright (``kill -9``, the OOM killer, a lost node) loses at most the epoch it was in.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lit_seqcls.checkpoints import CheckpointError, checkpoint_problem
from lit_seqcls.runtime.atomic import remove_stale_temporaries
from lit_seqcls.runtime.distributed import gather_objects

RNG_KEY = "rng_states"  # top-level checkpoint key: one state dict per rank, indexed by rank
AUTO = "auto"
LAST = "last"


class RNGStateCheckpoint(Callback):
    """Saves each rank's torch/CUDA/numpy/Python RNG states in checkpoints; restores them on resume.

    States are applied as soon as the checkpoint is restored, which is where an uninterrupted run
    stood when it saved at an epoch boundary: the next thing to draw from the generator is the
    new epoch's DataLoader iterator (PyTorch draws its base seed from the global generator). A
    checkpoint written *between two batches* was saved after that draw, so the states are
    applied once more right before the first batch after the restart.

    Under DDP every rank stores its own states (gathered into rank zero's checkpoint); a resume
    on a different number of ranks falls back to rank ``rank % saved`` and says so.

    Example:
        >>> state = _collect_states()
        >>> sorted(state), type(state["numpy"][1]).__name__
        (['cuda', 'numpy', 'python', 'torch'], 'list')
        >>> before = torch.rand(1)
        >>> _apply_states(state)
        >>> torch.equal(torch.rand(1), before)
        True
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Called on every rank (Lightning builds the checkpoint everywhere, rank zero writes it).
        checkpoint[RNG_KEY] = _gather(trainer, _collect_states())

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != "fit":
            return  # validate/test/predict with a checkpoint: nothing to continue
        saved = checkpoint.get(RNG_KEY)
        if not saved:
            rank_zero_warn(
                "The checkpoint holds no random-number generator states (written without "
                "RNGStateCheckpoint): training resumes, but not bit-for-bit like an "
                "uninterrupted run."
            )
            return
        rank = trainer.global_rank
        if len(saved) != trainer.world_size:
            rank_zero_warn(
                f"The checkpoint holds RNG states of {len(saved)} rank(s) and this run has "
                f"{trainer.world_size}: rank r continues with the states of rank r % "
                f"{len(saved)}, so the run is not an exact continuation."
            )
        self._pending = saved[rank % len(saved)]
        _apply_states(self._pending)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is None:
            return
        if batch_idx > 0:
            # Restarted inside an epoch: the states were saved after this epoch's DataLoader
            # iterator drew its seed, but the restart drew one more when it re-created it.
            _apply_states(self._pending)
        self._pending = None


class BestCheckpoint(ModelCheckpoint):
    """The CLI's checkpoint of the best epochs, which keeps its ranking across a resume.

    A resumed run writes into a new ``version_N`` folder, and Lightning's ``ModelCheckpoint``
    then forgets the scores of the checkpoints it kept (only ``best_model_path`` is reloaded):
    the first epoch after a resume was saved as the best whatever it scored, and ``fit``
    reported, and ``compare`` tested, a worse checkpoint than one written before the
    interruption. This one restores the ranking of those of the kept files that still exist.

    Its state is stored under ``ModelCheckpoint``'s key, so a checkpoint written before this
    class existed (or by a plain ``ModelCheckpoint``) resumes with its ranking, and Lightning
    code that looks for a ``ModelCheckpoint`` state in ours finds it.

    Example:
        >>> kwargs = dict(monitor="val/acc", mode="max")
        >>> BestCheckpoint(**kwargs).state_key == ModelCheckpoint(**kwargs).state_key
        True
    """

    @property
    def state_key(self) -> str:
        own = super().state_key  # the class name followed by the settings that tell two apart
        return ModelCheckpoint.__qualname__ + own.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            return  # Lightning restored everything
        kept = {p: s for p, s in state_dict.get("best_k_models", {}).items() if Path(p).is_file()}
        if kept and state_dict.get("kth_best_model_path") in kept:
            self.best_k_models = kept
            self.kth_best_model_path = state_dict["kth_best_model_path"]
            self.kth_value = state_dict["kth_value"]
            self.best_model_score = state_dict["best_model_score"]


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt``, written again after every epoch: where a run killed outright resumes.

    Lightning (2.6) writes ``save_last``'s file only in an epoch that also saved a top-k file,
    or when ``fit`` ends. Beside a checkpoint that keeps the best ``val/acc`` only, ``last.ckpt``
    was therefore the *best* epoch's, and a run killed after epochs that did not improve
    resumed from there and trained them all again. This is an unmonitored top-1 checkpoint
    named ``last``, saved at the end of every training epoch (also when validation runs less
    often), over the one before. ``save_last_every_epoch`` puts one beside the CLI's checkpoint.
    """

    def __init__(self, dirpath: str | Path | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=ModelCheckpoint.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            save_on_train_epoch_end=True,
        )


def save_last_every_epoch(trainer: L.Trainer, callback: ModelCheckpoint) -> LastCheckpoint | None:
    """Give ``callback``, if it has ``save_last=True``, a ``LastCheckpoint`` in its place.

    ``callback`` keeps its own checkpoints (the best epochs) and stops writing ``last.ckpt``;
    a ``LastCheckpoint`` in the same folder, appended to the trainer's callbacks (checkpoint
    callbacks run last), writes it after every epoch. ``save_last="link"`` is left to
    Lightning, and so are checkpoint callbacks a user adds. Call right after building the
    trainer, on every rank; returns the callback added, if any.

    Example:
        >>> best = ModelCheckpoint(monitor="val/acc", mode="max", save_last=True)
        >>> trainer = L.Trainer(callbacks=[best], logger=False, enable_progress_bar=False)
        >>> type(save_last_every_epoch(trainer, best)).__name__, best.save_last
        ('LastCheckpoint', False)
        >>> [type(c).__name__ for c in trainer.checkpoint_callbacks]
        ['ModelCheckpoint', 'LastCheckpoint']
    """
    if callback.save_last is not True:
        return None
    callback.save_last = False
    last = LastCheckpoint(dirpath=callback.dirpath)
    trainer.callbacks.append(last)
    return last


def make_checkpoint_callback(trainer: L.Trainer, callback: ModelCheckpoint) -> None:
    """Make ``callback`` the trainer's ``checkpoint_callback``: its first checkpoint callback.

    Lightning takes the first, and the callbacks a user adds (``--trainer.callbacks+=
    ModelCheckpoint`` for a checkpoint every N steps) come before the CLI's own, so the "best"
    checkpoint that ``fit`` reports, ``compare`` tests and ``ckpt_path="best"`` loads would
    be the user's newest step file. Moves ``callback`` before the other checkpoint callbacks,
    still after every callback that is not one (call right after building the trainer).

    Example:
        >>> steps, best = ModelCheckpoint(every_n_train_steps=100), ModelCheckpoint(monitor="m")
        >>> trainer = L.Trainer(callbacks=[steps, best], logger=False, enable_progress_bar=False)
        >>> make_checkpoint_callback(trainer, best)
        >>> trainer.checkpoint_callback is best, trainer.checkpoint_callbacks[1] is steps
        (True, True)
    """
    others = [c for c in trainer.callbacks if c is not callback]
    first = next((i for i, c in enumerate(others) if isinstance(c, Checkpoint)), len(others))
    trainer.callbacks[:] = [*others[:first], callback, *others[first:]]


def newest_saved(trainer: L.Trainer) -> str:
    """The newest file the trainer's checkpoint callbacks have written, or ``""``.

    For messages that say where ``--ckpt_path auto`` will resume from.
    """
    names = ("last_model_path", "best_model_path")
    written = [getattr(c, name, "") for c in trainer.checkpoint_callbacks for name in names]
    paths = {path for path in written if path and Path(path).is_file()}
    return max(paths, key=lambda path: (Path(path).stat().st_mtime_ns, path), default="")


def _collect_states() -> dict[str, Any]:
    """This process's generator states as plain data (lists, ints, byte tensors)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),  # ByteTensor: loads with weights_only=True
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def _apply_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:  # another GPU count: only the current device's generator can be matched up
            torch.cuda.set_rng_state(state["cuda"][0])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _gather(trainer: L.Trainer, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's states, in rank order (a collective under DDP: all ranks call it)."""
    # torch.set_rng_state wants CPU byte tensors, whatever the backend did with them on the way.
    return [
        {**s, "torch": s["torch"].cpu(), "cuda": [t.cpu() for t in s["cuda"]]}
        for s in gather_objects(trainer, state)
    ]


def newest_checkpoint(root: str | Path, pattern: str = "*.ckpt", option: str = AUTO) -> Path | None:
    """The most recently written ``pattern`` file under ``root`` that loads, or None.

    W&B's own copies are ignored; a truncated, corrupted or unsafe file (see
    ``lit_seqcls.checkpoints.checkpoint_problem``) is skipped with a warning naming it, so a
    job killed while writing resumes from the checkpoint before.

    Example:
        >>> import os, tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> newest_checkpoint(root) is None
        True
        >>> for i, name in enumerate(["a/last.ckpt", "hpc_ckpt_1.ckpt"]):
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     torch.save({"global_step": i}, root / name)
        ...     os.utime(root / name, (i, i))
        >>> newest_checkpoint(root).name
        'hpc_ckpt_1.ckpt'
        >>> _ = (root / "cut.ckpt").write_bytes(b"PK")  # newest, but cut short by a kill
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     newest_checkpoint(root).name
        'hpc_ckpt_1.ckpt'
        >>> "skipping" in str(caught[0].message) and "truncated" in str(caught[0].message)
        True
    """
    candidates = [p for p in Path(root).rglob(pattern) if "wandb" not in p.parts and p.is_file()]
    candidates.sort(key=lambda p: (p.stat().st_mtime_ns, str(p)), reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        rank_zero_warn(f"--ckpt_path {option}: skipping {path}: {problem}")
    return None


def clean_run_root(trainer: L.Trainer) -> list[Path]:
    """Remove killed writers' temporary files under ``trainer.default_root_dir``; report them.

    Run by rank zero only (the one rank that writes checkpoints); one info line names what was
    removed. Returns the removed paths (``[]`` on other ranks).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / ".last.ckpt.4194304.tmp").write_bytes(b"")  # its writer was killed
        >>> trainer = L.Trainer(default_root_dir=root, logger=False, enable_progress_bar=False)
        >>> [p.name for p in clean_run_root(trainer)], list(root.iterdir())
        (['.last.ckpt.4194304.tmp'], [])
    """
    if not trainer.is_global_zero:
        return []
    removed = remove_stale_temporaries(trainer.default_root_dir)
    if removed:
        names = ", ".join(str(p) for p in removed[:3]) + (", ..." if len(removed) > 3 else "")
        rank_zero_info(f"Removed {len(removed)} temporary file(s) left by killed writers: {names}")
    return removed


def resolve_ckpt_path(ckpt_path: str | Path | None, root_dir: str | Path) -> str | Path | None:
    """``"auto"`` → the newest loadable checkpoint under ``root_dir`` (or None); ``"last"`` →
    the newest loadable ``last.ckpt`` there (a ``CheckpointError`` when there is none).

    ``root_dir`` is the trainer's ``default_root_dir``; the CLI resolves ``auto`` before it builds
    the trainer, so that the W&B logger is built with the run id of the checkpoint. Lightning
    looks for ``last`` only in this run's own, new ``version_N`` folder, where there is none: it
    warned and trained from scratch (``fit``) or evaluated the untrained model (``test``). Any
    other value is returned unchanged for Lightning to interpret (``best``, ``hpc``, a path).
    Every rank resolves it for itself; on the shared file system of a job they agree.
    """
    if ckpt_path == LAST:
        found = newest_checkpoint(root_dir, pattern="last*.ckpt", option=LAST)
        if found is None:
            raise CheckpointError(
                f"--ckpt_path last: no last.ckpt under {root_dir}. Name a checkpoint file, set "
                "--trainer.default_root_dir to the folder of the run to continue, or give "
                "`--ckpt_path auto` (fit: resume when there is a checkpoint, else start fresh)."
            )
        rank_zero_info(f"--ckpt_path last: {found}")
        return str(found)
    if ckpt_path != AUTO:
        return ckpt_path
    found = newest_checkpoint(root_dir)
    if found is None:
        rank_zero_info(f"--ckpt_path auto: no checkpoint under {root_dir}; fresh")
        return None
    rank_zero_info(f"--ckpt_path auto: resuming from {found}")
    return str(found)
