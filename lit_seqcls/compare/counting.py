"""Class counts of many resamples or permutations at once: the vectorised core of ``stats``.

A score such as macro-F1 depends on the test examples only through per-class counts (hits,
predictions, labels). ``ClassSums`` turns a batch of example weights (how often a resample drew
each example, or whether a permutation swapped it) into those counts for every row at once.

Multi-label data is counted per label: an example adds to every label of its set (a 0/1 row
per example, ``ClassSums``' 2-D groups), and its per-label hits, predictions and labels add up
over examples just as single-label classes do, so one code path serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

CHUNK_VALUES = 2_000_000  # random draws held at once (memory stays ~tens of MB)
DENSE_LIMIT = 2**25  # entries of a dense class-indicator matrix (128 MB of float32)


def unique_rows(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_inverse=True, return_counts=True)`` for rows of class ids
    in ``[0, k)``: the distinct rows (in the same, lexicographic order), each row's index among
    them and their counts. Each row becomes one integer (its digits in base ``k``, renumbered
    before they could overflow), so it takes 1-D sorts: 25,000 rows of 23 columns took 1.2 s
    through ``axis=0`` (a sort of row records) and 0.06 s so.

    Example:
        >>> patterns, inverse, counts = unique_rows(np.array([[1, 0], [0, 1], [1, 0]]), 2)
        >>> patterns.tolist(), inverse.tolist(), counts.tolist()
        ([[0, 1], [1, 0]], [1, 0, 1], [1, 2])
    """
    key = np.zeros(len(rows), dtype=np.int64)
    for column in rows.T:
        if len(key) and (int(key.max()) + 1) * k >= 2**62:
            key = np.unique(key, return_inverse=True)[1].reshape(-1)  # ranks keep the order
        key = key * k + column
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    return rows[first], inverse.reshape(-1), counts


def resample_counts(
    which: np.ndarray, n_patterns: int, rows: int, rng: np.random.Generator
) -> np.ndarray:
    """How often each pattern occurs in ``rows`` resamples of the N examples: (rows, P) float32.

    Both ways are exact: N draws with replacement counted per pattern or, when there are few
    patterns (cheaper then), one multinomial draw over the patterns' frequencies.
    """
    n = len(which)
    if n_patterns * 8 <= n:
        freq = np.bincount(which, minlength=n_patterns) / n
        return rng.multinomial(n, freq, size=rows).astype(np.float32)
    counts = np.empty((rows, n_patterns), dtype=np.float32)
    for row in counts:  # one resample at a time: its draws stay in the cache
        row[:] = np.bincount(
            which[rng.integers(0, n, size=n, dtype=np.int32)], minlength=n_patterns
        )
    return counts


class ClassSums:
    """Per-class sums of weighted columns, for many weight rows at once.

    Each group is a 1-D ``keys[g]`` of class ids: column ``m`` adds ``scale[m]`` times the row's
    weight ``w[:, m]`` to class ``keys[g][m]``; or a 2-D (M, K) array of small integers (a
    multi-label example's 0/1 label row, or a signed difference of two) without a scale:
    column ``m`` adds ``keys[g][m, c]`` times its weight to every class ``c``. With few classes it
    is one float32 matrix product (BLAS); with many (the dense matrix would pass
    ``DENSE_LIMIT`` entries) a sorted segment sum per group over its nonzero entries. Weights
    and scales are small integers, so float32 sums are exact.

    Example:
        >>> sums = ClassSums([np.array([2, 0, 2])], 3, [np.array([1, 1, -1], dtype=np.float32)])
        >>> sums(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
        array([[[ 2.,  0., -2.]]])
        >>> ClassSums([np.array([[1, 0, 1], [0, 1, 1]])], 3)(np.array([[1.0, 2.0]]))
        array([[[1., 2., 3.]]])
    """

    def __init__(
        self, keys: list[np.ndarray], k: int, scales: list[np.ndarray | None] | None = None
    ) -> None:
        scales = scales or [None] * len(keys)
        m = len(keys[0]) if keys else 0
        self.k, self.groups = k, len(keys)
        self.dense: np.ndarray | None = None
        if m * k * len(keys) <= DENSE_LIMIT:
            self.dense = np.zeros((m, len(keys) * k), dtype=np.float32)  # (M, G·K)
            for g, (key, scale) in enumerate(zip(keys, scales, strict=True)):
                if key.ndim == 2:  # (M, K): a row of class values per column
                    self.dense[:, g * k : (g + 1) * k] = key
                else:
                    self.dense[np.arange(m), g * k + key] = 1.0 if scale is None else scale
            return
        self.sparse = []
        for key, scale in zip(keys, scales, strict=True):
            if key.ndim == 2:  # its nonzero (class, column) entries, in class order
                ordered, order = np.nonzero(key.T)
                scale = key[order, ordered]
            else:
                order = np.argsort(key, kind="stable")
                ordered = key[order]
                scale = None if scale is None else scale[order]
            n = len(order)
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else order
            self.sparse.append((order, starts, ordered[starts], scale))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """(G, r, K) float64 sums for the weight rows ``w`` (r, M)."""
        if self.dense is not None:
            out = w.astype(np.float32, copy=False) @ self.dense  # (r, G·K)
            return out.reshape(len(w), self.groups, self.k).transpose(1, 0, 2).astype(np.float64)
        out = np.zeros((self.groups, len(w), self.k))
        for g, (order, starts, classes, scale) in enumerate(self.sparse):
            if len(order):
                cols = w[:, order].astype(np.float64)
                out[g][:, classes] = np.add.reduceat(
                    cols if scale is None else cols * scale, starts, axis=1
                )
        return out


def macro_f1_of_counts(
    tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray, every_class: bool = False
) -> np.ndarray:
    """Macro-F1 per row from per-class counts (B, K). Classes absent from both are left out
    (single-label, as torchmetrics' multiclass and scikit-learn average); with ``every_class``
    they count with F1 0 (multi-label: the mean over all K labels, as torchmetrics'
    ``MultilabelF1Score`` and scikit-learn's ``zero_division=0``)."""
    support = predicted + actual  # 2·tp + fp + fn
    present = support > 0
    f1 = np.divide(2 * tp, support, out=np.zeros_like(support, dtype=np.float64), where=present)
    if every_class:
        return f1.sum(axis=1) / max(f1.shape[1], 1)
    return f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def micro_f1_of_counts(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Micro-F1 per row from per-class counts (B, K): every (example, class) pair pooled."""
    support = (predicted + actual).sum(axis=1)  # (B,)
    return np.divide(
        2 * tp.sum(axis=1), support, out=np.zeros_like(support, dtype=np.float64), where=support > 0
    )


def chunk_rows(total: int, width: int) -> list[int]:
    """Row counts that add up to ``total``, each chunk holding about ``CHUNK_VALUES`` draws."""
    step = max(1, CHUNK_VALUES // max(width, 1))
    return [min(step, total - i) for i in range(0, total, step)]


def label_set_ids(
    labels: np.ndarray, runs: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """0/1 label rows as label-set ids: ``labels`` (N, C) and ``runs`` name → (S, N, C) become
    (N,) and (S, N) ids and the (K, C) ``label_sets`` of the ids (``compare``'s arguments).

    Example:
        >>> a = np.array([[[1, 1], [0, 0]]])  # one seed, two examples, two labels
        >>> y, runs, sets = label_set_ids(np.array([[1, 0], [1, 1]]), {"a": a})
        >>> y.tolist(), runs["a"].tolist(), sets.tolist()
        ([1, 2], [[2, 0]], [[0, 0], [1, 0], [1, 1]])
    """
    n, c = np.shape(labels)
    rows = [np.asarray(labels).reshape(n, c)]
    rows += [np.asarray(p).reshape(-1, c) for p in runs.values()]  # (S·N, C) each
    sets, ids, _ = unique_rows((np.concatenate(rows) != 0).astype(np.int64), 2)
    sets = sets.astype(np.int64)
    out, start = {}, n
    for name, rows_ in zip(runs, rows[1:], strict=True):
        out[name] = ids[start : start + len(rows_)].reshape(-1, n)
        start += len(rows_)
    return ids[:n], out, sets


def bootstrap_scores(
    labels: np.ndarray,
    preds: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    label_sets: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Accuracy and macro-F1 of every run (row of ``preds``) on ``n_boot`` paired resamples,
    and micro-F1 with ``label_sets`` (multi-label: F1 per label, accuracy exact matches).

    Examples with the same label and the same prediction in every run are interchangeable, so a
    resample is counted per distinct pattern (P of them, often far fewer than N) and each score
    is a sum of pattern counts. Returns two (three) (B, R) arrays.
    """
    n, runs = len(labels), len(preds)
    k = int(max(labels.max(initial=0), preds.max(initial=0))) + 1
    patterns, which, _ = unique_rows(np.vstack([labels, preds]).T, k)
    which = which.astype(np.int32)  # (N,) pattern of each example
    y, p = patterns[:, 0], patterns[:, 1:].T  # (P,), (R, P)
    if label_sets is None:
        keys, scales = [y], [None]
        for r in range(runs):
            keys += [y, p[r]]  # hits by true class; predictions by class
            scales += [(p[r] == y).astype(np.float32), None]
        sums = ClassSums(keys, k, scales)
    else:  # per label: the labels, then per run its hits and predictions (0/1 rows)
        truth = label_sets[y]  # (P, C)
        keys = [truth] + [
            m for r in range(runs) for m in (truth & label_sets[p[r]], label_sets[p[r]])
        ]
        sums = ClassSums(keys, label_sets.shape[1])
        exact = (p == y).T.astype(np.float32)  # (P, R): subset accuracy's hits
    scores = [np.empty((n_boot, runs)) for _ in range(2 if label_sets is None else 3)]
    acc, f1 = scores[:2]
    done = 0
    for rows in chunk_rows(n_boot, n):
        counts = resample_counts(which, len(y), rows, rng)  # (r, P)
        tables = sums(counts)  # (1 + 2R, r, K)
        tp, predicted = tables[1::2], tables[2::2]  # (R, r, K) each
        if label_sets is None:
            acc[done : done + rows] = (tp.sum(axis=2) / n).T
        else:
            acc[done : done + rows] = (counts @ exact).astype(np.float64) / n  # exact sums
        for r in range(runs):
            f1[done : done + rows, r] = macro_f1_of_counts(
                tp[r], predicted[r], tables[0], label_sets is not None
            )
            if label_sets is not None:
                scores[2][done : done + rows, r] = micro_f1_of_counts(
                    tp[r], predicted[r], tables[0]
                )
        done += rows
    return tuple(scores)


def class_swaps(labels, a, b, k, y, pa, pb) -> tuple[list, np.ndarray, Callable]:
    """``macro_f1_p_value``'s counts by class (single-label): per seed the (tp, predicted) of
    ``a`` and of ``b`` (each (1, K)), the labels' counts, and ``moved``: what swapping examples
    of the patterns (``y``, ``pa``, ``pb``) moves from ``b`` to ``a``, (2S, r, K) per weight row."""
    n, s = len(labels), len(a)
    ones = np.ones((1, n), dtype=np.float32)
    label_n = ClassSums([labels], k)(ones)[0]  # (1, K): swaps leave it alone
    hits_a, hits_b = (a == labels).astype(np.float32), (b == labels).astype(np.float32)
    base = [
        ClassSums([labels, a[i], labels, b[i]], k, [hits_a[i], None, hits_b[i], None])(ones)
        for i in range(s)
    ]
    keys, scales = [], []  # per seed: hits by true class, predictions by class (in and out)
    for i in range(s):
        keys += [y, pb[i], pa[i]]
        scales += [(pb[i] == y) - (pa[i] == y).astype(np.float32), None, -np.ones(len(y))]
    sums = ClassSums(keys, k, scales)

    def moved(x: np.ndarray) -> np.ndarray:
        t = sums(x)  # (3S, r, K)
        out = np.empty((2 * s, *t.shape[1:]))
        out[0::2], out[1::2] = t[0::3], t[1::3] + t[2::3]
        return out

    return base, label_n, moved


def label_swaps(labels, a, b, label_sets, y, pa, pb) -> tuple[list, np.ndarray, Callable]:
    """``class_swaps`` per label (multi-label): ids are label sets, ``label_sets`` their rows."""
    truth = label_sets[labels]  # (N, C)
    label_n = truth.sum(axis=0, dtype=np.float64)[None]  # (1, C)
    base = []
    for i in range(len(a)):
        pred_a, pred_b = label_sets[a[i]], label_sets[b[i]]  # (N, C) each
        counts = (truth & pred_a, pred_a, truth & pred_b, pred_b)
        base.append([x.sum(axis=0, dtype=np.float64)[None] for x in counts])
    keys, ys = [], label_sets[y]  # per seed: hits and predictions per label, b's minus a's
    for i in range(len(pa)):
        got_a, got_b = label_sets[pa[i]], label_sets[pb[i]]  # (G, C) each
        keys += [(ys & got_b) - (ys & got_a), got_b - got_a]
    return base, label_n, ClassSums(keys, label_sets.shape[1])
