"""The files of ``lit-seqcls compare``: the tables, the run records and the plots.

``write_report`` turns a list of runs (``lit_seqcls.compare.results``) into ``comparison.md``,
``comparison.csv`` (per encoder, mean ± std over the seeds that finished), ``runs.csv`` (per run),
``results.json`` (every run as plain data, for ``load_results``, with the per-encoder rows and
how their statistics were computed; the runs' folders relative to the comparison's) and the four
PNGs of ``lit_seqcls.compare.plots``.

Each encoder's row carries 95% confidence intervals of test accuracy and macro-F1, its p-values
against the best encoder and whether it is tied with it (``lit_seqcls.compare.stats``, from the
runs' per-example test predictions); the table's footnote says what was tested and how. On
multi-label rows they are of what the table prints: subset accuracy, and macro-F1 (and micro-F1,
with its own interval) counted per label. Every pair of rows also gets a paired accuracy test
(``lit_seqcls.compare.pairwise``): ``pairwise.csv``, a matrix of p-values in ``comparison.md`` and
``statistics.pairwise`` in ``results.json`` (whose ``statistics.method`` is the footnote). The
linear reference row (``lit_seqcls.compare.reference``) goes through the same statistics and is
marked as the reference; it is never the best, and the plots leave it out.

Scores that only some comparisons have (``results.OPTIONAL_SCORES``: micro-F1 of multi-label
runs, the calibration error before and after temperature scaling) get their columns in every
table when a run has them, and none otherwise (``results.shown_scores``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_seqcls.compare import stats
from lit_seqcls.compare.pairwise import PairTest, pairwise_matrix, pairwise_tests
from lit_seqcls.compare.plots import PLOTS, save_plots
from lit_seqcls.compare.predictions import paired_predictions
from lit_seqcls.compare.results import (
    OPTIONAL_SCORES,
    SCORES,
    RunResult,
    accuracy_by_length,
    bucket_label,
    shown_scores,
    stored,
    summarize,
)
from lit_seqcls.runtime.outputs import spreadsheet_safe

STATS_SEED = 0  # the statistics' resamples and permutations: the same report every time
_PAIR_FIELDS = [f.name for f in dataclasses.fields(PairTest)]  # pairwise.csv without pairs


def write_report(
    results: Sequence[RunResult], output_dir: Path, title: str = "comparison", command: str = ""
) -> list[Path]:
    """Write the tables and plots for ``results`` into ``output_dir``; return the paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = summarize(results)
    extra = [name for name in shown_scores(results) if name not in SCORES]
    footnote, pairs = add_significance(rows, results)
    results_json = output_dir / "results.json"
    payload = {
        "runs": [stored(r, output_dir) for r in results],
        "encoders": rows,
        "statistics": {"method": footnote, "pairwise": [t.record() for t in pairs]},
    }
    results_json.write_text(json.dumps(payload, default=_plain), encoding="utf-8")
    written = [
        results_json,
        _write_csv(output_dir / "comparison.csv", rows),
        _write_csv(output_dir / "runs.csv", [_run_row(r, output_dir, extra) for r in results]),
        _write_csv(output_dir / "pairwise.csv", [t.record() for t in pairs], _PAIR_FIELDS),
        _write_markdown(
            output_dir / "comparison.md", rows, results, title, command, footnote, extra, pairs
        ),
    ]
    encoders = [r for r in results if r.status == "ok" and not r.reference]
    written += save_plots(encoders, [r for r in rows if not r["reference"]], output_dir)
    return written


def add_significance(
    rows: list[dict[str, Any]], results: Sequence[RunResult]
) -> tuple[str, list[PairTest]]:
    """Add each row's intervals, p-values against the best and tie to ``rows``; return the
    footnote that says how (empty when no run has per-example predictions) and every pair of
    rows' accuracy test."""
    labels, runs, notes, label_sets = paired_predictions(results)
    references = {r.encoder for r in results if r.reference}
    found = stats.compare(
        labels,
        runs,
        candidates=[n for n in runs if n not in references],
        seed=STATS_SEED,
        label_sets=label_sets,
    )
    by_name = {s.name: s for s in found}
    best = next((s for s in found if s.best), None)
    tested = len(found) > 1 and any(n not in references for n in runs)  # a best encoder exists
    for row in rows:
        row["reference"] = row["encoder"] in references
        s = by_name.get(row["encoder"])
        row["acc_ci_low"], row["acc_ci_high"] = s.acc_ci if s else (None, None)
        row["f1_ci_low"], row["f1_ci_high"] = s.f1_ci if s else (None, None)
        if label_sets is not None:  # multi-label: micro-F1's interval too
            micro = s.f1_micro_ci if s else None
            row["f1_micro_ci_low"], row["f1_micro_ci_high"] = micro or (None, None)
        others = s is not None and tested
        row["p_vs_best_acc"] = s.p_acc if others and not s.best else None
        row["p_vs_best_f1"] = s.p_f1 if others and not s.best else None
        row["acc_test"] = s.acc_test if others and not s.best else ""
        row["tied_with_best"] = _tie(s, best) if others else ""
    text = stats.describe(found, references=references) if found else ""
    if notes:
        text += " Left out of the statistics: " + "; ".join(notes) + "."
    best_name = best.name if best else None
    return text.strip(), pairwise_tests(labels, runs, seed=STATS_SEED, best=best_name)


def _tie(s: stats.EncoderStats, best: stats.EncoderStats | None) -> str:
    """The tie column: ``best``, ``yes`` (accuracy p ≥ alpha), ``no``, or ``no (higher)`` for a
    reference row above the best encoder, where "no" alone would read as worse."""
    if s.best:
        return "best"
    if s.tied:
        return "yes"
    return "no (higher)" if best is not None and s.acc > best.acc else "no"


def _plain(value: Any) -> Any:
    return value.item()  # NumPy scalars; anything else is a bug worth the TypeError


def _run_row(r: RunResult, output_dir: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One line of runs.csv; ``extra``: the optional scores shown, after the scores."""
    fields = (
        "encoder", "seed", "test_acc", "test_f1", *extra, "wall_time_s", "train_time_s",
        "time_to_best_s", "params", "encoder_params", "peak_rss_mb", "samples_per_s",
        "tokens_per_s",
    )  # fmt: skip
    return {
        **{k: getattr(r, k) for k in fields},
        "peak_gpu_mem_mb": r.hardware.get("peak_gpu_mem_mb"),
        "hardware": hardware_text(r.hardware),
        "status": r.status,
        "run_dir": stored(r, output_dir)["run_dir"],
        "reference": r.reference,
    }


def hardware_text(hw: dict[str, Any]) -> str:
    """What a run ran on, in words (empty when not recorded).

    Example:
        >>> hardware_text({"cpu": "AMD EPYC 7B13", "cores": 2, "threads": 1, "device": "cpu"})
        'AMD EPYC 7B13 (2 cores), 1 thread per process'
        >>> hardware_text({"cpu": "Xeon", "cores": 16, "threads": 16, "gpu": "NVIDIA H100"})
        'NVIDIA H100 GPU; Xeon (16 cores), 16 threads per process'
        >>> hardware_text({"cpu": "Xeon", "cores": 1, "threads": 1})
        'Xeon (1 core), 1 thread per process'
    """
    if not hw.get("cpu"):
        return ""
    threads, cores = hw.get("threads"), hw.get("cores")
    text = hw["cpu"] if cores is None else f"{hw['cpu']} ({cores} core{'s' if cores != 1 else ''})"
    if threads:
        text += f", {threads} thread{'s' if threads != 1 else ''} per process"
    return f"{hw['gpu']} GPU; {text}" if hw.get("gpu") else text


def _write_csv(
    path: Path, rows: list[dict[str, Any]], fields: Sequence[str] = ("encoder",)
) -> Path:
    """``rows`` as CSV; ``fields``: the header when there are no rows."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(fields))
        writer.writeheader()
        # Encoder names and statuses are text: keep a spreadsheet from reading them as formulas.
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return path


def _hardware_lines(results: Sequence[RunResult]) -> list[str]:
    """``Hardware: ...``, one description per distinct machine of the runs that finished."""
    seen = dict.fromkeys(
        hardware_text(r.hardware) for r in results if r.status == "ok" and not r.reference
    )
    seen.pop("", None)
    return [f"Hardware: {'; '.join(seen)}."] if seen else []


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} s" if value >= 10 else f"{value:.1f} s"


def _megabytes(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MB"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None else f"{low:.3f}–{high:.3f}"


def _p(value: float | None) -> str:
    return "—" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"


def _score_notes(extra: Sequence[str]) -> list[str]:
    """What the optional score columns measure (one line each that is shown)."""
    notes = []
    if "test_f1_micro" in extra:
        notes.append(
            "Multi-label rows: test acc is subset accuracy (the whole label set right), "
            "macro-F1 the mean F1 over the labels, micro-F1 the F1 of every text–label pair "
            "pooled."
        )
    if "test_ece" in extra or "test_ece_raw" in extra:
        notes.append(
            "ECE: expected calibration error (15 equal-width bins) of the top-label "
            "probability (multi-label: of every text–label pair) after the temperature fitted "
            "on the validation split; raw ECE: before it. The reference row gives no "
            "probabilities."
        )
    return notes


def _cell(row: dict[str, Any], name: str) -> str:
    """An optional score's cell: its ``mean ± std``, or the micro-F1 interval."""
    if name == "f1_micro_ci":
        return _interval(row.get("f1_micro_ci_low"), row.get("f1_micro_ci_high"))
    return row[name]


def _pairwise_lines(pairs: Sequence[PairTest]) -> list[str]:
    """The pairwise accuracy tests as a section of comparison.md (none for fewer than 2 rows)."""
    if not pairs:
        return []
    return [
        "Pairwise accuracy tests: the p-value of each pair of rows (paired on the same test "
        "examples, the same tests as p vs best; uncorrected for the number of pairs). "
        "pairwise.csv also has each pair's accuracy difference and test.",
        "",
        *pairwise_matrix(pairs),
        "",
    ]


def _length_table(results: Sequence[RunResult]) -> list[str]:
    buckets, accuracy = accuracy_by_length(results)
    if not accuracy:
        return []
    header = " | ".join(bucket_label(b, sep=" ") for b in buckets)
    lines = [
        "Test accuracy by text length in tokens (buckets of about equal size, n texts per run):",
        "",
        f"| encoder | {header} |",
        "|---" * (len(buckets) + 1) + "|",
    ]
    for encoder, acc in accuracy.items():
        lines.append(f"| {encoder} | " + " | ".join(_fmt(a, ".3f") for a in acc) + " |")
    return lines


def _write_markdown(
    path: Path,
    rows: list[dict[str, Any]],
    results: Sequence[RunResult],
    title: str,
    command: str,
    footnote: str = "",
    extra: Sequence[str] = (),
    pairs: Sequence[PairTest] = (),
) -> Path:
    """comparison.md; ``extra``: the optional scores shown, as columns after the tie column
    (micro-F1 with its interval where the rows have one); ``pairs``: the pairwise tests."""
    seeds = max((r["seeds"] for r in rows if not r["reference"]), default=1)
    micro_ci = any("f1_micro_ci_low" in r for r in rows)
    scores = [(name, OPTIONAL_SCORES[name]) for name in extra]
    if micro_ci:
        at = extra.index("test_f1_micro") + 1 if "test_f1_micro" in extra else len(scores)
        scores.insert(at, ("f1_micro_ci", "micro-F1 95% CI"))
    columns = [
        "encoder", "test acc", "acc 95% CI", "macro-F1", "F1 95% CI", "p vs best (acc / F1)",
        "tied with best", *(heading for _, heading in scores), "wall time",
        "time to best val", "params (encoder)", "peak memory", "tokens/s", "status",
    ]  # fmt: skip
    lines = [
        f"# {title}",
        "",
        f"`{command}`" if command else "",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for r in rows:
        params = _fmt(r["params"], ",") + (
            "" if r["encoder_params"] is None else f" ({r['encoder_params']:,})"
        )
        name = f"{r['encoder']} (reference)" if r["reference"] else r["encoder"]
        p_values = (
            "—"
            if r["p_vs_best_acc"] is None
            else (f"{_p(r['p_vs_best_acc'])} / {_p(r['p_vs_best_f1'])}")
        )
        lines.append(
            f"| {name} | {r['test_acc']} | {_interval(r['acc_ci_low'], r['acc_ci_high'])} "
            f"| {r['test_f1']} | {_interval(r['f1_ci_low'], r['f1_ci_high'])} | {p_values} "
            f"| {r['tied_with_best'] or '—'} | "
            + "".join(f"{_cell(r, name)} | " for name, _ in scores)
            + f"{_seconds(r['wall_time_s_mean'])} "
            f"| {_seconds(r['time_to_best_s_mean'])} | {params} "
            f"| {_megabytes(r['peak_rss_mb_mean'])} "
            f"| {_fmt(r['tokens_per_s_mean'], ',.0f')} | {r['status']} |"
        )
    lines += [
        "",
        f"Mean ± std over {seeds} seeds." if seeds > 1 else "One seed per encoder.",
        "Wall time: every `fit` and `test` process of a run, over all its attempts (a resumed "
        "run adds them up); time to best val: `fit` time until the epoch of the best validation "
        "accuracy; peak memory: the largest resident memory of one of a run's processes; "
        "tokens/s: training steps only (forward, backward, optimizer), real tokens without "
        "padding (samples/s and the `fit` time alone: comparison.csv). Params: the whole model, "
        "with the encoder's share in brackets.",
        *_score_notes(extra),
        *_hardware_lines(results),
        *([f"Statistics: {footnote}"] if footnote else []),
        "",
        *_pairwise_lines(pairs),
        *_length_table(results),
        "",
        *[f"![{name}](compare_{name}.png)" for name in PLOTS],
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
