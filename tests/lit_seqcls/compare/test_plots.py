"""The comparison's plots: drawn from partial records too."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt

from lit_seqcls.compare import plots
from lit_seqcls.compare.results import RunResult, summarize


def test_a_run_without_training_time_is_left_out_of_the_time_plot_only(tmp_path, monkeypatch):
    # A partial or hand-edited results.json: gru finished but recorded no training time.
    runs = [
        RunResult("cnn", 0, status="ok", test_acc=0.8, test_f1=0.8, train_time_s=12.0,
                  history=[{"val/acc": 0.7, "val/loss": 0.6}], lengths=[3, 5], correct=[1, 0]),
        RunResult("gru", 0, status="ok", test_acc=0.9, test_f1=0.9,
                  history=[{"val/acc": 0.8, "val/loss": 0.5}], lengths=[3, 5], correct=[1, 1]),
    ]  # fmt: skip
    rows = summarize(runs)
    assert rows[1]["train_time_s_mean"] is None
    figures = {}
    for name in ("_plot_scores", "_plot_time_vs_acc"):  # keep each figure to look inside
        draw = getattr(plots, name)
        monkeypatch.setattr(
            plots, name, lambda ok, r, d=draw, n=name: figures.setdefault(n, d(ok, r))
        )
    monkeypatch.setattr(plt, "close", lambda fig: None)
    paths = plots.save_plots(runs, rows, tmp_path)
    assert [p.name for p in paths] == [f"compare_{n}.png" for n in plots.PLOTS]
    assert all(p.stat().st_size > 0 for p in paths)
    (ax,) = figures["_plot_time_vs_acc"].axes
    assert [t.get_text() for t in ax.texts] == ["cnn"]  # gru has no point there...
    tick_names = [t.get_text() for t in figures["_plot_scores"].axes[0].get_xticklabels()]
    assert tick_names == ["cnn", "gru"]  # ...but stays in the others
    for fig in figures.values():
        plt.close(fig)


def test_curves_without_a_metric_or_an_epoch_are_drawn_without_numpy_warnings(tmp_path):
    # No run logged val/loss (e.g. runs of an older reporter), and only one gru seed reached
    # epoch 2's val/acc: numpy's "Mean of empty slice" reached the user's terminal.
    runs = [
        RunResult("cnn", 0, status="ok", test_acc=0.8, test_f1=0.8,
                  history=[{"val/acc": 0.7}, {"val/acc": 0.75}]),
        RunResult("gru", 0, status="ok", test_acc=0.9, test_f1=0.9,
                  history=[{"val/acc": 0.8}, {}]),
        RunResult("gru", 1, status="ok", test_acc=0.9, test_f1=0.9, history=[{"val/acc": 0.82}]),
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots._plot_val_curves(runs, summarize(runs))
    accuracy, loss = fig.axes
    assert [line.get_label() for line in accuracy.lines] == ["cnn", "gru"] and not loss.lines
    gru = accuracy.lines[1].get_ydata()
    assert gru[0] == 0.81 and gru[1] != gru[1]  # the mean of both seeds, then a gap (NaN)
    plt.close(fig)


def test_score_bars_show_the_95_intervals_and_the_title_says_so():
    runs = [RunResult(e, 0, status="ok", test_acc=a, test_f1=a - 0.1)
            for e, a in (("cnn", 0.8), ("gru", 0.9))]  # fmt: skip
    rows = summarize(runs)
    fig = plots._plot_scores(runs, rows)  # one seed and no intervals: nothing to draw
    assert "one seed, no intervals" in fig.axes[0].get_title() and not fig.axes[0].collections
    plt.close(fig)
    for row, (low, high) in zip(rows, ((0.75, 0.84), (0.86, 0.93)), strict=True):
        row["acc_ci_low"], row["acc_ci_high"] = low, high  # as report.add_significance adds them
        row["f1_ci_low"], row["f1_ci_high"] = low - 0.1, high - 0.1
    fig = plots._plot_scores(runs, rows)
    (ax,) = fig.axes
    assert "error bars: 95% bootstrap intervals" in ax.get_title() and "std" not in ax.get_title()
    accuracy_bars = ax.collections[0].get_segments()  # one vertical segment per encoder
    assert [tuple(s[:, 1].round(3)) for s in accuracy_bars] == [(0.75, 0.84), (0.86, 0.93)]
    plt.close(fig)
