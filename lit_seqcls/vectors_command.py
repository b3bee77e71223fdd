"""``lit-seqcls vectors``: word2vec vectors from a DataModule's training and unlabelled texts.

    lit-seqcls vectors --config lit_seqcls:data/imdb.yaml --output imdb-w2v-100d.txt \\
        --data.init_args.path ../shared/data/imdb --data.init_args.include_unsupervised true
    lit-seqcls fit --config lit_seqcls:data/imdb.yaml --config lit_seqcls:model/cnn.yaml \\
        --data.init_args.vectors imdb-w2v-100d.txt --model.embedding_dim 100

The DataModule is built from the data configs exactly as ``fit`` builds it (the ``data:``
section of each ``--config``, then ``--data.*`` arguments), so the vectors see the texts and
the tokenizer the model will see. Which texts (``corpus_texts``):

- the training split *after* the validation rows were carved from it (the same seed, so the
  same rows as in ``fit``): validation texts are never used;
- the ``predict`` split, if the DataModule has one of its own and ``--unlabelled true``
  (IMDB's 50,000 ``unsupervised`` reviews with ``include_unsupervised: true``), minus any text
  that is also a validation or test text (compared lowercased and trimmed);
- never the test split: without a ``predict`` split nothing else is added (``fit``'s
  ``predict`` falls back to ``test``; this command does not).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lit_seqcls.plugins import build_datamodule
from lit_seqcls.runtime.atomic import atomic_write
from lit_seqcls.runtime.outputs import check_output_file
from lit_seqcls.text.vectors import load_vectors
from lit_seqcls.text.word2vec import train_word2vec, write_word2vec_text
from lit_seqcls.trust import check_untrusted, read_config_file
from lit_seqcls.validation import parse_bool

TRAIN, VAL, TEST, PREDICT = "train", "validation", "test", "predict"


def main(argv: list[str]) -> None:
    """Run ``lit-seqcls vectors`` with ``argv`` (the arguments after ``vectors``)."""
    options, data_args = _parser().parse_known_args(argv)
    output = Path(options.output).expanduser()
    for config in options.config:
        check_untrusted(read_config_file(config), f"config {config}")
    dm = datamodule(options.config, data_args)
    check_output_file(
        output,
        dm.input_files(),
        overwrite=options.overwrite,
        option="--output",
        overwrite_option="--overwrite",
        kind="vectors",
    )
    train, unlabelled, dropped = corpus_texts(dm, options.unlabelled)
    left_out = f" ({dropped:,} more left out: validation/test texts)" if dropped else ""
    print(
        f"Training word2vec ({options.dim}d, window {options.window}, {options.epochs} epochs, "
        f"{options.workers} worker(s)) on {len(train):,} training texts and {len(unlabelled):,} "
        f"unlabelled texts{left_out} ...",
        flush=True,
    )
    start = time.perf_counter()
    vectors = train_word2vec(
        train,
        unlabelled,
        dm.tokenizer,
        dm.normalize,
        dim=options.dim,
        window=options.window,
        min_count=options.min_count,
        epochs=options.epochs,
        workers=options.workers,
        seed=options.seed,
    )
    seconds = time.perf_counter() - start
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(output, "w", encoding="utf-8") as f:
        written = write_word2vec_text(vectors, f)
    loaded = load_vectors(output, dm.tokenizer.get_vocab())
    print(
        f"Wrote {written:,} vectors to {output} ({vectors.tokens:,} tokens, {seconds:.0f} s). "
        f"Coverage of the model's vocabulary: {loaded.found:,} words ({loaded.coverage:.1%}).\n"
        f"Use them: lit-seqcls fit ... --data.init_args.vectors {output} "
        f"--model.embedding_dim {options.dim}"
    )


def corpus_texts(dm: Any, unlabelled: bool = True) -> tuple[list[str], list[str], int]:
    """``(training texts, unlabelled texts, unlabelled texts left out)`` of DataModule ``dm``.

    The training texts are ``dm.splits["train"]`` after the validation split was carved from it;
    the unlabelled ones are ``dm``'s own ``predict`` split (if ``unlabelled``), less any text
    that is also in its validation or test split. No other split is read.
    """
    splits = dm.splits  # the validation rows are carved from train here, as in `fit`
    if TRAIN not in splits:
        raise ValueError(f"{type(dm).__name__} has no training split to train vectors on")
    train = list(splits[TRAIN]["text"])
    if not unlabelled or PREDICT not in splits:
        return train, [], 0
    held_out = {_key(t) for name in (VAL, TEST) if name in splits for t in splits[name]["text"]}
    extra = list(splits[PREDICT]["text"])
    kept = [t for t in extra if _key(t) not in held_out]
    return train, kept, len(extra) - len(kept)


def datamodule(configs: list[str], data_args: list[str]) -> Any:
    """The DataModule of the ``data:`` sections of ``configs`` and the ``--data.*`` arguments,
    parsed and checked as ``fit`` does (a ``class_path`` must name a DataModule class)."""
    unknown = [a for a in data_args if a.startswith("--") and not a.startswith("--data")]
    if unknown:
        raise SystemExit(f"lit-seqcls vectors: unknown arguments {unknown} (see --help)")
    sections = [(read_config_file(config) or {}).get("data") for config in configs]
    return build_datamodule(sections, data_args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-seqcls vectors",
        allow_abbrev=False,  # `--d...` must reach the DataModule's parser, not become `--dim`
        description="Train word2vec vectors on a DataModule's training texts (after the "
        "validation split is carved out) and its unlabelled texts, tokenized as the model "
        "tokenizes them; the test and validation texts are never used. Any --data.* argument "
        "of `fit` is accepted.",
    )
    parser.add_argument("--config", action="append", default=[], help="a data config (repeat)")
    parser.add_argument("--output", required=True, help="the vectors file to write (.txt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument(
        "--unlabelled",
        type=parse_bool,
        default=True,
        help="also train on the DataModule's own predict split (IMDB: include_unsupervised: "
        "true) less any validation/test text (default: true)",
    )
    parser.add_argument("--dim", type=int, default=100, help="vector size = embedding_dim")
    parser.add_argument("--window", type=int, default=5, help="context words on each side")
    parser.add_argument(
        "--min_count", type=int, default=1, help="words seen fewer times get no vector"
    )
    parser.add_argument("--epochs", type=int, default=5, help="passes over the texts")
    parser.add_argument(
        "--workers", type=int, default=1, help="threads (1: deterministic; more: faster)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _key(text: str) -> str:
    return text.strip().lower()  # as datamodules/overlap.py compares texts across splits
