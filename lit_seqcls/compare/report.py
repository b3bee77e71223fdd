"""The files of ``lit-seqcls compare``: the tables, the run records and the plots.

``write_report`` turns a list of runs (``lit_seqcls.compare.results``) into ``comparison.md``,
``comparison.csv`` (per encoder, mean ± std over the seeds that finished), ``runs.csv`` (per run),
``results.json`` (every run as plain data, for ``load_results``) and the four PNGs of
``lit_seqcls.compare.plots``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_seqcls.compare.plots import PLOTS, save_plots
from lit_seqcls.compare.results import RunResult, accuracy_by_length, bucket_label, summarize
from lit_seqcls.runtime.outputs import spreadsheet_safe


def write_report(
    results: Sequence[RunResult], output_dir: Path, title: str = "comparison", command: str = ""
) -> list[Path]:
    """Write the tables and plots for ``results`` into ``output_dir``; return the paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = summarize(results)
    results_json = output_dir / "results.json"
    results_json.write_text(
        json.dumps([dataclasses.asdict(r) for r in results], default=_plain), encoding="utf-8"
    )
    written = [
        results_json,
        _write_csv(output_dir / "comparison.csv", rows),
        _write_csv(output_dir / "runs.csv", [_run_row(r) for r in results]),
        _write_markdown(output_dir / "comparison.md", rows, results, title, command),
    ]
    written += save_plots([r for r in results if r.status == "ok"], rows, output_dir)
    return written


def _plain(value: Any) -> Any:
    return value.item()  # NumPy scalars; anything else is a bug worth the TypeError


def _run_row(r: RunResult) -> dict[str, Any]:
    fields = ("encoder", "seed", "test_acc", "test_f1", "train_time_s", "params")
    return {
        **{k: getattr(r, k) for k in fields},
        "encoder_params": r.encoder_params,
        "samples_per_s": r.samples_per_s,
        "tokens_per_s": r.tokens_per_s,
        "status": r.status,
        "run_dir": r.run_dir,
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["encoder"])
        writer.writeheader()
        # Encoder names and statuses are text: keep a spreadsheet from reading them as formulas.
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return path


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


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
) -> Path:
    seeds = max((r["seeds"] for r in rows), default=1)
    lines = [
        f"# {title}",
        "",
        f"`{command}`" if command else "",
        "",
        "| encoder | test acc | macro-F1 | train time | params (encoder) | samples/s | tokens/s "
        "| status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        params = "—" if r["params"] is None else f"{r['params']:,} ({r['encoder_params']:,})"
        time_s = r["train_time_s_mean"]
        lines.append(
            f"| {r['encoder']} | {r['test_acc']} | {r['test_f1']} "
            f"| {'—' if time_s is None else f'{time_s:.0f} s'} | {params} "
            f"| {_fmt(r['samples_per_s_mean'], ',.0f')} | {_fmt(r['tokens_per_s_mean'], ',.0f')} "
            f"| {r['status']} |"
        )
    lines += [
        "",
        f"Mean ± std over {seeds} seeds." if seeds > 1 else "One seed per encoder.",
        "Train time: the whole `fit` (training and validation epochs); samples/s and tokens/s: "
        "training steps only (forward, backward, optimizer), real tokens without padding. "
        "Params: the whole model, with the encoder's share in brackets.",
        "",
        *_length_table(results),
        "",
        *[f"![{name}](compare_{name}.png)" for name in PLOTS],
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
