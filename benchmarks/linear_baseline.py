"""The reference a user would otherwise reach for: TF-IDF + a linear SVM, on our exact splits.

scikit-learn's ``TfidfVectorizer`` + ``LinearSVC`` (C=1) train on the DataModule's training split
(the texts our models train on: the same validation rows held out with the same seed, the same
HTML stripping) and score its test split, with unigrams and with unigrams + bigrams. README's
"Real data" table puts our encoders next to these figures. scikit-learn is not a dependency of
the package: ``pip install scikit-learn`` to run this.

    python benchmarks/linear_baseline.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from datamodules import IMDBDataModule, NewsgroupsDataModule

try:
    from benchmarks.common import ROOT
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT

SOURCES = {
    "IMDB": (IMDBDataModule, "imdb"),
    "20 Newsgroups": (NewsgroupsDataModule, "20_newsgroups"),
}


def scores(dm, ngrams: int) -> dict[str, float]:
    """Test accuracy and macro-F1 of TF-IDF (1..``ngrams``-grams) + LinearSVC, and fit seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.svm import LinearSVC

    train, test = dm.splits["train"], dm.splits["test"]
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, ngrams), sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform([dm.normalize(t) for t in train["text"]])
    classifier = LinearSVC(C=1.0).fit(features, train["label"])
    seconds = time.perf_counter() - start
    predicted = classifier.predict(vectorizer.transform([dm.normalize(t) for t in test["text"]]))
    return {
        "acc": accuracy_score(test["label"], predicted),
        "f1": f1_score(test["label"], predicted, average="macro"),
        "seconds": seconds,
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
            r = scores(dm, ngrams)
            print(
                f"| {name} | {features} | {sizes} | {r['acc']:.3f} | {r['f1']:.3f} "
                f"| {r['seconds']:.0f} |"
            )


if __name__ == "__main__":
    main()
