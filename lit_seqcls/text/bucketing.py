"""Length-bucketed batch sampler: texts of similar length share a batch, so little is padding.

One *global* plan is computed from ``(lengths, seed, epoch)`` alone, identically on every rank,
and each rank takes its share of it. So under DDP the ranks never disagree about the epoch, and
Lightning has nothing to wrap: when it hands us a ``DistributedSampler`` (its default for
``BatchSampler`` subclasses) we only read the rank and world size from it.

The plan (training):
    shuffle → cut into pools of ``pool_size`` batches → sort each pool by (noisy) length →
    cut into batches (``batch_size`` texts, or at most ``max_tokens`` padded tokens) → shuffle
    the batch order → the batch with the longest texts goes first (an out-of-memory error then
    shows in the first step, not hours in) → repeat a few whole batches if needed so that every
    rank gets the same number of batches (ranks that finish early leave the others hanging).
Evaluation sorts everything by length, never repeats or drops a text, does not shuffle, and
gives every rank the same number of batches too (batches shrink a little instead) whenever the
texts can be split that finely.

A resumed run continues an interrupted epoch exactly: the datamodule builds the sampler with the
position Lightning restored (``datamodules.base.resume_point``) and the sampler skips the batches
already trained on. Lightning cannot
see that and warns that the loader "is not resumable ... unreliable results" unless the
*DataLoader* has ``state_dict``/``load_state_dict``; ``ResumableDataLoader`` is a ``DataLoader``
that has them, so the warning is gone exactly where it is false.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler


class BucketBatchSampler(BatchSampler):
    """Yields lists of dataset indices grouped by length; one shard of a global plan per rank.

    Args:
        lengths: token count of every example in the dataset.
        batch_size: texts per batch (per rank); with ``max_tokens`` only a cap on the count.
        max_tokens: tokens per batch, padding included (a budget instead of a fixed size):
            ``longest × count`` (the padded tensor) stays within it; a single longer text gets a
            batch of its own.
        shuffle: training mode (pools, noise, shuffled batch order); ``False`` for evaluation.
        drop_last: drop the one incomplete batch of the epoch (fixed-size mode only).
        pool_size: batches per sorting pool; larger pools pad less but are less random.
        padding_noise: multiplicative length noise (±fraction) before sorting, so the same texts
            share a batch less often (AllenNLP's ``padding_noise``). Off by default: pools are
            drawn anew every epoch anyway, and on IMDB lengths 0.1 raised padding from 1.8% to
            8.2% (benchmarks/bucketing.py).
        seed: base seed; epoch ``e`` uses ``(seed, e)``, so every rank builds the same plan.
        sampler: only read for its ``num_replicas``/``rank`` when Lightning injects a
            ``DistributedSampler``; its order is ignored.
        num_replicas: world size; default: from ``sampler`` or ``torch.distributed``, else 1.
        rank: this process's rank; default as ``num_replicas``.
        resume_epoch: with ``resume_batches``, the epoch a checkpoint stopped in.
        resume_batches: batches of ``resume_epoch`` this rank already trained on; they are
            skipped once, so a resumed epoch sees exactly the samples it had not seen yet.

    Example:
        >>> s = BucketBatchSampler([5, 1, 9, 2, 8, 3], batch_size=2, shuffle=False)
        >>> list(s)
        [[1, 3], [5, 0], [4, 2]]
        >>> list(BucketBatchSampler([5, 1, 9, 2, 8, 3], max_tokens=10, shuffle=False))
        [[1, 3, 5], [0], [4], [2]]
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int = 32,
        max_tokens: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        pool_size: int = 50,
        padding_noise: float = 0.0,
        seed: int = 0,
        sampler: Sampler | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        resume_epoch: int | None = None,
        resume_batches: int = 0,
    ) -> None:
        # BatchSampler.__init__ is not called: we own the iteration, not a wrapped sampler.
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if not 0.0 <= padding_noise < 1.0:
            raise ValueError(f"padding_noise must be in [0, 1), got {padding_noise}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pool_size = max(1, pool_size)
        self.padding_noise = padding_noise
        self.seed = seed
        self.num_replicas, self.rank = _world(sampler, num_replicas, rank)
        # Lightning calls `set_epoch` on `batch_sampler.sampler`, never on the batch sampler
        # itself: without this relay every epoch would replay epoch 0's plan.
        self.sampler = sampler if isinstance(sampler, DistributedSampler) else _EpochRelay(self)
        self.epoch = 0
        self.resume_epoch = resume_epoch
        self.resume_batches = resume_batches
        self._cache: tuple[int, list[list[int]]] | None = None
        self._warned_long = False

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's plan (Lightning calls it, through ``sampler``, every epoch)."""
        self.epoch = epoch
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)

    def _current_epoch(self) -> int:
        # Under DDP Lightning sets the epoch on the DistributedSampler it injected.
        if isinstance(self.sampler, DistributedSampler):
            return self.sampler.epoch
        return self.epoch

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._rank_batches()
        if self.resume_epoch == self._current_epoch() and 0 < self.resume_batches < len(batches):
            # Mid-epoch resume: the loop's progress says `resume_batches` are done; it expects
            # the rest, and counts on `len(self)` for the whole epoch. Skip once, then forget.
            batches = batches[self.resume_batches :]
            self.resume_batches = 0
        yield from batches

    def __len__(self) -> int:
        return len(self._rank_batches())

    def _rank_batches(self) -> list[list[int]]:
        epoch = self._current_epoch()
        if self._cache is None or self._cache[0] != epoch:
            batches = self.global_plan(epoch)
            self._cache = (epoch, batches[self.rank :: self.num_replicas])
        return self._cache[1]

    def global_plan(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` for all ranks, in order; rank ``r`` takes ``plan[r::world]``."""
        if not self.shuffle:
            return self._evaluation_plan()
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.lengths)
        noise = rng.uniform(1 - self.padding_noise, 1 + self.padding_noise, n)
        noisy = self.lengths * noise  # (N,)
        order = rng.permutation(n)
        pool = self.pool_size * self._texts_per_batch()
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            batches += self._split(chunk[np.argsort(noisy[chunk], kind="stable")])
        if (
            self.drop_last
            and self.max_tokens is None
            and batches
            and len(batches[-1]) < self.batch_size
        ):
            batches.pop()
        rng.shuffle(batches)
        if batches:
            longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b]].max())
            batches.insert(0, batches.pop(longest))
        return self._even_out(batches, epoch)

    def _texts_per_batch(self) -> int:
        if self.max_tokens is None:
            return self.batch_size
        typical = max(1, int(np.median(self.lengths))) if len(self.lengths) else 1
        return max(1, min(self.batch_size, self.max_tokens // typical))

    def _split(self, order: np.ndarray) -> list[list[int]]:
        """Cut indices (sorted by length, ascending) into consecutive batches."""
        if self.max_tokens is None:
            return [
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            ]
        # Greedy under the budget: the padded size of a batch is its longest text × its count.
        # Noisy sorting means a later text can be shorter than the current longest: track max.
        batches, current, longest = [], [], 0
        for index in order.tolist():
            length = int(self.lengths[index])
            grown = max(longest, length)
            if current and (
                grown * (len(current) + 1) > self.max_tokens or len(current) == self.batch_size
            ):
                batches.append(current)
                current, grown = [], length
            current.append(index)
            longest = grown
            if length > self.max_tokens and not self._warned_long:
                self._warned_long = True
                rank_zero_warn(
                    f"A text of {length} tokens exceeds max_tokens={self.max_tokens}: it gets a "
                    "batch of its own. Raise max_tokens or lower max_length to stay in budget."
                )
        if current:
            batches.append(current)
        return batches

    def _evaluation_plan(self) -> list[list[int]]:
        # Sorted by length, every text exactly once, and a batch count that is a multiple of the
        # world size, so that no rank is left without a batch and no collective waits.
        n, world = len(self.lengths), self.num_replicas
        if n < world:
            raise ValueError(
                f"{n} evaluation text(s) cannot be shared by {world} ranks: every rank needs at "
                "least one. Evaluate on fewer devices or with more data."
            )
        batches = self._split(np.argsort(self.lengths, kind="stable"))
        while len(batches) % world:
            # Halve the batch with most texts (halves stay within any budget) until it divides.
            largest = max(range(len(batches)), key=lambda b: len(batches[b]))
            if len(batches[largest]) == 1:
                # Only single texts left (e.g. 4 over-budget texts on 3 ranks): the counts
                # differ by one. Evaluation steps hold no collective, so no rank waits.
                break
            batch = batches.pop(largest)
            half = (len(batch) + 1) // 2
            batches[largest:largest] = [batch[:half], batch[half:]]
        return batches

    def _even_out(self, batches: list[list[int]], epoch: int) -> list[list[int]]:
        # Every rank must run the same number of steps, or the ranks that finish first leave the
        # others waiting in a collective forever. Repeat whole batches from the start of the
        # (shuffled) plan to fill the last round; say so once.
        world = self.num_replicas
        missing = -len(batches) % world
        if not missing:
            return batches
        if epoch == 0:
            rank_zero_info(
                f"BucketBatchSampler: {len(batches)} batches do not divide evenly over {world} "
                f"ranks; repeating {missing} batch(es) so every rank runs the same number of "
                "steps."
            )
        return batches + [batches[i % len(batches)] for i in range(missing)]

    def plan_key(self) -> str:
        """A digest of everything the plan depends on except the rank and the epoch.

        Two samplers with the same key cut every epoch into the same batches, so skipping the
        first ``n`` of one skips exactly what the other had trained on.
        """
        digest = hashlib.sha256(self.lengths.tobytes())
        settings = (self.batch_size, self.max_tokens, self.shuffle, self.drop_last)
        settings += (self.pool_size, self.padding_noise, self.seed, self.num_replicas)
        digest.update(repr(settings).encode())
        return digest.hexdigest()[:16]


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a ``BucketBatchSampler`` that Lightning counts as resumable.

    Where the interrupted epoch stopped is in Lightning's loop progress (every checkpoint has
    it) and the sampler skips those batches (``datamodules.base.resume_point``); Lightning only
    looks for ``state_dict``/``load_state_dict`` on the loader, its public protocol for resumable
    loaders, and otherwise warns on every mid-epoch resume that results are unreliable. The state
    kept is the sampler's ``plan_key``: resuming with a plan cut differently (another batch size,
    ``max_tokens``, seed, data or rank count) warns instead, because that resume is not exact.

    Use it for the training loader, with ``batch_sampler=BucketBatchSampler(...,
    resume_epoch=..., resume_batches=...)`` from the restored loop position. A checkpoint
    written with it holds one loader state, so resuming it with a plain ``DataLoader`` fails in
    Lightning ("found 1 states").

    Example:
        >>> sampler = BucketBatchSampler([3, 1, 2, 5], batch_size=2, seed=1)
        >>> loader = ResumableDataLoader(list(range(4)), batch_sampler=sampler)
        >>> state = loader.state_dict()
        >>> sorted(state), len(list(loader))
        (['plan_key'], 2)
        >>> loader.load_state_dict(state)  # the same plan: silent
    """

    def state_dict(self) -> dict[str, Any]:
        return {"plan_key": self._bucket_sampler().plan_key()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved, now = state_dict.get("plan_key"), self._bucket_sampler().plan_key()
        if saved is not None and saved != now:
            rank_zero_warn(
                "Resuming mid-epoch with batches planned differently from the interrupted run "
                "(the batch size, max_tokens, seed, data or number of ranks changed): the rest "
                "of this epoch may repeat or miss some texts. Resume with the same settings for "
                "an exact continuation."
            )

    def _bucket_sampler(self) -> BucketBatchSampler:
        if not isinstance(self.batch_sampler, BucketBatchSampler):
            raise TypeError(
                "ResumableDataLoader resumes exactly only over a BucketBatchSampler, got "
                f"{type(self.batch_sampler).__name__}; use a plain DataLoader for this one."
            )
        return self.batch_sampler


class _EpochRelay(Sampler):
    """The ``sampler`` Lightning sees on a single process: forwards ``set_epoch`` to its owner."""

    def __init__(self, owner: BucketBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.owner.lengths)))

    def __len__(self) -> int:
        return len(self.owner.lengths)


def _world(sampler: Sampler | None, num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if isinstance(sampler, DistributedSampler):
        default = (sampler.num_replicas, sampler.rank)
    elif dist.is_available() and dist.is_initialized():
        default = (dist.get_world_size(), dist.get_rank())
    else:
        default = (1, 0)
    world = num_replicas if num_replicas is not None else default[0]
    this = rank if rank is not None else default[1]
    if not 0 <= this < world:
        raise ValueError(f"rank {this} is outside [0, {world})")
    return world, this
