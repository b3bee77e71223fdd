"""The pictures the analysis callbacks draw, as matplotlib ``Figure`` objects saved to PNG.

Figures are built with the object API (no ``pyplot``), so drawing never touches global state or
needs a display. Sizes grow with the number of classes/tokens so 20 classes stay readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 120


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def confusion_matrix_figure(counts: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Row-normalised confusion matrix ``counts`` ``(C, C)`` (rows: true, columns: predicted).

    Each cell shows the share of its true class; with up to 10 classes the raw count too.

    Example:
        >>> fig = confusion_matrix_figure(np.array([[3, 1], [0, 4]]), ["neg", "pos"], "val")
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['neg', 'pos']
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.shape[0]
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)  # (C, C)
    side = max(4.5, 0.42 * n + 2.5)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true class (row-normalised)")
    small = n <= 10
    for i in range(n):
        for j in range(n):
            if not small and counts[i, j] == 0:
                continue  # an empty cell says 0 by its colour; 400 zeros would be noise
            text = f"{share[i, j]:.0%}\n({int(counts[i, j])})" if small else f"{share[i, j]:.0%}"
            color = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9 if small else 7)
    ax.set_xticks(range(n), list(class_names), rotation=45 if small else 90, ha="right")
    ax.set_yticks(range(n), list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title}\naccuracy {accuracy:.1%} on {int(counts.sum()):,} texts")
    return fig


def token_heatmap_figure(
    tokens: Sequence[Sequence[str]],
    weights: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    title: str,
    colorbar_label: str,
) -> Figure:
    """Tokens × examples heatmap: one row per example, each cell a token coloured by its weight.

    Rows have different lengths (no padding is drawn); each row is scaled by its own maximum, so
    a long text's small weights stay visible.

    Example:
        >>> tokens, weights = [["a", "b"], ["c"]], [[0.2, 0.8], [1.0]]
        >>> fig = token_heatmap_figure(tokens, weights, ["x", "y"], "title", "weight")
        >>> len(fig.axes[0].texts)
        3
    """
    width = max(len(row) for row in tokens)
    grid = np.full((len(tokens), width), np.nan)  # (N, T): NaN where a row has no token
    for r, row in enumerate(weights):
        row = np.asarray(row, dtype=float)
        grid[r, : len(row)] = row / max(row.max(), 1e-12)
    fig = Figure(figsize=(max(6.0, 0.62 * width + 3.5), 0.62 * len(tokens) + 1.8))
    ax = fig.add_subplot()
    cmap = _reds()
    image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for r, row in enumerate(tokens):
        for c, token in enumerate(row):
            color = "white" if grid[r, c] > 0.65 else "black"
            ax.text(c, r, _short(token), ha="center", va="center", fontsize=8, color=color)
    ax.set_yticks(range(len(row_labels)), list(row_labels), fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel("tokens (the window around the highest weights for long texts)")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    colorbar.set_label(colorbar_label)
    ax.set_title(title)
    return fig


def length_accuracy_figure(
    bucket_labels: Sequence[str], accuracy: Sequence[float], counts: Sequence[int], title: str
) -> Figure:
    """Bar chart of accuracy per length bucket, each bar annotated with its number of texts.

    Example:
        >>> fig = length_accuracy_figure(["1–5", "6–9"], [0.9, 0.7], [10, 12], "val")
        >>> len(fig.axes[0].patches)
        2
    """
    fig = Figure(figsize=(max(6.0, 0.75 * len(bucket_labels) + 2.5), 4.2))
    ax = fig.add_subplot()
    bars = ax.bar(range(len(accuracy)), accuracy, color="#4C72B0")
    for bar, n in zip(bars, counts, strict=True):
        ax.annotate(
            f"n={n}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(range(len(bucket_labels)), list(bucket_labels), rotation=30, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("text length in tokens (buckets of about equal size)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def reliability_figure(
    before: Sequence[Mapping[str, float]],
    after: Sequence[Mapping[str, float]],
    ece: tuple[float, float],
    temperature: float,
    title: str,
) -> Figure:
    """Reliability diagrams before and after temperature scaling, side by side.

    ``before``/``after``: one row per confidence bin (``lo``, ``hi``, ``count``, ``confidence``,
    ``accuracy``, as ``lit_seqcls.calibration.reliability`` gives them); each bar is a bin's
    accuracy, the diagonal is perfect calibration, the gap to it is shaded red.

    Example:
        >>> rows = [{"lo": 0.5, "hi": 1.0, "count": 4, "confidence": 0.9, "accuracy": 0.75}]
        >>> fig = reliability_figure(rows, rows, (0.15, 0.15), 1.0, "val")
        >>> len(fig.axes)
        2
    """
    fig = Figure(figsize=(10, 4.6))
    names = ("before: softmax(logits)", f"after: softmax(logits / {temperature:.3g})")
    for k, (rows, name, value) in enumerate(zip((before, after), names, ece, strict=True)):
        ax = fig.add_subplot(1, 2, k + 1)
        kept = [r for r in rows if r["count"]]
        left = [r["lo"] for r in kept]
        width = [r["hi"] - r["lo"] for r in kept]
        accuracy = [r["accuracy"] for r in kept]
        confidence = [r["confidence"] for r in kept]
        ax.bar(left, accuracy, width=width, align="edge", color="#4C72B0", edgecolor="white")
        gap = [c - a for c, a in zip(confidence, accuracy, strict=True)]
        ax.bar(left, gap, bottom=accuracy, width=width, align="edge", color="#C44E52", alpha=0.35)
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}\nECE {value:.4f} ({len(rows)} bins)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def coverage_figure(curve: Sequence[Mapping[str, float | None]], title: str) -> Figure:
    """Accuracy against coverage as the confidence threshold rises (abstaining below it).

    Example:
        >>> rows = [{"threshold": 0.0, "coverage": 1.0, "accuracy": 0.8},
        ...         {"threshold": 0.9, "coverage": 0.5, "accuracy": 0.95}]
        >>> len(coverage_figure(rows, "val").axes[0].lines)
        1
    """
    rows = [r for r in curve if r["accuracy"] is not None]
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.add_subplot()
    ax.plot([r["coverage"] for r in rows], [r["accuracy"] for r in rows], marker=".")
    for r in rows:
        if round(r["threshold"] * 100) % 10 == 0 or r["threshold"] in (0.95, 0.99):
            ax.annotate(
                f"{r['threshold']:g}",
                (r["coverage"], r["accuracy"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xlabel("coverage (share of texts labelled)")
    ax.set_ylabel("accuracy of the labelled texts")
    ax.set_title(f"{title}\nlabels: min_confidence thresholds")
    ax.grid(alpha=0.3)
    return fig


def _reds():
    from matplotlib import colormaps

    return colormaps["Reds"].with_extremes(bad="white")  # white: cells past a row's last token


def _short(token: str, limit: int = 9) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"
