"""The comparison's statistics against hand-computed cases and small reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_seqcls.compare import counting
from lit_seqcls.compare.stats import (
    accuracy_p_value,
    bootstrap_intervals,
    compare,
    describe,
    macro_f1,
    macro_f1_p_value,
    mcnemar_exact,
)


def _reference_macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """F1 per class that occurs in ``labels`` or ``preds``, averaged; one class at a time."""
    scores = []
    for c in sorted(set(labels.tolist()) | set(preds.tolist())):
        tp = int(((labels == c) & (preds == c)).sum())
        fp = int(((labels != c) & (preds == c)).sum())
        fn = int(((labels == c) & (preds != c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def _noisy(labels: np.ndarray, accuracy: float, classes: int, rng, seeds: int = 1) -> np.ndarray:
    """(seeds, N) predictions right with probability ``accuracy``, else another class."""
    right = rng.random((seeds, len(labels))) < accuracy
    wrong = (labels + rng.integers(1, classes, (seeds, len(labels)))) % classes
    return np.where(right, labels, wrong)


def test_mcnemar_matches_the_hand_computed_binomial_tail():
    # b = 10, c = 2 discordant pairs: p = 2·P(X ≤ 2 | n = 12, ½) = 2·(1 + 12 + 66) / 4096.
    assert mcnemar_exact(10, 2) == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert round(mcnemar_exact(10, 2), 4) == 0.0386
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)
    assert mcnemar_exact(0, 0) == mcnemar_exact(7, 7) == 1.0
    # At IMDB's size the log-space sum agrees with exact integer arithmetic.
    b, c = 1310, 1190
    exact = 2 * sum(math.comb(b + c, k) for k in range(c + 1)) / 2 ** (b + c)
    assert mcnemar_exact(b, c) == pytest.approx(exact, rel=1e-9)


def test_accuracy_test_counts_the_discordant_examples():
    # 10 examples only a gets right, 2 only b gets right, 30 both, 8 neither.
    labels = np.zeros(50, dtype=int)
    a = np.array([0] * 10 + [1] * 2 + [0] * 30 + [1] * 8)
    b = np.array([1] * 10 + [0] * 2 + [0] * 30 + [1] * 8)
    assert accuracy_p_value(labels, a, b) == (pytest.approx(2 * 79 / 4096), "McNemar exact")


def test_macro_f1_matches_a_per_class_reference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    preds = _noisy(labels, 0.6, 5, rng)[0]
    preds[preds == 3] = 6  # class 6 only predicted, class 3 only true; 5 absent from both
    assert macro_f1(labels, preds) == pytest.approx(_reference_macro_f1(labels, preds))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    classes=st.integers(2, 4),
    seeds=st.integers(1, 3),
    data=st.randoms(use_true_random=False),
)
def test_an_encoder_compared_with_itself_is_always_tied(n, classes, seeds, data):
    rng = np.random.default_rng(data.randint(0, 2**32))
    labels = rng.integers(0, classes, n)
    preds = rng.integers(0, classes, (seeds, n))
    other = _noisy(labels, 0.9, classes, rng, seeds)  # whichever is best, the copy ties it
    rows = compare(labels, {"x": preds, "copy": preds.copy(), "y": other}, n_boot=20, n_perm=50)
    x, copy = rows[0], rows[1]
    assert accuracy_p_value(labels, preds, preds, n_perm=50)[0] == 1.0
    assert macro_f1_p_value(labels, preds, preds, n_perm=50) == 1.0
    assert (x.acc, x.f1, x.acc_ci, x.f1_ci) == (copy.acc, copy.f1, copy.acc_ci, copy.f1_ci)
    if x.best or copy.best:
        assert x.p_acc == copy.p_acc == x.p_f1 == copy.p_f1 == 1.0 and x.tied and copy.tied


@pytest.mark.parametrize("seeds", [1, 3])
def test_interval_holds_the_estimate_and_narrows_with_more_examples(seeds):
    rng = np.random.default_rng(1)
    widths = []
    for n in (300, 5000):
        labels = rng.integers(0, 10, n)  # ten classes, three runs: both ways of resampling
        runs = {name: _noisy(labels, acc, 10, rng, seeds) for name, acc in [("a", 0.8), ("b", 0.7)]}
        for row in compare(labels, runs, n_boot=300, n_perm=200, n_perm_f1=50):
            assert row.acc_ci[0] <= row.acc <= row.acc_ci[1]
            assert row.f1_ci[0] <= row.f1 <= row.f1_ci[1]
        widths.append(row.acc_ci[1] - row.acc_ci[0])
    assert widths[1] < widths[0] / 2  # ~1/√N: 4x narrower for 16.7x the examples


def test_same_seed_same_numbers():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 400)
    runs = {"a": _noisy(labels, 0.8, 3, rng, 2), "b": _noisy(labels, 0.75, 3, rng, 2)}
    first = compare(labels, runs, n_boot=200, n_perm=300, n_perm_f1=100, seed=7)
    assert compare(labels, runs, n_boot=200, n_perm=300, n_perm_f1=100, seed=7) == first
    other = compare(labels, runs, n_boot=200, n_perm=300, n_perm_f1=100, seed=8)
    assert [r.acc_ci for r in other] != [r.acc_ci for r in first]


@pytest.mark.parametrize("k, columns", [(2, 23), (1000, 12)])  # 1000**12 overflows int64
def test_unique_rows_matches_numpy_unique_of_rows(k, columns):
    rows = np.random.default_rng(7).integers(0, k, (3000, columns))
    rows[1000:1500] = rows[:500]  # repeated rows
    patterns, inverse, counts = counting.unique_rows(rows, k)
    expected = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    assert np.array_equal(patterns, expected[0]) and np.array_equal(counts, expected[2])
    assert np.array_equal(inverse, expected[1].reshape(-1))


def test_dense_and_segment_sum_counting_agree(monkeypatch):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, 500)
    runs = {"a": _noisy(labels, 0.8, 6, rng, 2), "b": _noisy(labels, 0.7, 6, rng, 2)}
    dense = compare(labels, runs, n_boot=100, n_perm=100, n_perm_f1=100)
    monkeypatch.setattr(counting, "DENSE_LIMIT", 0)  # as with thousands of classes
    assert compare(labels, runs, n_boot=100, n_perm=100, n_perm_f1=100) == dense


def _coin_flip_p_values(labels, a, b, n_perm, rng):
    """Both permutation tests the slow way: one coin per example, scores recomputed."""
    ca, cb = (a == labels).mean(axis=0), (b == labels).mean(axis=0)
    observed_acc = abs((ca - cb).sum())

    def f1(pa, pb):
        mean = [np.mean([_reference_macro_f1(labels, p) for p in ps]) for ps in (pa, pb)]
        return mean[0] - mean[1]

    observed_f1 = abs(f1(a, b))
    acc_hits = f1_hits = 0
    for _ in range(n_perm):
        swap = rng.random(len(labels)) < 0.5
        acc_hits += abs(np.where(swap, cb - ca, ca - cb).sum()) >= observed_acc - 1e-12
        pa, pb = np.where(swap, b, a), np.where(swap, a, b)
        f1_hits += abs(f1(pa, pb)) >= observed_f1 - 1e-12
    return (1 + acc_hits) / (1 + n_perm), (1 + f1_hits) / (1 + n_perm)


def test_permutation_tests_agree_with_coin_flips_per_example():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 120)
    a, b = _noisy(labels, 0.8, 3, rng, 2), _noisy(labels, 0.68, 3, rng, 2)
    slow_acc, slow_f1 = _coin_flip_p_values(labels, a, b, 400, rng)
    fast_acc, test = accuracy_p_value(labels, a, b, n_perm=20_000)
    assert test == "permutation"
    assert fast_acc == pytest.approx(slow_acc, abs=0.05)
    assert macro_f1_p_value(labels, a, b, n_perm=4_000) == pytest.approx(slow_f1, abs=0.05)
    assert 0.01 < fast_acc < 0.5  # neither 0 nor 1: the comparison says something


def test_a_clearly_worse_encoder_is_not_tied_and_the_footnote_says_how():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 2000)
    runs = {
        "good": _noisy(labels, 0.9, 2, rng),
        "bad": _noisy(labels, 0.8, 2, rng),
        "close": _noisy(labels, 0.897, 2, rng),
    }
    rows = {r.name: r for r in compare(labels, runs, n_boot=200, n_perm_f1=200)}
    assert rows["good"].best and not rows["bad"].tied and rows["bad"].p_acc < 1e-6
    assert rows["close"].acc_test == "McNemar exact"
    text = describe(list(rows.values()), n_boot=200, n_perm_f1=200)
    assert "200 resamples" in text and "exact McNemar" in text and "post-hoc" in text
    assert "best row (good" in text and "p ≥ 0.05" in text


def test_bootstrap_of_several_seeds_is_wider_than_of_one():
    # The second level (seeds) adds the spread between seeds to the interval.
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 3000)
    spread = np.concatenate([_noisy(labels, acc, 2, rng) for acc in (0.7, 0.8, 0.9)])
    one = bootstrap_intervals(labels, {"a": spread[1:2]}, n_boot=400)["a"][0]
    three = bootstrap_intervals(labels, {"a": spread}, n_boot=400)["a"][0]
    assert three[1] - three[0] > 2 * (one[1] - one[0])


def _multi_label_f1(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Macro-F1 over every label (absent from both: 0) and micro-F1 of 0/1 rows, label by label."""
    scores, tp_all, support_all = [], 0, 0
    for c in range(y.shape[1]):
        tp, support = int((y[:, c] & p[:, c]).sum()), int(y[:, c].sum() + p[:, c].sum())
        scores.append(2 * tp / support if support else 0.0)
        tp_all, support_all = tp_all + tp, support_all + support
    return sum(scores) / len(scores), 2 * tp_all / support_all if support_all else 0.0


def _multi_label_case(rng, n=30, c=3, seeds=(2, 1, 3)):
    """0/1 labels (N, C) and runs of (S, N, C) rows, each label flipped with probability 0.25."""
    y = (rng.random((n, c)) < 0.4).astype(np.int64)
    runs = {f"r{i}": np.where(rng.random((s, n, c)) < 0.25, 1 - y, y) for i, s in enumerate(seeds)}
    return y, runs


def test_multi_label_scores_match_scikit_learn_and_a_label_by_label_count():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(8)
    y, runs = _multi_label_case(rng, n=200, c=5)
    y[:, 4] = 0
    runs["r0"][..., 4] = 0  # label 4: in no text, predicted by r1 and r2 only
    ids, run_ids, sets = counting.label_set_ids(y, runs)
    assert np.array_equal(sets[ids], y) and np.array_equal(sets[run_ids["r2"]], runs["r2"])
    for row in compare(ids, run_ids, n_boot=50, n_perm=50, n_perm_f1=50, label_sets=sets):
        preds = runs[row.name]
        assert row.acc == pytest.approx((preds == y).all(axis=2).mean())  # subset accuracy
        macro = np.mean([f1_score(y, p, average="macro", zero_division=0) for p in preds])
        micro = np.mean([f1_score(y, p, average="micro", zero_division=0) for p in preds])
        assert (row.f1, row.f1_micro) == (pytest.approx(macro), pytest.approx(micro))
        assert macro == pytest.approx(np.mean([_multi_label_f1(y, p)[0] for p in preds]))


def test_multi_label_intervals_match_a_naive_bootstrap_with_the_same_seed():
    # The naive way: draw each resample's example indices as resample_counts does (one
    # rng.integers per resample when the examples have many patterns), then each encoder's
    # seeds, and score every resampled run label by label.
    rng = np.random.default_rng(9)
    y, runs = _multi_label_case(rng)
    ids, run_ids, sets = counting.label_set_ids(y, runs)
    stacked = np.vstack([ids, *run_ids.values()]).T
    assert len(counting.unique_rows(stacked, len(sets))[0]) * 8 > len(y)  # the per-index draws
    n_boot, n = 300, len(y)
    fast = bootstrap_intervals(ids, run_ids, n_boot=n_boot, seed=3, label_sets=sets)

    draw = np.random.default_rng(3)
    picks = [draw.integers(0, n, size=n, dtype=np.int32) for _ in range(n_boot)]
    seed_picks = {}
    for s in sorted({len(p) for p in runs.values()}, key=[len(p) for p in runs.values()].index):
        seed_picks[s] = draw.integers(0, s, (n_boot, s)) if s > 1 else np.zeros((n_boot, 1), int)
    for name, preds in runs.items():
        scores = np.zeros((3, n_boot))  # subset accuracy, macro-F1, micro-F1
        for b, pick in enumerate(picks):
            for seed in seed_picks[len(preds)][b]:
                p, t = preds[seed][pick], y[pick]
                scores[:, b] += [(p == t).all(axis=1).mean(), *_multi_label_f1(t, p)]
        scores /= len(preds)
        naive = [tuple(np.percentile(v, [2.5, 97.5])) for v in scores]
        assert len(fast[name]) == 3
        for got, want in zip(fast[name], naive, strict=True):
            assert got == pytest.approx(want, abs=1e-12)


def test_multi_label_f1_test_matches_every_swap_counted():
    # Few examples where the runs differ: the exact permutation p-value is a count over all
    # 2^m swaps of those examples, each recounted label by label.
    rng = np.random.default_rng(10)
    y, runs = _multi_label_case(rng, n=40, c=3, seeds=(2, 2))
    a, b = runs["r0"], runs["r1"].copy()
    same = np.arange(40) >= 11  # b agrees with a on all but the first 11 examples
    b[:, same] = a[:, same]
    differ = np.flatnonzero((a != b).any(axis=(0, 2)))
    assert 8 <= len(differ) <= 11

    def statistic(pa, pb):
        mean = [np.mean([_multi_label_f1(y, p)[0] for p in ps]) for ps in (pa, pb)]
        return abs(mean[0] - mean[1])

    observed = statistic(a, b)
    hits = 0
    for mask in range(2 ** len(differ)):
        swap = np.zeros(40, dtype=bool)
        swap[differ[[(mask >> i) & 1 == 1 for i in range(len(differ))]]] = True
        w = swap[None, :, None]
        hits += statistic(np.where(w, b, a), np.where(w, a, b)) >= observed - 1e-9
    exact = hits / 2 ** len(differ)
    ids, run_ids, sets = counting.label_set_ids(y, {"a": a, "b": b})
    fast = macro_f1_p_value(ids, run_ids["a"], run_ids["b"], 20_000, 0, sets)
    assert fast == pytest.approx(exact, abs=0.015)
    assert 0.02 < exact < 0.9  # the case says something
    # Label sets as whole classes would test another statistic: here another p-value.
    assert abs(macro_f1_p_value(ids, run_ids["a"], run_ids["b"], 20_000) - exact) > 0.03


def test_multi_label_dense_and_segment_sum_counting_agree(monkeypatch):
    y, runs = _multi_label_case(np.random.default_rng(11), n=300, c=6, seeds=(2, 2, 1))
    ids, run_ids, sets = counting.label_set_ids(y, runs)
    kwargs = {"n_boot": 100, "n_perm": 100, "n_perm_f1": 100, "label_sets": sets}
    dense = compare(ids, run_ids, **kwargs)
    monkeypatch.setattr(counting, "DENSE_LIMIT", 0)  # as with many labels and rows
    assert compare(ids, run_ids, **kwargs) == dense
    assert all(r.f1_micro_ci is not None for r in dense)
