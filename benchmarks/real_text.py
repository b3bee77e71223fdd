"""The real-text tables of README and docs/which_encoder.md, generated from committed comparisons.

Issue #17 commits ``lit-seqcls compare``'s output for IMDB and 20 Newsgroups under
``docs/results/<dataset>/`` (``results.json`` as compare wrote it). This script turns those files
into the tables that README and docs/which_encoder.md show between marker comments, so no number
in them is typed by hand:

- ``<!-- real-text:imdb -->`` / ``<!-- real-text:newsgroups -->``: one row per encoder (mean ±
  std over its seeds, the 95% interval of compare's paired bootstrap, the write-up's number and
  whether it is reached, ECE before → after temperature scaling, wall time per run) and the
  linear reference row.
- ``<!-- real-text:claims -->``: the write-up's four claims, each with the accuracy difference
  and a paired test on the same test texts (``lit_seqcls.compare.stats.accuracy_p_value``:
  exact McNemar with one seed each, a paired permutation test with several).
- ``<!-- real-text:calibration -->`` (docs/decisions.md): IMDB's temperature per encoder, the
  validation ECE it was fitted to reach and the test ECE before and after, against #18's 0.02.

    python benchmarks/real_text.py --write   # after a compare: renew the blocks in FILES
    python benchmarks/real_text.py --check   # exit 1 if any block in FILES is stale

A dataset without ``docs/results/<dataset>/results.json`` keeps its block as it is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lit_seqcls.compare.stats import accuracy_p_value

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
FILES = ("README.md", "docs/which_encoder.md", "docs/decisions.md")  # where the blocks live
DATASETS = ("imdb", "newsgroups")
ORDER = ("rnn", "gru", "lstm", "bilstm", "attention", "cnn", "swem")
# The write-up this package grew from: IMDB test accuracy (issue #17).
WRITE_UP = {
    "imdb": {
        "rnn": 0.782,
        "gru": 0.841,
        "lstm": 0.847,
        "bilstm": 0.863,
        "attention": 0.891,
        "cnn": 0.834,
    }
}
LONG_SHARE = 0.2  # "long sequences": the longest fifth of the test texts (claim 4)
ECE_TARGET = 0.02  # issue #18: test ECE after temperature scaling, 15 bins


def load(dataset: str, root: Path = RESULTS) -> dict[str, Any] | None:
    path = root / dataset / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _runs(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Encoder (or the reference) → its finished runs, seeds in order."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in sorted(results["runs"], key=lambda r: r["seed"]):
        if run.get("status") == "ok" and (run.get("correct") or run.get("reference")):
            by_name.setdefault(run["encoder"], []).append(run)
    return by_name


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def _row_stats(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["encoder"]: row for row in results.get("encoders", [])}


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 60:.0f} min" if value >= 600 else f"{value:.0f} s"


def table(dataset: str, results: dict[str, Any]) -> str:
    """The markdown table of one committed comparison."""
    runs, stats = _runs(results), _row_stats(results)
    write_up = WRITE_UP.get(dataset, {})
    head = "| encoder | test acc | 95% CI | macro-F1 | seeds |"
    rule = "|---|---|---|---|---|"
    if write_up:
        head += " write-up | reached |"
        rule += "---|---|"
    head += " ECE raw → calibrated | wall time per run |"
    rule += "---|---|"
    lines = [head, rule]
    names = [n for n in ORDER if n in runs] + [n for n in runs if n not in ORDER]
    for name in names:
        rs, st = runs[name], stats.get(name, {})
        acc = [r["test_acc"] for r in rs]
        ci = (st.get("acc_ci_low"), st.get("acc_ci_high"))
        cells = [
            f"{name} (TF-IDF + LinearSVC)" if rs[0].get("reference") else name,
            _mean_std(acc),
            f"{ci[0]:.3f}–{ci[1]:.3f}" if None not in ci else "—",
            _mean_std([r["test_f1"] for r in rs]),
            str(len(rs)),
        ]
        if write_up:
            target = write_up.get(name)
            reached = "—" if target is None else ("yes" if np.mean(acc) >= target else "**no**")
            cells += ["—" if target is None else f"{target:.3f}", reached]
        eces = [(r.get("test_ece_raw"), r.get("test_ece")) for r in rs]
        if all(None not in e for e in eces):
            raw, cal = np.mean([e[0] for e in eces]), np.mean([e[1] for e in eces])
            cells.append(f"{raw:.3f} → {cal:.3f}")
        else:
            cells.append("—")
        walls = [r["wall_time_s"] for r in rs if r.get("wall_time_s") is not None]
        cells.append(_seconds(float(np.mean(walls))) if walls else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _best_epoch(run: dict[str, Any]) -> dict[str, Any]:
    """The validation record of the epoch whose checkpoint was tested (the best val/acc; the
    first of equals, as ModelCheckpoint keeps it)."""
    history = [h for h in run.get("history") or [] if h.get("val/acc") is not None]
    return max(history, key=lambda h: h["val/acc"]) if history else {}


def calibration(results: dict[str, Any]) -> str:
    """Per run: the best checkpoint's temperature, the validation ECE after fitting it (what a
    temperature fitted on validation can reach) and the test ECE before → after."""
    head = (
        "| encoder | seed | test acc | val acc | T | val ECE raw → calibrated "
        f"| test ECE raw → calibrated | test ECE ≤ {ECE_TARGET} |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    runs = _runs(results)
    for name in [n for n in ORDER if n in runs]:
        for run in runs[name]:
            if run.get("test_ece") is None or run.get("test_ece_raw") is None:
                continue
            best = _best_epoch(run)
            val = (best.get("val/ece_raw"), best.get("val/ece"))
            temperature = best.get("val/temperature")
            met = "yes" if run["test_ece"] <= ECE_TARGET else "**no**"
            cells = [
                name,
                str(run["seed"]),
                f"{run['test_acc']:.3f}",
                f"{best['val/acc']:.3f}" if best else "—",
                f"{temperature:.3f}" if temperature is not None else "—",
                f"{val[0]:.3f} → {val[1]:.3f}" if None not in val else "—",
                f"{run['test_ece_raw']:.3f} → {run['test_ece']:.4f}",
                met,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _correct(runs: Sequence[dict[str, Any]], keep: np.ndarray | None = None) -> np.ndarray:
    """(S, N) per-example correctness, paired by test example (compare sorts them by index)."""
    rows = np.array([r["correct"] for r in runs], dtype=np.int64)
    return rows if keep is None else rows[:, keep]


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, str]:
    """Accuracy of ``a`` minus that of ``b`` and the paired test's p-value, from correctness."""
    labels = np.zeros(a.shape[1], dtype=np.int64)  # correct ⇔ prediction 0 == label 0
    p, test = accuracy_p_value(labels, 1 - a, 1 - b)
    return float(a.mean() - b.mean()), p, test


def _diff(name_a: str, name_b: str, result: tuple[float, float, str]) -> str:
    d, p, test = result
    return f"{name_a} − {name_b}: {d * 100:+.1f} points (p = {p:.2g}, {test})"


def claims(results: dict[str, Any]) -> list[str]:
    """The write-up's claims on one dataset, one markdown bullet each (skipped if a row is
    missing)."""
    runs = _runs(results)
    out = []
    c = {n: _correct(rs) for n, rs in runs.items() if rs[0].get("correct")}  # not the reference
    if {"attention", "lstm"} <= c.keys():
        recurrent = [n for n in ("lstm", "gru", "bilstm") if n in c]
        best = max(recurrent, key=lambda n: c[n].mean())
        parts = [_diff("attention", "lstm", paired(c["attention"], c["lstm"]))]
        if best != "lstm":
            parts.append(_diff("attention", best, paired(c["attention"], c[best])))
        out.append('"Attention is worth it: a consistent 3-5% improvement": ' + "; ".join(parts))
    if "cnn" in c:
        walls = {
            n: np.mean([r["wall_time_s"] for r in rs])
            for n, rs in runs.items()
            if not rs[0].get("reference") and all(r.get("wall_time_s") for r in rs)
        }
        neural = [n for n in c if not runs[n][0].get("reference")]
        best = max(neural, key=lambda n: c[n].mean())
        rank = sorted(walls, key=walls.get).index("cnn") + 1 if "cnn" in walls else None
        speed = f"cnn is #{rank} of {len(walls)} by wall time ({_seconds(walls['cnn'])})"
        acc = (
            "the most accurate encoder"
            if best == "cnn"
            else _diff("cnn", best, paired(c["cnn"], c[best]))
        )
        out.append(f'"CNNs are fastest but sacrifice accuracy": {speed}; {acc}')
    if {"bilstm", "lstm"} <= c.keys():
        out.append(
            '"Bidirectional processing helps": '
            + _diff("bilstm", "lstm", paired(c["bilstm"], c["lstm"]))
        )
    if "rnn" in c and ({"gru", "lstm"} & c.keys()):
        # Long: the longest fifth of the test texts, by the tokens of the run that kept the most.
        lengths = np.max([r["lengths"] for n in c for r in runs[n]], axis=0)
        cut = int(np.quantile(lengths, 1 - LONG_SHARE))
        long = lengths >= cut
        parts = [
            _diff(n, "rnn", paired(_correct(runs[n], long), _correct(runs["rnn"], long)))
            for n in ("gru", "lstm")
            if n in c
        ]
        out.append(
            f'"Gated RNNs beat the plain RNN on long sequences" (the longest fifth of the test '
            f"texts: {int(long.sum()):,} of at least {cut} tokens): " + "; ".join(parts)
        )
    return [f"- {line}" for line in out]


def blocks(root: Path = RESULTS) -> dict[str, str]:
    """Marker name → generated markdown, for every dataset with a committed results.json."""
    out, claim_lines = {}, []
    for dataset in DATASETS:
        results = load(dataset, root)
        if results is None:
            continue
        out[dataset] = table(dataset, results)
        if dataset == "imdb":
            out["calibration"] = calibration(results)
        found = claims(results)
        if found:
            claim_lines += [f"**{dataset}**", "", *found, ""]
    if claim_lines:
        out["claims"] = "\n".join(claim_lines).rstrip()
    return out


def replace(text: str, generated: dict[str, str]) -> str:
    """``text`` with each ``<!-- real-text:NAME -->…<!-- /real-text:NAME -->`` block renewed."""
    for name, body in generated.items():
        pattern = re.compile(  # the body may be empty: a block not generated yet
            rf"(<!-- real-text:{name} -->\n)(?:.*?\n)?(<!-- /real-text:{name} -->)", re.DOTALL
        )
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--write", action="store_true", help=f"renew the blocks in {', '.join(FILES)}"
    )
    mode.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = parser.parse_args(argv)
    generated = blocks()
    stale = []
    for path in (ROOT / name for name in FILES):
        text = path.read_text(encoding="utf-8")
        new = replace(text, generated)
        if args.write and new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
        elif args.check and new != text:
            stale.append(str(path))
    if stale:
        print(f"stale real-text tables in {', '.join(stale)}: run python {__file__} --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
