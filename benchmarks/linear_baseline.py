"""The reference a user would otherwise reach for: TF-IDF + a linear SVM, on our exact splits.

A thin caller of ``lit_seqcls.compare.reference`` (the reference row of ``lit-seqcls compare``):
``TfidfVectorizer`` + ``LinearSVC`` (C=1) train on the DataModule's training split (the texts our
models train on: the same validation rows held out with the same seed, the same HTML stripping)
and score its test split, here with unigrams and with unigrams + bigrams (``compare`` uses the
latter). README's "Real data" table puts our encoders next to these figures. Needs scikit-learn:
``pip install lit-seqcls[baselines]``.

    python benchmarks/linear_baseline.py --data ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datamodules import IMDBDataModule, NewsgroupsDataModule
from lit_seqcls.compare.reference import fit_predict
from lit_seqcls.compare.stats import macro_f1

try:
    from benchmarks.common import ROOT
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT

SOURCES = {
    "IMDB": (IMDBDataModule, "imdb"),
    "20 Newsgroups": (NewsgroupsDataModule, "20_newsgroups"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    print("| data | features | train / test texts | test acc | macro-F1 | fit s |")
    print("|---|---|---|---|---|---|")
    for name, (module, folder) in SOURCES.items():
        dm = module(path=str(args.data / folder))
        sizes = f"{len(dm.splits['train']):,} / {len(dm.splits['test']):,}"
        for ngrams, features in ((1, "unigrams"), (2, "unigrams + bigrams")):
            labels, preds, seconds, _ = fit_predict(dm, ngrams)
            print(
                f"| {name} | {features} | {sizes} | {(labels == preds).mean():.3f} "
                f"| {macro_f1(labels, preds):.3f} | {seconds:.0f} |"
            )


if __name__ == "__main__":
    main()
