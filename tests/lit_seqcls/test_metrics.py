"""Metric names and the length buckets of "accuracy by length" (callbacks and compare share)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from lit_seqcls.metrics import VAL_ACC, length_buckets, metric_name


def test_metric_names_are_stage_slash_name():
    assert metric_name("val", "acc") == VAL_ACC == "val/acc"


@given(
    st.dictionaries(st.integers(1, 500), st.integers(1, 50), min_size=1, max_size=60),
    st.integers(1, 12),
)
def test_length_buckets_partition_the_lengths_in_order(totals, num_buckets):
    correct = {k: v // 2 for k, v in totals.items()}
    buckets = length_buckets(totals, correct, num_buckets)
    assert len(buckets) <= num_buckets
    assert sum(b[2] for b in buckets) == sum(totals.values())
    assert sum(b[3] for b in buckets) == sum(correct.values())
    covered = [length for lo, hi, _, _ in buckets for length in totals if lo <= length <= hi]
    assert sorted(covered) == sorted(totals)  # every length in exactly one bucket
    assert all(a[1] < b[0] for a, b in itertools.pairwise(buckets))


def test_length_buckets_are_about_equal_in_size():
    totals = dict.fromkeys(range(1, 101), 1)
    assert [b[2] for b in length_buckets(totals, {}, 4)] == [25, 25, 25, 25]
