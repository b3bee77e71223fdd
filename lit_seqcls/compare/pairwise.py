"""Every pair of rows' paired accuracy test (issue #17), besides each row's test against the best.

``pairwise_tests`` runs ``stats.accuracy_p_value`` on each pair of a comparison's rows (exact
McNemar where both have one seed, the sign-flip permutation test otherwise); the report writes
them as ``pairwise.csv``, a matrix of p-values in ``comparison.md`` (``pairwise_matrix``) and
under ``statistics`` in ``results.json``. IMDB's size (25,000 test texts, seven encoders with
three seeds and the one-seed reference row: 28 pairs) takes 0.22 s of CPU (one thread; the
intervals and tests against the best: 0.4-0.9 s).
A multi-label comparison's ids are label sets, so its pairs test subset accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lit_seqcls.compare.stats import PERMUTATIONS, accuracy_p_value


@dataclass(frozen=True)
class PairTest:
    """``row`` against ``other``: the difference of their mean test accuracies (row minus
    other) and the paired test's p-value and name."""

    row: str
    other: str
    acc_difference: float
    p_value: float
    test: str

    def record(self) -> dict[str, Any]:
        """As a line of pairwise.csv and an entry of results.json."""
        return asdict(self)


def pairwise_tests(
    labels: np.ndarray,
    runs: Mapping[str, np.ndarray],
    n_perm: int = PERMUTATIONS,
    seed: int = 0,
    best: str | None = None,
) -> list[PairTest]:
    """Each pair of ``runs`` (in their order, ``row`` before ``other``) tested for equal accuracy.

    Args:
        labels: (N,) true class ids.
        runs: name → (S, N) predicted class ids, one row per seed, paired with ``labels``.
        n_perm: permutations of a test with several seeds (one seed each: exact McNemar).
        seed: the permutations' seed, the same for every pair.
        best: the best row of ``stats.compare``: its pairs are tested the way ``compare`` tests
            against it (the best second), so they give its p-values (a permutation test with a
            given seed draws differently when the two swap places).

    Example:
        >>> y = np.array([0, 1] * 20)
        >>> worse = np.where(np.arange(40) < 8, 1 - y, y)
        >>> for t in pairwise_tests(y, {"a": y, "b": worse, "c": y}):
        ...     print(t.row, t.other, round(t.acc_difference, 3), round(t.p_value, 4), t.test)
        a b 0.2 0.0078 McNemar exact
        a c 0.0 1.0 McNemar exact
        b c -0.2 0.0078 McNemar exact
    """
    labels = np.asarray(labels)
    runs = {name: np.asarray(p).reshape(-1, len(labels)) for name, p in runs.items()}
    acc = {name: float((p == labels).mean()) for name, p in runs.items()}
    names = list(runs)
    tests = []
    for i, row in enumerate(names):
        for other in names[i + 1 :]:
            a, b = (other, row) if row == best else (row, other)
            p, test = accuracy_p_value(labels, runs[a], runs[b], n_perm, seed)
            tests.append(PairTest(row, other, acc[row] - acc[other], p, test))
    return tests


def pairwise_matrix(tests: Sequence[PairTest]) -> list[str]:
    """The p-values of ``tests`` as a markdown table, upper triangle (2 significant digits);
    no lines for fewer than two rows.

    Example:
        >>> tests = [PairTest("a", "b", 0.1, 0.0123, "McNemar exact"),
        ...          PairTest("a", "c", 0.0, 1.0, "McNemar exact"),
        ...          PairTest("b", "c", -0.1, 0.2, "McNemar exact")]
        >>> print("\\n".join(pairwise_matrix(tests)))
        | p (acc) | b | c |
        |---|---|---|
        | a | 0.012 | 1 |
        | b |  | 0.2 |
    """
    if not tests:
        return []
    names = list(dict.fromkeys(n for t in tests for n in (t.row, t.other)))
    p = {(t.row, t.other): t.p_value for t in tests}
    lines = ["| p (acc) | " + " | ".join(names[1:]) + " |", "|---" * len(names) + "|"]
    for i, row in enumerate(names[:-1]):
        cells = [f"{p[row, other]:.2g}" if j > i else "" for j, other in enumerate(names[1:], 1)]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines
