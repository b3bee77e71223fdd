import numpy as np
import pytest
from lightning.fabric.utilities.types import _Stateful
from torch.utils.data import DataLoader, DistributedSampler

from lit_seqcls.text.bucketing import BucketBatchSampler, ResumableDataLoader


def _lengths(n, seed=0):
    return np.random.default_rng(seed).integers(1, 200, n)


def _padding(lengths, batches):
    return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)


def test_training_epoch_covers_every_index_once():
    lengths = _lengths(1000)
    batches = list(BucketBatchSampler(lengths, batch_size=32))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert sum(len(b) < 32 for b in batches) <= 1


def test_bucketing_pads_far_less_than_random_batches():
    lengths = _lengths(2000)
    rng = np.random.default_rng(1)
    random_padding = _padding(lengths, np.array_split(rng.permutation(2000), 2000 // 32))
    exact = list(BucketBatchSampler(lengths, batch_size=32, padding_noise=0.0))
    noisy = list(BucketBatchSampler(lengths, batch_size=32, padding_noise=0.1))
    assert _padding(lengths, exact) < 0.05 * random_padding
    assert _padding(lengths, noisy) < 0.25 * random_padding


def test_plan_is_deterministic_per_epoch_and_changes_between_epochs():
    lengths = _lengths(500)
    a, b = (
        BucketBatchSampler(lengths, batch_size=16, seed=7),
        BucketBatchSampler(lengths, batch_size=16, seed=7),
    )
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert sorted(i for x in a for i in x) == list(range(500))


def test_longest_batch_comes_first():
    lengths = _lengths(800)
    batches = list(BucketBatchSampler(lengths, batch_size=16, seed=2))
    assert lengths[batches[0]].max() == lengths.max()


def test_drop_last_drops_only_the_incomplete_batch():
    batches = list(BucketBatchSampler(_lengths(100), batch_size=32, drop_last=True))
    assert [len(b) for b in batches] == [32, 32, 32]


def test_evaluation_is_sorted_and_exhaustive():
    lengths = _lengths(101)
    batches = list(BucketBatchSampler(lengths, batch_size=10, shuffle=False))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(101))
    assert list(lengths[flat]) == sorted(lengths)


@pytest.mark.parametrize("n", [1, 31, 100, 257])
@pytest.mark.parametrize("world", [2, 3])
def test_training_shards_have_equal_batch_counts_and_cover_everything(n, world):
    lengths = _lengths(n)
    shards = [
        list(BucketBatchSampler(lengths, batch_size=8, num_replicas=world, rank=r))
        for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1
    seen = {i for s in shards for b in s for i in b}
    assert seen == set(range(n))


@pytest.mark.parametrize("world", [2, 3])
def test_evaluation_shards_see_every_sample_exactly_once(world):
    lengths = _lengths(103)
    shards = [
        list(BucketBatchSampler(lengths, batch_size=8, shuffle=False, num_replicas=world, rank=r))
        for r in range(world)
    ]
    flat = [i for s in shards for b in s for i in b]
    assert sorted(flat) == list(range(103))


def test_reads_rank_and_world_from_an_injected_distributed_sampler():
    lengths = _lengths(64)
    injected = DistributedSampler(range(64), num_replicas=4, rank=3, shuffle=False)
    sampler = BucketBatchSampler(lengths, batch_size=4, sampler=injected)
    assert (sampler.num_replicas, sampler.rank) == (4, 3)
    whole = BucketBatchSampler(lengths, batch_size=4).global_plan(0)
    assert list(sampler) == whole[3::4]


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1, 2], batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        BucketBatchSampler([1, 2], num_replicas=2, rank=2)


@pytest.mark.parametrize(("n", "world"), [(30, 2), (5, 3), (103, 2)])
def test_evaluation_gives_every_rank_the_same_number_of_batches(n, world):
    lengths = _lengths(n)
    shards = [
        list(BucketBatchSampler(lengths, batch_size=64, shuffle=False, num_replicas=world, rank=r))
        for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1 and all(len(s) >= 1 for s in shards)
    assert all(len(b) <= 64 for s in shards for b in s)


def test_evaluation_with_fewer_texts_than_ranks_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be shared by 4 ranks"):
        list(BucketBatchSampler([3, 4], shuffle=False, num_replicas=4, rank=0))


# ---- ResumableDataLoader: what Lightning checks before warning "not resumable" -------------


def test_resumable_loader_is_stateful_as_lightning_checks_it_and_a_plain_one_is_not():
    # Lightning's test (training_epoch_loop.py): isinstance(loader, _Stateful) for each loader.
    sampler = BucketBatchSampler(_lengths(20), batch_size=4)
    assert isinstance(ResumableDataLoader(range(20), batch_sampler=sampler), _Stateful)
    assert not isinstance(DataLoader(range(20), batch_sampler=sampler), _Stateful)


def test_plan_key_ignores_the_rank_and_sees_what_changes_the_batches():
    lengths = _lengths(50)
    key = BucketBatchSampler(lengths, batch_size=4, num_replicas=2, rank=0).plan_key()
    assert BucketBatchSampler(lengths, batch_size=4, num_replicas=2, rank=1).plan_key() == key
    for changed in ({"batch_size": 5}, {"seed": 1}, {"max_tokens": 300}, {"num_replicas": 1}):
        kwargs = {"batch_size": 4, "num_replicas": 2, "rank": 0, **changed}
        assert BucketBatchSampler(lengths, **kwargs).plan_key() != key, changed
    assert BucketBatchSampler(lengths[:-1], batch_size=4, num_replicas=2).plan_key() != key


def test_resuming_with_another_plan_warns_that_it_is_not_exact():
    saved = ResumableDataLoader(range(20), batch_sampler=BucketBatchSampler(_lengths(20), seed=0))
    resumed = ResumableDataLoader(range(20), batch_sampler=BucketBatchSampler(_lengths(20), seed=1))
    with pytest.warns(UserWarning, match="planned differently"):
        resumed.load_state_dict(saved.state_dict())


def test_resumable_loader_over_another_sampler_says_what_to_do():
    loader = ResumableDataLoader(range(4), batch_size=2)  # a plain BatchSampler inside
    with pytest.raises(TypeError, match="only over a BucketBatchSampler, got BatchSampler"):
        loader.state_dict()
