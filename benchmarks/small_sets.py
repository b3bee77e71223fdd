"""Sets cut from the shipped real data: small sets of short texts, and a multi-label one.

Issue #17 asks whether the shipped settings, untuned, land near a TF-IDF + linear SVM on a few
thousand short texts. This script writes such sets as JSON Lines (``text``, ``label``), each with
a data config for ``TextDataModule``, so ``lit-seqcls compare`` runs them like any user's files:

- ``news-first-sentence``: 20 Newsgroups, 4,000 training posts drawn at random (seed 0), each cut
  to its first sentence of at least 3 words (after the header-like lines); the test split is the
  whole test set cut the same way.
- ``imdb-40-words``: IMDB, 3,000 training reviews drawn at random (seed 0), each cut to its
  first 40 words (HTML line breaks removed); the test split is 5,000 test reviews cut the same way.

- ``news-topic-tags`` (#18, multi-label): every 20 Newsgroups post, labelled with the set of
  words of its group's name (``comp.sys.mac.hardware`` -> ``["comp", "sys", "mac", "hardware"]``):
  33 topic tags that groups share (``comp``: 5 groups, ``religion``: 2, ``misc``: 4, ...), so a
  model is scored on each tag it gets right. Full texts, the bydate train/test split.

Only the training split of the source feeds the training file; the test file comes from the
source's test split. Run:

    python benchmarks/small_sets.py --data ../shared/data --out /tmp/small
    lit-seqcls compare --config /tmp/small/news-first-sentence/data.yaml --jobs 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from pathlib import Path

import pyarrow.parquet as pq

SEED = 0
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def first_sentence(text: str, min_words: int = 3) -> str:
    """The first sentence of ``text`` with at least ``min_words`` words, on one line.

    Example:
        >>> first_sentence("Hi.\\nI think the new drivers are broken. Anyone else?")
        'I think the new drivers are broken.'
    """
    flat = " ".join(text.split())
    for sentence in _SENTENCE_END.split(flat):
        if len(sentence.split()) >= min_words:
            return sentence
    return flat


def first_words(text: str, n: int) -> str:
    """The first ``n`` words of ``text`` (HTML line breaks removed), on one line.

    Example:
        >>> first_words("A fine<br /><br />film, truly.", 3)
        'A fine film,'
    """
    return " ".join(_HTML_BREAK.sub(" ", text).split()[:n])


def _newsgroups(folder: Path, split: str) -> list[dict]:
    with gzip.open(folder / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [{"text": r["text"], "label": r["label_text"]} for r in rows if r["text"].strip()]


def _imdb(folder: Path, split: str) -> list[dict]:
    table = pq.read_table(folder / "plain_text" / f"{split}-00000-of-00001.parquet")
    columns, names = table.to_pydict(), ["neg", "pos"]
    return [
        {"text": t, "label": names[y]}
        for t, y in zip(columns["text"], columns["label"], strict=True)
    ]


def topic_tags(group: str) -> list[str]:
    """The words of a newsgroup's name, in order, each once.

    Example:
        >>> topic_tags("comp.sys.ibm.pc.hardware")
        ['comp', 'sys', 'ibm', 'pc', 'hardware']
    """
    return list(dict.fromkeys(group.split(".")))


def _same(text: str) -> str:
    return text


def _sample(rows: list[dict], n: int | None) -> list[dict]:
    return rows if n is None or n >= len(rows) else random.Random(SEED).sample(rows, n)


# name: (reader, source folder, text cut, training rows, test rows, label map); None: all rows.
SETS = {
    "news-first-sentence": (_newsgroups, "20_newsgroups", first_sentence, 4000, None, None),
    "imdb-40-words": (_imdb, "imdb", lambda t: first_words(t, 40), 3000, 5000, None),
    "news-topic-tags": (_newsgroups, "20_newsgroups", _same, None, None, topic_tags),
}


def write_set(name: str, data: Path, out: Path) -> Path:
    """Write ``out/name/{train,test}.jsonl`` and ``data.yaml``; return the config's path."""
    read, folder, cut, n_train, n_test, relabel = SETS[name]
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = [{**r, "text": cut(r["text"])} for r in _sample(read(data / folder, split), n)]
        if relabel is not None:
            rows = [{**r, "label": relabel(r["label"])} for r in rows]
        rows = [r for r in rows if r["text"]]
        with open(target / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    config = target / "data.yaml"
    config.write_text(
        f"# {name}: written by benchmarks/small_sets.py\n"
        "data:\n"
        "  class_path: datamodules.TextDataModule\n"
        "  init_args:\n"
        "    data_files:\n"
        f"      train: {target / 'train.jsonl'}\n"
        f"      test: {target / 'test.jsonl'}\n"
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=sorted(SETS))
    args = parser.parse_args()
    for name in args.sets:
        print(write_set(name, args.data.resolve(), args.out.resolve()))


if __name__ == "__main__":
    main()
