"""How sure is the ranking? Confidence intervals and paired tests over the same test examples.

Every run of a comparison predicts the same test examples, so the encoders are compared *paired*:
each resample or permutation treats one test example the same way for every encoder. Pure NumPy,
vectorised and deterministic for a given ``seed``. IMDB's size (25,000 test examples, seven
encoders and a reference row, 2,000 resamples) with three seeds each, the worst case (the more
distinct per-example outcomes, the more work): 0.64-0.78 s of CPU time for the intervals and
0.95-1.09 s for the whole ``compare`` (one thread; wall time on 2 cores shared by a dozen
processes: 4-10 s). The distinct outcomes are found through one integer per example
(``counting.unique_rows``: 0.86-0.92 s and 1.34-1.45 s before, with ``np.unique(axis=0)``).

- **Confidence intervals** (``bootstrap_intervals``): percentile intervals of test accuracy and
  macro-F1. Each resample draws ``n`` test examples with replacement, the same draw for every
  encoder. With several seeds it is a two-level bootstrap: each resample also draws the encoder's
  seeds with replacement and averages their scores on the resampled examples, so the interval
  covers both the test sample and training randomness.
- **Tests against the best** (``accuracy_p_value``, ``macro_f1_p_value``): with one seed each,
  exact McNemar (a two-sided binomial test on the discordant examples: one encoder right, the
  other wrong); with several, a paired permutation (sign-flip) test of the difference in
  per-example correctness averaged over each encoder's seeds. For macro-F1, a paired permutation
  test that swaps the two encoders' predictions of an example (all seeds at once, seed k paired
  with seed k); its statistic is the difference in mean macro-F1.
- ``compare`` puts them together: the best encoder is the one with the highest mean test
  accuracy, and an encoder whose accuracy test against it gives p ≥ ``alpha`` is *tied* with it.
  Choosing the best on the test set and then testing against it is a post-hoc comparison: the
  p-values are not corrected for it (nor for testing several encoders).

**Multi-label** (``label_sets`` given): the class ids are label-set ids, so accuracy (subset
accuracy) and its tests are exact matches of sets, unchanged; F1 is counted per label, as the
table prints it. An example adds its per-label hits, predictions and labels (``label_sets``'
rows), which add up over examples, so a resample or permutation gives per-label counts through
the same ``ClassSums`` → macro-F1 over every label (a label absent from both counts 0, as
torchmetrics and scikit-learn average it) and, in the same pass, micro-F1 (the intervals only).
At the news-topic-tags size (7,532 test texts, 33 labels, seven encoders with three seeds and
the reference; nearly every text its own pattern) the whole ``compare`` takes 3.8-4.9 s of CPU
(one thread; 0.7-1.0 s the intervals, ~0.5 s each F1 test). Counting each label set as one class,
as before, took 3.1 s with 20 distinct sets and 17-19 s for the intervals alone with 13,519.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lit_seqcls.compare.counting import (
    ClassSums,
    bootstrap_scores,
    chunk_rows,
    class_swaps,
    label_swaps,
    macro_f1_of_counts,
    micro_f1_of_counts,
    unique_rows,
)

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2_000
PERMUTATIONS = 10_000  # the accuracy test is cheap at any count
F1_PERMUTATIONS = 2_000  # each one recounts every class's F1


@dataclass
class EncoderStats:
    """One encoder's scores, intervals and test against the best (``p_*`` of the best are 1).

    ``acc`` and ``f1`` are means over seeds; ``acc_ci``/``f1_ci`` 95% percentile intervals (with
    the default ``level``); ``acc_test`` names the test that gave ``p_acc``. Multi-label rows
    also have micro-F1 (``f1_micro``, ``f1_micro_ci``; None otherwise).
    """

    name: str
    seeds: int
    acc: float
    acc_ci: tuple[float, float]
    f1: float
    f1_ci: tuple[float, float]
    p_acc: float
    p_f1: float
    acc_test: str
    best: bool
    tied: bool
    f1_micro: float | None = None
    f1_micro_ci: tuple[float, float] | None = None


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean F1 over the classes that occur in ``labels`` or ``preds`` (as torchmetrics and
    scikit-learn average it).

    Example:
        >>> macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))  # F1 2/3 and 4/5
        0.7333333333333334
    """
    k = int(max(labels.max(initial=0), preds.max(initial=0))) + 1
    hit = (labels == preds).astype(np.float32)
    tp, predicted, actual = ClassSums([labels, preds, labels], k, [hit, None, None])(
        np.ones((1, len(labels)), dtype=np.float32)
    )
    return float(macro_f1_of_counts(tp, predicted, actual)[0])


def multilabel_f1(
    labels: np.ndarray, preds: np.ndarray, label_sets: np.ndarray
) -> tuple[float, float]:
    """(macro-F1 over every label, micro-F1) of label-set ids ``labels`` and ``preds`` (N,);
    ``label_sets`` (K, C): the labels of each set id.

    Example:
        >>> sets = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]])
        >>> [round(f, 3) for f in multilabel_f1(np.array([0, 1]), np.array([2, 3]), sets)]
        [0.667, 0.667]
    """
    y, p = label_sets[labels], label_sets[preds]  # (N, C) each
    counts = [x.sum(axis=0, dtype=np.float64)[None] for x in (y & p, p, y)]  # (1, C) each
    return float(macro_f1_of_counts(*counts, every_class=True)[0]), float(
        micro_f1_of_counts(*counts)[0]
    )


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``2·P(X ≤ min(b, c))`` for ``X ~ Binomial(b + c, ½)``.

    Args:
        b: examples only the first encoder gets right.
        c: examples only the second encoder gets right.

    Example:
        >>> round(mcnemar_exact(10, 2), 4), mcnemar_exact(3, 3), mcnemar_exact(0, 0)
        (0.0386, 1.0, 1.0)
    """
    n, m = b + c, min(b, c)
    if n == 0 or 2 * m >= n:
        return 1.0
    k = np.arange(1, m + 1)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log((n - k + 1) / k))])  # log C(n, 0..m)
    top = log_comb.max()  # log-sum-exp: C(25000, k) overflows a float
    log_tail = top + math.log(np.exp(log_comb - top).sum()) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def bootstrap_intervals(
    labels: np.ndarray,
    runs: Mapping[str, np.ndarray],
    n_boot: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
    label_sets: np.ndarray | None = None,
) -> dict[str, tuple[tuple[float, float], ...]]:
    """Percentile intervals of accuracy and macro-F1 per encoder: ``{name: (acc_ci, f1_ci)}``;
    multi-label: ``(acc_ci, f1_ci, f1_micro_ci)``.

    Args:
        labels: (N,) true class ids of the test examples.
        runs: encoder name → (S, N) predicted class ids, one row per seed, examples in the
            order of ``labels``.
        n_boot: resamples; every encoder sees the same resampled examples (paired).
        level: coverage of the interval.
        seed: seed of the resampling.
        label_sets: multi-label: (K, C) 0/1, the labels of each class id (a label set); the
            F1 intervals are then of per-label macro-F1 and micro-F1.

    Example:
        >>> labels = np.array([0, 1] * 50)
        >>> ci = bootstrap_intervals(labels, {"a": labels[None]}, n_boot=200)["a"]
        >>> ci
        ((1.0, 1.0), (1.0, 1.0))
    """
    rng = np.random.default_rng(seed)
    runs = {name: np.asarray(p).reshape(-1, len(labels)) for name, p in runs.items()}
    preds = np.concatenate(list(runs.values()))
    scores = bootstrap_scores(labels, preds, n_boot, rng, label_sets)  # each (B, R)
    tail = (1 - level) / 2 * 100
    rows = np.arange(n_boot)[:, None]
    out, start, picks = {}, 0, {}
    for name, preds in runs.items():
        s = len(preds)
        if s not in picks:  # second level: resample the seeds (the same draw for equal counts)
            picks[s] = rng.integers(0, s, size=(n_boot, s)) if s > 1 else np.zeros((n_boot, 1))
        cols = start + picks[s].astype(np.intp)  # (B, S) columns of this encoder's runs
        start += s
        out[name] = tuple(
            tuple(float(x) for x in np.percentile(v[rows, cols].mean(axis=1), [tail, 100 - tail]))
            for v in scores
        )
    return out


def accuracy_p_value(
    labels: np.ndarray,
    preds_a: np.ndarray,
    preds_b: np.ndarray,
    n_perm: int = PERMUTATIONS,
    seed: int = 0,
) -> tuple[float, str]:
    """Paired test of equal accuracy: (p-value, name of the test).

    One seed each (``preds`` of shape (N,) or (1, N)): exact McNemar. Several: a sign-flip
    permutation test on ``d_i`` = per-example correctness of ``a`` averaged over its seeds minus
    that of ``b``; ``p = (1 + #{|Σ ±d_i| ≥ |Σ d_i|}) / (1 + n_perm)``.

    Example:
        >>> y = np.array([0, 1, 0, 1])
        >>> accuracy_p_value(y, y, y)
        (1.0, 'McNemar exact')
    """
    ca = np.asarray(preds_a).reshape(-1, len(labels)) == labels  # (Sa, N)
    cb = np.asarray(preds_b).reshape(-1, len(labels)) == labels  # (Sb, N)
    if len(ca) == 1 and len(cb) == 1:
        return mcnemar_exact(int((ca & ~cb).sum()), int((~ca & cb).sum())), "McNemar exact"
    # d_i · Sa · Sb: integers, so ties with the observed statistic compare exactly.
    d = len(cb) * ca.sum(axis=0) - len(ca) * cb.sum(axis=0)  # (N,)
    # Flipping the signs of the n_v examples with |d_i| = v changes Σ d_i by a multiple of v
    # whose count of flips is Binomial(n_v, ½): draw those counts instead of N coin flips.
    values, counts = np.unique(d[d != 0], return_counts=True)  # (V,) each
    observed = abs(int(d.sum()))
    rng = np.random.default_rng(seed)
    flips = rng.binomial(counts, 0.5, size=(n_perm, len(values)))  # (n_perm, V)
    statistic = np.abs(observed * np.sign(d.sum()) - 2 * flips @ values)  # (n_perm,)
    return (1 + int((statistic >= observed).sum())) / (1 + n_perm), "permutation"


def macro_f1_p_value(
    labels: np.ndarray,
    preds_a: np.ndarray,
    preds_b: np.ndarray,
    n_perm: int = PERMUTATIONS,
    seed: int = 0,
    label_sets: np.ndarray | None = None,
) -> float:
    """Paired permutation test of equal mean macro-F1.

    Each permutation swaps, per test example with probability ½, the predictions of ``a`` and
    ``b`` (all seeds at once; seed k of ``a`` is paired with seed k of ``b``, and only the first
    ``min(Sa, Sb)`` seeds of each take part). Statistic: ``|mean F1(a) - mean F1(b)|``. With
    ``label_sets`` (multi-label, as in ``bootstrap_intervals``) F1 is macro over the labels.

    Example:
        >>> y = np.array([0, 1, 2, 1])
        >>> macro_f1_p_value(y, y, y)
        1.0
    """
    n = len(labels)
    a = np.asarray(preds_a).reshape(-1, n)
    b = np.asarray(preds_b).reshape(-1, n)
    s = min(len(a), len(b))
    a, b = a[:s], b[:s]
    k = int(max(labels.max(initial=0), a.max(initial=0), b.max(initial=0))) + 1
    # Examples with the same label and predictions are interchangeable: swapping X_g of the
    # n_g in pattern g, X_g ~ Binomial(n_g, ½), is the same draw as n_g coin flips. Patterns
    # where a and b agree change nothing when swapped and are left out.
    rows = np.vstack([labels, a, b]).T  # (N, 1 + 2S)
    patterns, _, size = unique_rows(rows[(a != b).any(axis=0)], k)
    y, pa, pb = patterns[:, 0], patterns[:, 1 : 1 + s].T, patterns[:, 1 + s :].T  # (G,), (S, G)
    if label_sets is None:
        base, label_n, moved = class_swaps(labels, a, b, k, y, pa, pb)
    else:
        base, label_n, moved = label_swaps(labels, a, b, label_sets, y, pa, pb)
    every = label_sets is not None

    def statistic(x: np.ndarray) -> np.ndarray:  # x: (r, G) examples swapped per pattern
        sums = moved(x)  # (2S, r, K): per seed, hits and predictions moved from b to a
        diff = 0.0
        for i, (tp_a, pr_a, tp_b, pr_b) in enumerate(base):
            d_tp, d_pred = sums[2 * i], sums[2 * i + 1]
            diff = diff + macro_f1_of_counts(tp_a + d_tp, pr_a + d_pred, label_n, every)
            diff = diff - macro_f1_of_counts(tp_b - d_tp, pr_b - d_pred, label_n, every)
        return np.abs(diff) / s  # (r,)

    observed = statistic(np.zeros((1, len(y))))[0]
    rng = np.random.default_rng(seed)
    hits = 0
    for chunk in chunk_rows(n_perm, len(y)):
        swapped = rng.binomial(size, 0.5, size=(chunk, len(y)))  # (r, G)
        hits += int((statistic(swapped) >= observed - 1e-9).sum())  # float F1: a tolerance
    return (1 + hits) / (1 + n_perm)


def compare(
    labels: np.ndarray,
    runs: Mapping[str, np.ndarray],
    candidates: Sequence[str] | None = None,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    n_perm: int = PERMUTATIONS,
    n_perm_f1: int = F1_PERMUTATIONS,
    alpha: float = ALPHA,
    seed: int = 0,
    label_sets: np.ndarray | None = None,
) -> list[EncoderStats]:
    """Scores, 95% intervals and tests against the best, one ``EncoderStats`` per run name.

    Args:
        labels: (N,) true class ids.
        runs: name → (S, N) predicted class ids (one row per seed), paired with ``labels``.
        candidates: the names that may be the best (default all; the comparison leaves out its
            linear reference row, which is tested against the best like the encoders).
        n_boot: bootstrap resamples of the intervals.
        n_perm: permutations of the accuracy test with several seeds (one seed: exact McNemar).
        n_perm_f1: permutations of the macro-F1 test.
        alpha: an encoder whose accuracy test against the best gives p ≥ ``alpha`` is tied.
        seed: makes every random draw reproducible.
        label_sets: multi-label: (K, C) 0/1, the labels of each class id (a label set, see
            ``counting.label_set_ids``); accuracy is then subset accuracy, F1 per label (macro
            and micro).

    Example:
        >>> y = np.array([0, 1] * 20)
        >>> rows = compare(y, {"a": y, "b": np.where(np.arange(40) < 2, 1 - y, y)}, n_boot=100)
        >>> [(r.name, r.acc, r.best, r.tied, r.acc_test) for r in rows]
        [('a', 1.0, True, True, '—'), ('b', 0.95, False, True, 'McNemar exact')]
    """
    labels = np.asarray(labels)
    runs = {n: np.asarray(p).reshape(-1, len(labels)) for n, p in runs.items()}
    if not runs:
        return []
    acc = {n: float((p == labels).mean()) for n, p in runs.items()}
    if label_sets is None:
        f1 = {n: float(np.mean([macro_f1(labels, row) for row in p])) for n, p in runs.items()}
        micro = dict.fromkeys(runs)
    else:
        both = {
            n: np.mean([multilabel_f1(labels, r, label_sets) for r in p], axis=0)
            for n, p in runs.items()
        }
        f1 = {n: float(v[0]) for n, v in both.items()}
        micro = {n: float(v[1]) for n, v in both.items()}
    pool = [n for n in (runs if candidates is None else candidates) if n in runs] or list(runs)
    best = max(pool, key=lambda n: acc[n])  # the first of equals, in the given order
    intervals = bootstrap_intervals(labels, runs, n_boot=n_boot, seed=seed, label_sets=label_sets)
    rows = []
    for name, preds in runs.items():
        if name == best:
            p_acc, test, p_f1 = 1.0, "—", 1.0
        else:
            p_acc, test = accuracy_p_value(labels, preds, runs[best], n_perm, seed)
            p_f1 = macro_f1_p_value(labels, preds, runs[best], n_perm_f1, seed, label_sets)
        acc_ci, f1_ci, *micro_ci = intervals[name]
        rows.append(
            EncoderStats(
                name=name,
                seeds=len(preds),
                acc=acc[name],
                acc_ci=acc_ci,
                f1=f1[name],
                f1_ci=f1_ci,
                p_acc=p_acc,
                p_f1=p_f1,
                acc_test=test,
                best=name == best,
                tied=p_acc >= alpha,
                f1_micro=micro[name],
                f1_micro_ci=micro_ci[0] if micro_ci else None,
            )
        )
    return rows


def describe(
    rows: Sequence[EncoderStats],
    n_boot: int = BOOTSTRAP_RESAMPLES,
    n_perm: int = PERMUTATIONS,
    n_perm_f1: int = F1_PERMUTATIONS,
    alpha: float = ALPHA,
    references: Collection[str] = (),
) -> str:
    """What ``compare`` computed for ``rows``, in words: the footnote of the comparison table.
    ``references``: rows that were not candidates for the best (the best is then the best
    encoder, and a reference above it is said to be).

    Example:
        >>> y = np.array([0, 1] * 20)
        >>> print(describe(compare(y, {"a": y, "b": 1 - y}, n_boot=10), n_boot=10))
        95% CIs: percentile bootstrap over the test examples (10 resamples; every row ...
    """
    several = any(r.seeds > 1 for r in rows)
    tests = {r.acc_test for r in rows} - {"—"}
    acc_tests = []
    if "McNemar exact" in tests:
        acc_tests.append(
            "exact McNemar (two-sided binomial test on the test examples that exactly one of "
            "the two gets right)" + (" where both have one seed" if several else "")
        )
    if "permutation" in tests:
        acc_tests.append(
            f"a paired sign-flip permutation test ({n_perm:,} permutations) of per-example "
            "correctness averaged over each row's seeds"
        )
    best = next((r for r in rows if r.best), None)
    # A reference is the best only when no encoder has predictions; then it is not "an encoder".
    among = (
        "encoder row" if references and best is not None and best.name not in references else "row"
    )
    return (
        f"95% CIs: percentile bootstrap over the test examples ({n_boot:,} resamples; every row "
        "resamples the same examples, so the rows are paired)"
        + (
            "; with several seeds a two-level bootstrap: each resample also draws the row's "
            "seeds with replacement and averages their scores"
            if several
            else ""
        )
        + f". p vs best: each row against the best {among} ({best.name if best else '—'}, the "
        + (
            "highest mean test accuracy of the encoders; a reference row is never the best)"
            if among == "encoder row"
            else "highest mean test accuracy)"
        )
        + " on the same test examples; accuracy: "
        + (" and ".join(acc_tests) or "no other row")
        + f"; macro-F1: a paired permutation test ({n_perm_f1:,} permutations) swapping the "
        "two rows' predictions of an example (all seeds at once, seed k with seed k; a row "
        "with more seeds than the other uses its first ones). "
        f"Tied with best: accuracy p ≥ {alpha:g}. The best was chosen on the same test set "
        "it is then tested on (a post-hoc comparison), and the p-values are not corrected "
        "for testing several rows."
        + "".join(
            f" The reference row {r.name} has a higher test accuracy than the best encoder "
            f"({r.acc:.3f} against {best.acc:.3f}; "
            + ("p < 0.001, " if r.p_acc < 0.001 else f"p = {r.p_acc:.3f}, ")
            + (
                "a significant difference: 'no (higher)' in its tie column)."
                if r.p_acc < alpha
                else "not a significant difference)."
            )
            for r in rows
            if best is not None and r.name in references and r.acc > best.acc
        )
        + (
            " Multi-label: accuracy (its CI and tests) is subset accuracy, a text's whole label "
            "set right or not; the F1 CI and F1 test count each label's hits in the resampled "
            "or swapped texts (macro-F1 over the labels, as printed), and the micro-F1 CI comes "
            "from the same resamples."
            if any(r.f1_micro_ci is not None for r in rows)
            else ""
        )
    )
