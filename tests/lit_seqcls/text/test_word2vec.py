"""``lit-seqcls vectors``: word2vec on the training + unlabelled texts, never validation or test."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest

from lit_seqcls.cli import main
from lit_seqcls.text import load_vectors, train_word_tokenizer
from lit_seqcls.text.word2vec import _stable_hash, train_word2vec, write_word2vec_text
from lit_seqcls.vectors_command import corpus_texts

pytest.importorskip("gensim")

ROOT = Path(__file__).resolve().parents[3]
IMDB = ROOT / "tests" / "fixtures" / "imdb"  # 120 train, 60 test, 20 unsupervised reviews
CONFIG = ROOT / "configs" / "data" / "imdb.yaml"
SMALL = ["--dim", "16", "--epochs", "2"]


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


def _vectors(tmp_path, name: str, *args: str) -> Path:
    out = tmp_path / name
    main([
        "vectors", "--config", str(CONFIG), "--data.init_args.path", str(IMDB),
        "--data.init_args.include_unsupervised", "true", "--data.init_args.cache_dir",
        str(tmp_path / "cache"), "--output", str(out), *SMALL, *args,
    ])  # fmt: skip
    return out


def test_trained_saved_and_loaded_with_its_coverage_reported(tmp_path, capsys):
    out = _vectors(tmp_path, "w2v.txt")
    printed = capsys.readouterr().out
    # 120 reviews less the 10% validation rows carved with the seed, and the unlabelled ones.
    assert "on 108 training texts and 20 unlabelled texts" in printed
    found = re.search(r"Coverage of the model's vocabulary: ([\d,]+) words \(([\d.]+)%\)", printed)
    assert found and float(found.group(2)) == 100.0  # min_count 1: every word the model knows
    count, dim = map(int, out.read_text().splitlines()[0].split())
    assert dim == 16 and count == int(found.group(1).replace(",", "")) + 1  # + [UNK]

    # The DataModule reads them as --data.init_args.vectors and reports the same coverage.
    from datamodules import IMDBDataModule

    dm = IMDBDataModule(
        path=str(IMDB), min_frequency=2, vectors=str(out), cache_dir=str(tmp_path / "cache")
    )  # the settings of configs/data/imdb.yaml: the same tokenizer
    assert dm.pretrained_embeddings.shape == (dm.vocab_size, 16)
    assert dm.vectors_coverage == 1.0


def test_same_seed_same_vectors_other_seed_other_vectors(tmp_path):
    first = _vectors(tmp_path, "a.txt").read_text()
    assert _vectors(tmp_path, "b.txt").read_text() == first  # workers=1: bit for bit
    assert _vectors(tmp_path, "c.txt", "--seed", "1").read_text() != first
    # gensim seeds each word's first vector with `hashfxn`; Python's `hash` is salted per run.
    assert _stable_hash("film") == 0x8244BE22


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "mine.txt"
    out.write_text("my notes\n")
    with pytest.raises(SystemExit, match="--overwrite"):
        _vectors(tmp_path, "mine.txt")
    assert out.read_text() == "my notes\n"
    _vectors(tmp_path, "mine.txt", "--overwrite")
    assert out.read_text().split("\n", 1)[0].endswith(" 16")


def _split(texts: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"text": texts})


def test_only_training_and_unlabelled_texts_are_used():
    dm = SimpleNamespace(
        splits={
            "train": _split(["a good film", "a bad film"]),
            "validation": _split(["held out review"]),
            "test": _split(["the test review", "another test review"]),
            "predict": _split(["unlabelled one", "  The TEST review ", "held out review"]),
        }
    )
    train, unlabelled, dropped = corpus_texts(dm)
    assert train == ["a good film", "a bad film"]
    assert unlabelled == ["unlabelled one"] and dropped == 2  # also test / validation texts
    assert corpus_texts(dm, unlabelled=False) == (train, [], 0)
    # Without a predict split of its own nothing is added: never the test split in its place.
    del dm.splits["predict"]
    assert corpus_texts(dm) == (train, [], 0)


def test_tokens_are_the_models_own(tmp_path):
    texts = ["The film, the FILM!", "unseen words here"]
    tokenizer = train_word_tokenizer(texts[:1])  # "unseen", "words", "here": [UNK] to the model
    vectors = train_word2vec(texts[:1] * 5, texts[1:], tokenizer, dim=4, epochs=1)
    assert sorted(vectors.words) == ["!", ",", "[UNK]", "film", "the"]
    assert vectors.tokens == 5 * 6 + 3
    lines = []
    write_word2vec_text(vectors, SimpleNamespace(write=lines.append))
    assert lines[0] == "5 4\n" and all(len(line.split()) == 5 for line in lines[1:])
    (tmp_path / "v.txt").write_text("".join(lines))
    loaded = load_vectors(tmp_path / "v.txt", tokenizer.get_vocab())
    assert loaded.found == 4 and loaded.coverage == 1.0  # [UNK] is a special: not counted
