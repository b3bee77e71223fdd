"""Property-based tests of the batch plan: any dataset size, world size, mode and lengths."""

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_seqcls.text.bucketing import BucketBatchSampler

lengths_st = st.lists(st.integers(1, 300), min_size=1, max_size=500)
mode_st = st.sampled_from(
    [{"batch_size": 8}, {"batch_size": 32}, {"max_tokens": 256}, {"max_tokens": 1000}]
)


def _shards(lengths, world, **kwargs):
    samplers = [
        BucketBatchSampler(lengths, num_replicas=world, rank=r, **kwargs) for r in range(world)
    ]
    return samplers, [list(s) for s in samplers]


@settings(max_examples=150, deadline=None)
@given(
    lengths=lengths_st,
    world=st.integers(1, 4),
    mode=mode_st,
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_training_plan_properties(lengths, world, mode, seed, epoch):
    samplers, _ = _shards(lengths, world, seed=seed, **mode)
    for s in samplers:
        s.set_epoch(epoch)
    shards = [list(s) for s in samplers]
    # every rank has the same number of batches, and len() says so
    assert len({len(s) for s in shards}) == 1
    assert all(len(s) == len(samp) for s, samp in zip(shards, samplers, strict=True))
    # every sample is covered at least once
    assert {i for s in shards for b in s for i in b} == set(range(len(lengths)))
    _check_budget(lengths, shards, mode)
    # the plan is identical on every rank and reproducible per (seed, epoch)
    plans = [s.global_plan(epoch) for s in samplers]
    assert all(p == plans[0] for p in plans)
    again = BucketBatchSampler(lengths, seed=seed, **mode).global_plan(epoch)
    assert again[: len(plans[0])] == plans[0][: len(again)]


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, world=st.integers(1, 4), mode=mode_st)
def test_evaluation_plan_properties(lengths, world, mode):
    if len(lengths) < world:
        return  # a clear error, tested in test_bucketing.py
    _, shards = _shards(lengths, world, shuffle=False, **mode)
    counts = sorted(len(s) for s in shards)
    assert counts[0] >= 1
    # equal, unless only single-text batches are left to split (then off by at most one)
    assert counts[0] == counts[-1] or (
        counts[-1] - counts[0] == 1 and all(len(b) == 1 for s in shards for b in s)
    )
    counts = Counter(i for s in shards for b in s for i in b)
    assert sorted(counts) == list(range(len(lengths))) and set(counts.values()) == {1}
    _check_budget(lengths, shards, mode)


def _check_budget(lengths, shards, mode):
    lengths = np.asarray(lengths)
    for batch in (b for s in shards for b in s):
        assert len(batch) >= 1
        if "max_tokens" in mode:
            assert len(batch) == 1 or lengths[batch].max() * len(batch) <= mode["max_tokens"]
        else:
            assert len(batch) <= mode["batch_size"]
