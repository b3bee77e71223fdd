"""Class weights on imbalanced 20 Newsgroups (#18): the fixed subsample, and the paired test.

``make``: writes a copy of 20 Newsgroups in the hub layout whose training split keeps only a
tenth of the posts of the 10 classes with an even label id (0, 2, ..., 18), drawn with
``numpy.random.default_rng(0)`` per class in file order; the test split is copied unchanged.

``pvalue``: reads the per-example test predictions of two ``lit-seqcls compare`` folders (the
same encoder, one with ``--model.class_weights auto``) and prints each macro-F1 and the paired
permutation p-value of ``lit_seqcls.compare.stats`` (the test ``compare`` itself uses),
over every seed the two have (seed k paired with seed k).

    python benchmarks/imbalance_20ng.py make --source ../shared/data/20_newsgroups \
        --output ../shared/data/20_newsgroups_imbalanced
    python benchmarks/imbalance_20ng.py pvalue comparisons/ng-imb-none comparisons/ng-imb-auto
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter
from pathlib import Path

import numpy as np

from lit_seqcls.compare.stats import macro_f1, macro_f1_p_value

KEEP = 0.1


def make(source: Path, output: Path) -> None:
    if output.exists():
        raise SystemExit(f"{output} exists: choose a new folder (inputs are never overwritten)")
    with gzip.open(source / "train.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    rng = np.random.default_rng(0)
    kept = []
    for label in sorted({r["label"] for r in rows}):
        members = [r for r in rows if r["label"] == label]
        if label % 2 == 0:
            n = max(1, round(KEEP * len(members)))
            members = [members[i] for i in sorted(rng.choice(len(members), n, replace=False))]
        kept += members
    output.mkdir(parents=True)
    with gzip.open(output / "train.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
    (output / "test.jsonl.gz").write_bytes((source / "test.jsonl.gz").read_bytes())
    counts = dict(sorted(Counter(r["label"] for r in kept).items()))
    print(f"{len(kept):,} of {len(rows):,} training posts kept; per label: {counts}")


def _predictions(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Test labels (N,) and every seed's predictions (S, N) of the comparison's one encoder."""
    paths = sorted(folder.glob("runs/*-seed*/test_predictions.jsonl"))
    if not paths:
        raise SystemExit(f"no runs/<encoder>-seed<k>/test_predictions.jsonl under {folder}")
    runs = [[json.loads(line) for line in path.open()] for path in paths]
    runs = [sorted(rows, key=lambda r: r["index"]) for rows in runs]
    names = sorted({r[k] for rows in runs for r in rows for k in ("label", "pred")})
    ids = {n: i for i, n in enumerate(names)}
    labels = np.array([ids[r["label"]] for r in runs[0]])
    return labels, np.array([[ids[r["pred"]] for r in rows] for rows in runs])


def pvalue(a: Path, b: Path) -> None:
    labels, preds_a = _predictions(a)
    labels_b, preds_b = _predictions(b)
    if not np.array_equal(labels, labels_b):
        raise SystemExit("the two comparisons were not tested on the same test split")
    for folder, preds in ((a, preds_a), (b, preds_b)):
        scores = [macro_f1(labels, row) for row in preds]
        shown = " / ".join(f"{f:.4f}" for f in scores)
        print(f"macro-F1 {folder}: {np.mean(scores):.4f} (seeds: {shown})")
    seeds = min(len(preds_a), len(preds_b))  # seed k paired with seed k
    p = macro_f1_p_value(labels, preds_a[:seeds], preds_b[:seeds])
    print(f"paired permutation p-value ({seeds} seed(s) each): {p:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--source", type=Path, required=True)
    m.add_argument("--output", type=Path, required=True)
    p = sub.add_parser("pvalue")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.source, args.output)
    else:
        pvalue(args.a, args.b)


if __name__ == "__main__":
    main()
