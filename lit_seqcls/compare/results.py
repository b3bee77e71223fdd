"""The records of ``lit-seqcls compare``: one ``RunResult`` per run, and what is computed from them.

``summarize`` gives one row per encoder (mean ± std over the seeds that finished);
``accuracy_by_length`` gives test accuracy per encoder in length buckets, with the buckets of
``lit_seqcls.metrics.length_buckets`` (the same definition the ``LengthAnalysisLogger`` callback
uses). The tables (``report``) and the plots (``plots``) both read these; neither imports the
other's records any more, which ended their import cycle.

The scores are ``SCORES``: test accuracy and macro-F1 of every run, and the ``OPTIONAL_SCORES``
that only some runs have (micro-F1 of a multi-label run, the calibration error of a run of the
model): ``shown_scores`` keeps those that a comparison's runs have, so a table gains their
columns only when there is something in them. A multi-label run's accuracy is subset accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lit_seqcls.metrics import (
    ECE,
    ECE_RAW,
    F1_MICRO,
    TEST_ACC,
    TEST_F1,
    length_buckets,
    metric_name,
)

NUM_BUCKETS = 5
SCORES = ("test_acc", "test_f1")
# Scores only some runs have, with their headings in comparison.md (tables: in this order).
OPTIONAL_SCORES = {"test_f1_micro": "micro-F1", "test_ece": "ECE", "test_ece_raw": "raw ECE"}
# The logged test metric each score is read from (``RunResult.add_test``).
_LOGGED = {
    "test_acc": TEST_ACC,
    "test_f1": TEST_F1,
    "test_f1_micro": metric_name("test", F1_MICRO),
    "test_ece": metric_name("test", ECE),
    "test_ece_raw": metric_name("test", ECE_RAW),
}
# Averaged per encoder like the scores (``<name>_mean``, ``<name>_std`` in ``summarize``).
COSTS = (
    "train_time_s",
    "wall_time_s",
    "time_to_best_s",
    "peak_rss_mb",
    "samples_per_s",
    "tokens_per_s",
)


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
    # None where the run did not log them (single-label: no micro-F1; the reference: no ECE).
    # Multi-label micro-F1 pools every text-label pair; ECE: 15 bins, top-label (multi-label:
    # every text-label pair), after (`test_ece`) and before (`test_ece_raw`) temperature scaling.
    test_f1_micro: float | None = None
    test_ece: float | None = None
    test_ece_raw: float | None = None
    train_time_s: float | None = None
    params: int | None = None
    encoder_params: int | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    # Cost: fit + test processes, over every attempt of a resumed run; the fit time at the epoch
    # of the best validation accuracy; the largest resident memory of a process of the run.
    wall_time_s: float | None = None
    time_to_best_s: float | None = None
    peak_rss_mb: float | None = None
    hardware: dict[str, Any] = dataclasses.field(default_factory=dict)
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    lengths: list[int] = dataclasses.field(default_factory=list)
    correct: list[int] = dataclasses.field(default_factory=list)
    # The run's `test_predictions.jsonl` (`lit_seqcls.compare.predictions`), for the statistics;
    # `reference`: the linear reference row (`lit_seqcls.compare.reference`), not an encoder.
    predictions: str = ""
    reference: bool = False

    def add_fit(self, fit: dict[str, Any]) -> None:
        """Take training time, throughput, sizes and validation history from the reporter."""
        for name in ("train_time_s", "params", "encoder_params", "samples_per_s", "tokens_per_s"):
            setattr(self, name, fit.get(name))
        self.history = fit.get("history", [])
        self.time_to_best_s = time_to_best(self.history)

    def add_test(self, test: dict[str, Any]) -> None:
        """Take the test metrics and per-example lengths and correctness from the reporter."""
        for name, logged in _LOGGED.items():
            setattr(self, name, test["metrics"].get(logged))
        self.lengths = test["examples"]["length"]
        self.correct = test["examples"]["correct"]
        self.predictions = test.get("predictions", "")

    def summary(self) -> str:
        if self.status != "ok":
            return self.status
        text = f"test acc {self.test_acc:.3f}, macro-F1 {self.test_f1:.3f}"
        if self.test_f1_micro is not None:
            text += f", micro-F1 {self.test_f1_micro:.3f}"
        return text + ("" if self.test_ece is None else f", ECE {self.test_ece:.3f}")


def time_to_best(history: Sequence[dict[str, float]], metric: str = "val/acc") -> float | None:
    """Fit time (``elapsed``) at the first epoch with the best ``metric``; None without one.

    Example:
        >>> time_to_best([{"elapsed": 5.0, "val/acc": 0.8}, {"elapsed": 9.0, "val/acc": 0.9},
        ...               {"elapsed": 14.0, "val/acc": 0.9}])
        9.0
    """
    scored = [h for h in history if metric in h and "elapsed" in h]
    if not scored:
        return None
    return max(scored, key=lambda h: h[metric])["elapsed"]  # max keeps the first of equals


def load_results(output_dir: Path) -> list[RunResult]:
    """The runs saved by ``write_report`` (``results.json``), e.g. to redraw the plots."""
    raw = json.loads((output_dir / "results.json").read_text(encoding="utf-8"))
    runs = raw["runs"] if isinstance(raw, dict) else raw  # a list: written before the statistics
    results = [RunResult(**r) for r in runs]
    for r in results:
        r.run_dir, r.predictions = (_under(output_dir, p) for p in (r.run_dir, r.predictions))
    return results


def stored(result: RunResult, output_dir: Path) -> dict[str, Any]:
    """``result`` as ``results.json`` and ``runs.csv`` hold it: its folder and predictions file
    relative to ``output_dir`` where they lie inside it (``runs/cnn-seed0``), so that the tables
    move with their folder and do not name the machine's paths; ``load_results`` reads them back.

    Example:
        >>> r = RunResult("cnn", 0, run_dir="/x/cmp/runs/cnn-seed0", predictions="/elsewhere/p")
        >>> d = stored(r, Path("/x/cmp"))
        >>> d["run_dir"], d["predictions"]
        ('runs/cnn-seed0', '/elsewhere/p')
    """
    record = dataclasses.asdict(result)
    for key in ("run_dir", "predictions"):
        path = Path(record[key])
        if record[key] and path.is_absolute() and path.is_relative_to(output_dir.absolute()):
            record[key] = path.relative_to(output_dir.absolute()).as_posix()
    return record


def _under(output_dir: Path, path: str) -> str:
    return str(output_dir / path) if path and not Path(path).is_absolute() else path


def shown_scores(results: Sequence[RunResult]) -> tuple[str, ...]:
    """``SCORES`` and the ``OPTIONAL_SCORES`` that some run of ``results`` has.

    Example:
        >>> shown_scores([RunResult("cnn", 0, test_acc=0.9, test_ece=0.02)])
        ('test_acc', 'test_f1', 'test_ece')
    """
    extra = [n for n in OPTIONAL_SCORES if any(getattr(r, n) is not None for r in results)]
    return (*SCORES, *extra)


def summarize(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per encoder (first-seen order): mean and std over its successful runs, of every
    score in ``shown_scores`` (so a score no run has gets no columns) and of the costs.

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
    scores = shown_scores(results)
    rows = []
    for encoder in encoders:
        runs = [r for r in results if r.encoder == encoder]
        ok = [r for r in runs if r.status == "ok"]
        row: dict[str, Any] = {"encoder": encoder}
        for name in (*scores, *COSTS):
            mean, std = _mean_std([getattr(r, name) for r in ok])
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        for name in scores:
            # The std over the runs that have the score (the reference row has no ECE).
            n = sum(getattr(r, name) is not None for r in ok)
            row[name] = _pm(row[f"{name}_mean"], row[f"{name}_std"], n)
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


def accuracy_by_length(
    results: Sequence[RunResult], num_buckets: int = NUM_BUCKETS
) -> tuple[list[tuple[int, int, int]], dict[str, list[float]]]:
    """Test accuracy per encoder in length buckets of about equal size (pooled over seeds).

    The buckets are ``length_buckets`` over the test texts of every successful run, so each
    encoder is measured on the same texts. Returns them as ``(shortest, longest, texts per run)``
    and each encoder's accuracy per bucket (NaN where it has no text).

    Example:
        >>> runs = [RunResult("cnn", 0, status="ok", lengths=[1, 2, 3, 4], correct=[1, 1, 0, 1])]
        >>> accuracy_by_length(runs, num_buckets=2)
        ([(1, 2, 2), (3, 4, 2)], {'cnn': [1.0, 0.5]})
    """
    ok = [r for r in results if r.status == "ok" and r.lengths]
    pooled = Counter(n for r in ok for n in r.lengths)
    buckets = [(lo, hi, n // len(ok)) for lo, hi, n, _ in length_buckets(pooled, {}, num_buckets)]
    accuracy = {}
    for encoder in dict.fromkeys(r.encoder for r in ok):
        runs = [r for r in ok if r.encoder == encoder]
        texts = Counter(n for r in runs for n in r.lengths)
        right = Counter(n for r in runs for n, c in zip(r.lengths, r.correct, strict=True) if c)
        accuracy[encoder] = [_share(right, texts, lo, hi) for lo, hi, _ in buckets]
    return buckets, accuracy


def bucket_label(bucket: tuple[int, int, int], sep: str = "\n") -> str:
    low, high, count = bucket
    return f"{low}–{high}{sep}(n={count})" if low < high else f"{low}{sep}(n={count})"


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _pm(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def _share(right: Counter[int], texts: Counter[int], lo: int, hi: int) -> float:
    total = sum(n for length, n in texts.items() if lo <= length <= hi)
    hits = sum(n for length, n in right.items() if lo <= length <= hi)
    return hits / total if total else float("nan")
