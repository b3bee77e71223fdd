"""The results of ``lit-seqcls compare``: one ``RunResult`` per run, the tables, the files.

``write_report`` turns a list of runs into ``comparison.md``, ``comparison.csv`` (per encoder,
mean ± std over the seeds that finished), ``runs.csv`` (per run), ``results.json`` (every run as
plain data, for ``load_results``) and the four PNGs of ``lit_seqcls.compare_plots``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_seqcls.compare_plots import PLOTS, accuracy_by_length, bucket_label, save_plots
from lit_seqcls.runtime.outputs import spreadsheet_safe


@dataclasses.dataclass
class RunResult:
    """What one encoder × seed run produced; ``status`` is ``"ok"`` or says what failed.

    Example:
        >>> RunResult("gru", 0, status="fit failed (exit 1)").summary()
        'fit failed (exit 1)'
    """

    encoder: str
    seed: int
    run_dir: str = ""
    status: str = "not run"
    test_acc: float | None = None
    test_f1: float | None = None
    train_time_s: float | None = None
    params: int | None = None
    encoder_params: int | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    lengths: list[int] = dataclasses.field(default_factory=list)
    correct: list[int] = dataclasses.field(default_factory=list)

    def add_fit(self, fit: dict[str, Any]) -> None:
        """Take training time, throughput, sizes and validation history from the reporter."""
        for name in ("train_time_s", "params", "encoder_params", "samples_per_s", "tokens_per_s"):
            setattr(self, name, fit.get(name))
        self.history = fit.get("history", [])

    def add_test(self, test: dict[str, Any]) -> None:
        """Take the test metrics and per-example lengths and correctness from the reporter."""
        self.test_acc = test["metrics"].get("test/acc")
        self.test_f1 = test["metrics"].get("test/f1_macro")
        self.lengths = test["examples"]["length"]
        self.correct = test["examples"]["correct"]

    def summary(self) -> str:
        if self.status != "ok":
            return self.status
        return f"test acc {self.test_acc:.3f}, macro-F1 {self.test_f1:.3f}"


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


def load_results(output_dir: Path) -> list[RunResult]:
    """The runs saved by ``write_report`` (``results.json``), e.g. to redraw the plots."""
    raw = json.loads((output_dir / "results.json").read_text(encoding="utf-8"))
    return [RunResult(**r) for r in raw]


def summarize(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per encoder (first-seen order): mean and std over its successful runs.

    Example:
        >>> runs = [RunResult("cnn", s, status="ok", test_acc=a, test_f1=a) for s, a in
        ...         [(0, 0.8), (1, 0.9)]] + [RunResult("cnn", 2, status="test failed")]
        >>> row = summarize(runs)[0]
        >>> row["test_acc"], round(row["test_acc_mean"], 2), round(row["test_acc_std"], 3)
        ('0.850 ± 0.071', 0.85, 0.071)
        >>> row["status"]
        'ok 2/3; seed 2: test failed'
    """
    encoders = list(dict.fromkeys(r.encoder for r in results))
    rows = []
    for encoder in encoders:
        runs = [r for r in results if r.encoder == encoder]
        ok = [r for r in runs if r.status == "ok"]
        row: dict[str, Any] = {"encoder": encoder}
        for name in ("test_acc", "test_f1", "train_time_s", "samples_per_s", "tokens_per_s"):
            mean, std = _mean_std([getattr(r, name) for r in ok])
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        row["test_acc"] = _pm(row["test_acc_mean"], row["test_acc_std"], len(ok))
        row["test_f1"] = _pm(row["test_f1_mean"], row["test_f1_std"], len(ok))
        row["params"] = next((r.params for r in runs if r.params is not None), None)
        row["encoder_params"] = next(
            (r.encoder_params for r in runs if r.encoder_params is not None), None
        )
        row["seeds"] = len(runs)
        failed = [f"seed {r.seed}: {r.status}" for r in runs if r.status != "ok"]
        if not failed:
            row["status"] = "ok"
        elif ok:
            row["status"] = f"ok {len(ok)}/{len(runs)}; " + "; ".join(failed)
        else:
            row["status"] = "; ".join(failed)
        rows.append(row)
    return rows


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _pm(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


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
