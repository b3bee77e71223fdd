"""The four PNGs of ``lit-seqcls compare``.

- ``compare_scores.png``: test accuracy and macro-F1 per encoder, error bars = the rows' 95%
  intervals (``report.add_significance``), or the std over seeds when a row has none;
- ``compare_val_curves.png``: validation accuracy and loss per epoch, all encoders on one figure;
- ``compare_length_buckets.png``: test accuracy by text length (``results.accuracy_by_length``);
- ``compare_time_vs_acc.png``: training time against test accuracy (an encoder none of whose
  finished runs recorded its training time, as in a partial or hand-edited results.json, is
  left out of this plot only).

Each plot takes the successful runs and the per-encoder summary rows (``results.summarize``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (also on machines without a display)
import matplotlib.pyplot as plt
import numpy as np

from lit_seqcls.compare.results import RunResult, accuracy_by_length, bucket_label

MARKERS = ("o", "s", "^", "D", "v", "P")
PLOTS = ("scores", "val_curves", "length_buckets", "time_vs_acc")


def save_plots(ok: list[RunResult], rows: list[dict[str, Any]], output_dir: Path) -> list[Path]:
    """Draw every plot of ``PLOTS`` from the successful runs ``ok``; return the PNG paths."""
    paths = []
    for name, draw in (
        ("scores", _plot_scores),
        ("val_curves", _plot_val_curves),
        ("length_buckets", _plot_length_buckets),
        ("time_vs_acc", _plot_time_vs_acc),
    ):
        fig = draw(ok, rows)
        path = output_dir / f"compare_{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def _colors(encoders: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {e: cmap(i % 10) for i, e in enumerate(encoders)}


def _markers(encoders: Sequence[str]) -> dict[str, str]:
    # Keyed like the colours, so an encoder looks the same in every plot.
    return {e: MARKERS[i % len(MARKERS)] for i, e in enumerate(encoders)}


def _error_bars(rows: list[dict[str, Any]], key: str, ci: str) -> tuple[np.ndarray | None, str]:
    """The bars' (2, R) distances below and above each mean of ``key``, and what they are: the
    rows' 95% intervals ``ci`` (``acc_ci``, ``f1_ci``) when every finished row has one, else the
    std over seeds, else none (one seed and no intervals)."""
    done = [r for r in rows if r[f"{key}_mean"] is not None]
    means = np.array([r[f"{key}_mean"] or 0.0 for r in rows])  # (R,)
    if done and all(r.get(f"{ci}_low") is not None for r in done):
        low, high = (
            np.array([m if r.get(b) is None else r[b] for r, m in zip(rows, means, strict=True)])
            for b in (f"{ci}_low", f"{ci}_high")
        )  # (R,) each; an unfinished row's bar is 0 and has no error bar
        errors = np.clip(np.stack([means - low, high - means]), 0.0, None)  # (2, R)
        return errors, "error bars: 95% bootstrap intervals"
    if max((r["seeds"] for r in done), default=1) > 1:
        std = np.array([r[f"{key}_std"] or 0.0 for r in rows])  # (R,)
        return np.stack([std, std]), "error bars: std over seeds"
    return None, "one seed, no intervals"


def _plot_scores(ok: list[RunResult], rows: list[dict[str, Any]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(rows))
    captions = []
    for offset, (key, ci, label) in zip(
        (-0.2, 0.2),
        (("test_acc", "acc_ci", "accuracy"), ("test_f1", "f1_ci", "macro-F1")),
        strict=True,
    ):
        means = [r[f"{key}_mean"] or 0.0 for r in rows]
        errors, caption = _error_bars(rows, key, ci)
        captions.append(caption)
        bars = ax.bar(x + offset, means, 0.4, yerr=errors, capsize=4, label=label)
        ax.bar_label(bars, labels=[f"{m:.3f}" if m else "" for m in means], fontsize=7, padding=2)
    for i, r in enumerate(rows):
        if r["test_acc_mean"] is None:
            ax.text(i, 0.02, "failed", ha="center", color="red")
    ax.set_xticks(x, [r["encoder"] for r in rows])
    ax.set_ylim(0, 1.18)  # room above 1.0 for the legend and the value labels
    ax.set_xlabel("encoder")
    ax.set_ylabel("test score")
    ax.set_title(f"Test accuracy and macro-F1 ({'; '.join(dict.fromkeys(captions))})")
    ax.legend(loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _plot_val_curves(ok: list[RunResult], rows: list[dict[str, Any]]) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = _colors([r["encoder"] for r in rows])
    markers = _markers(list(colors))
    for encoder, color in colors.items():
        runs = [r for r in ok if r.encoder == encoder and r.history]
        for ax, key in zip(axes, ("val/acc", "val/loss"), strict=True):
            curves = [[h.get(key, np.nan) for h in r.history] for r in runs]
            if not curves:
                continue
            width = max(len(c) for c in curves)  # early stopping may end runs at different epochs
            padded = np.array([c + [np.nan] * (width - len(c)) for c in curves], dtype=float)
            # Epochs no run has a value for (a metric the runs did not log, an epoch lost to a
            # crash) stay gaps; numpy would warn about each ("Mean of empty slice").
            seen = ~np.isnan(padded).all(axis=0)
            if not seen.any():
                continue
            mean, std = np.full(width, np.nan), np.full(width, np.nan)
            mean[seen] = np.nanmean(padded[:, seen], axis=0)
            std[seen] = np.nanstd(padded[:, seen], axis=0)
            epochs = np.arange(1, width + 1)
            ax.plot(epochs, mean, marker=markers[encoder], color=color, label=encoder)
            if len(curves) > 1:
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15)
    for ax, key in zip(axes, ("accuracy", "loss"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {key}")
        ax.set_title(f"Validation {key} per epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if axes[0].get_legend_handles_labels()[0]:  # none while no run has finished
        axes[0].legend(title="encoder")
    return fig


def _plot_length_buckets(ok: list[RunResult], rows: list[dict[str, Any]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    buckets, accuracy = accuracy_by_length(ok)
    colors = _colors([r["encoder"] for r in rows])
    # Good encoders pile up near 1.0: a marker shape each and a small sideways shift keep every
    # line visible.
    shift = np.linspace(-0.12, 0.12, max(len(accuracy), 2))
    for i, (encoder, acc) in enumerate(accuracy.items()):
        x = np.arange(len(buckets)) + (shift[i] if len(accuracy) > 1 else 0.0)
        marker = _markers(list(colors))[encoder]
        ax.plot(x, acc, marker=marker, color=colors[encoder], label=encoder, alpha=0.9)
    ax.set_xticks(range(len(buckets)), [bucket_label(b) for b in buckets])
    ax.set_xlabel("text length in tokens (buckets of about equal size; n = test texts per run)")
    ax.set_ylabel("test accuracy")
    values = [a for acc in accuracy.values() for a in acc if not np.isnan(a)]
    lowest = min(values, default=0.0)
    ax.set_ylim(max(0.0, np.floor(lowest * 10 - 0.5) / 10), 1.02)  # zoom: the gaps are the point
    ax.set_title("Test accuracy by text length")
    ax.grid(alpha=0.3)
    if accuracy:
        ax.legend(title="encoder", fontsize=8)
    return fig


def _plot_time_vs_acc(ok: list[RunResult], rows: list[dict[str, Any]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = _colors([r["encoder"] for r in rows])
    markers = _markers(list(colors))
    for r in rows:
        if r["test_acc_mean"] is None or r["train_time_s_mean"] is None:
            continue  # no point to place: no finished run, or no training time recorded
        ax.errorbar(
            r["train_time_s_mean"],
            r["test_acc_mean"],
            xerr=r["train_time_s_std"],
            yerr=r["test_acc_std"],
            fmt=markers[r["encoder"]],
            markersize=8,
            capsize=3,
            color=colors[r["encoder"]],
            label=r["encoder"],
        )
        ax.annotate(
            r["encoder"],
            (r["train_time_s_mean"], r["test_acc_mean"]),
            textcoords="offset points",
            xytext=(6, 4),
        )
    ax.margins(0.12)  # room for the names next to the points
    ax.set_xlim(left=0)
    ax.set_xlabel("training time (s, whole fit)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Training time vs test accuracy")
    ax.grid(alpha=0.3)
    return fig
