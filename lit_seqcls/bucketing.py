"""Length-bucketed batch sampler: texts of similar length share a batch, so little is padding.

One *global* plan is computed from ``(lengths, seed, epoch)`` alone, identically on every rank,
and each rank takes its share of it. So under DDP the ranks never disagree about the epoch, and
Lightning has nothing to wrap: when it hands us a ``DistributedSampler`` (its default for
``BatchSampler`` subclasses) we only read the rank and world size from it.

The plan (training):
    shuffle → cut into pools of ``pool_size × batch_size`` → sort each pool by (noisy) length →
    cut into batches → shuffle the batch order → the batch with the longest texts goes first
    (an out-of-memory error then shows in the first step, not hours in).
Evaluation sorts everything by length, never repeats or drops a text, does not shuffle, and
gives every rank the same number of batches too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import BatchSampler, DistributedSampler, Sampler


class BucketBatchSampler(BatchSampler):
    """Yields lists of dataset indices grouped by length; one shard of a global plan per rank.

    Args:
        lengths: token count of every example in the dataset.
        batch_size: examples per batch (per rank).
        shuffle: training mode (pools, noise, shuffled batch order); ``False`` for evaluation.
        drop_last: drop the one incomplete batch of the epoch instead of keeping it.
        pool_size: batches per sorting pool; larger pools pad less but are less random.
        padding_noise: multiplicative length noise (±fraction) before sorting, so the same texts
            do not always share a batch (AllenNLP's ``padding_noise``).
        seed: base seed; epoch ``e`` uses ``(seed, e)``, so every rank builds the same plan.
        sampler: only read for its ``num_replicas``/``rank`` when Lightning injects a
            ``DistributedSampler``; its order is ignored.
        num_replicas: world size; default: from ``sampler`` or ``torch.distributed``, else 1.
        rank: this process's rank; default as ``num_replicas``.

    Example:
        >>> s = BucketBatchSampler([5, 1, 9, 2, 8, 3], batch_size=2, shuffle=False)
        >>> list(s)
        [[1, 3], [5, 0], [4, 2]]
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int = 32,
        shuffle: bool = True,
        drop_last: bool = False,
        pool_size: int = 50,
        padding_noise: float = 0.1,
        seed: int = 0,
        sampler: Sampler | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        # BatchSampler.__init__ is not called: we own the iteration, not a wrapped sampler.
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= padding_noise < 1.0:
            raise ValueError(f"padding_noise must be in [0, 1), got {padding_noise}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pool_size = max(1, pool_size)
        self.padding_noise = padding_noise
        self.seed = seed
        self.sampler = sampler
        self.num_replicas, self.rank = _world(sampler, num_replicas, rank)
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every training epoch; it selects the epoch's plan."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._rank_batches()

    def __len__(self) -> int:
        return len(self._rank_batches())

    def _rank_batches(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            batches = self.global_plan(self.epoch)
            self._cache = (self.epoch, batches[self.rank :: self.num_replicas])
        return self._cache[1]

    def global_plan(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` for all ranks, in order; rank ``r`` takes ``plan[r::world]``."""
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.lengths)
        if not self.shuffle:
            return self._evaluation_plan()

        noise = rng.uniform(1 - self.padding_noise, 1 + self.padding_noise, n)
        noisy = self.lengths * noise  # (N,)
        order = rng.permutation(n)
        pool = self.pool_size * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(noisy[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist()
                for i in range(0, len(chunk), self.batch_size)
            ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        rng.shuffle(batches)
        if batches:
            longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b]].max())
            batches.insert(0, batches.pop(longest))
        return self._even_out(batches)

    def _evaluation_plan(self) -> list[list[int]]:
        # Sorted by length, every text exactly once, and a batch count that is a multiple of the
        # world size (batches shrink a little instead), so no rank is left with no batch at all.
        n, world = len(self.lengths), self.num_replicas
        if n < world:
            raise ValueError(
                f"{n} evaluation text(s) cannot be shared by {world} ranks: every rank needs at "
                "least one. Evaluate on fewer devices or with more data."
            )
        count = math.ceil(math.ceil(n / self.batch_size) / world) * world
        order = np.argsort(self.lengths, kind="stable")
        return [chunk.tolist() for chunk in np.array_split(order, count)]

    def _even_out(self, batches: list[list[int]]) -> list[list[int]]:
        # Every rank must run the same number of steps, or the ranks that finish first leave the
        # others waiting in a collective forever. Repeat whole batches from the start of the
        # (shuffled) plan to fill the last round; say so once.
        world = self.num_replicas
        missing = math.ceil(len(batches) / world) * world - len(batches)
        if missing and len(batches) >= missing:
            if self.epoch == 0:
                rank_zero_info(
                    f"BucketBatchSampler: {len(batches)} batches do not divide evenly over {world} "
                    f"ranks; repeating {missing} batch(es) so every rank runs the same number of "
                    "steps."
                )
            batches = batches + batches[:missing]
        elif missing:
            rank_zero_warn(
                f"Only {len(batches)} batch(es) for {world} ranks: some ranks repeat batches. "
                "Use a smaller batch_size or fewer devices."
            )
            batches = batches + [batches[i % len(batches)] for i in range(missing)]
        return batches


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
