"""Is the shadow tokenizer worth keeping? A cold DataModule start with it and without it (#15).

``lit_seqcls/text/encoding.py`` re-implements the Rust WordLevel tokenizer on ASCII in Python and
``datamodules/pipeline.py`` runs it (``encode_split``: in forked workers when first measured,
in-process in ``CHUNK_ROWS`` chunks since). The alternative is the tokenizer's own batch
encoding, ``rust_encode_split`` below: ``Tokenizer.encode_batch_fast`` in Rust threads, one
process, the same Arrow columns. Issue #15's rule: keep the shadow path only if
it saves more than a fifth of a cold start on the shipped datasets.

A cold start is ``vocab_size`` + ``num_classes`` + ``prepare_data`` + ``setup`` of the shipped
DataModule in a fresh process with an empty cache *and* an empty ``HF_HOME`` (so the parquet /
JSON files are converted to Arrow again): loading and checking the raw splits, training the
tokenizer, encoding, writing the Arrow cache. Both ways take turns (the first one alternates
between rounds) on IMDB (train + test), IMDB with the 50,000 unsupervised reviews (the predict
split) and 20 Newsgroups. After the first round the two caches are compared: every split's
``input_ids`` and ``length`` columns must be equal (asserted).

    python benchmarks/shadow_vs_rust.py                       # ../shared/data, 3 rounds
    python benchmarks/data_pipeline.py --only shadow_vs_rust  # the same, as a section there
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: the repository root is not on sys.path
    sys.path.insert(0, str(ROOT))

import datamodules  # noqa: E402
from datamodules import pipeline  # noqa: E402
from datamodules.base import TextClassificationDataModule  # noqa: E402


def _module(*names: str) -> Any:
    """The first of ``names`` that imports: lit_seqcls modules are moving into subpackages."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError(" / ".join(names))


UNK_TOKEN = _module("lit_seqcls.text.tokenization", "lit_seqcls.tokenization").UNK_TOKEN
CHARS_PER_TOKEN = 64  # as encoding.py: texts longer than max_length × this are cut first
CHUNK_ROWS = 1000
LONG_TEXTS = [0]  # texts cut before tokenizing, counted by `rust_encode`
WAYS = {
    "shadow": "shadow (`encode_split`, fork pool)",
    "shadow-1proc": "shadow, one process (no fork pool)",
    "rust": "rust (`encode_batch_fast`)",
}
DATASETS: dict[str, Callable[[Path, str], TextClassificationDataModule]] = {
    "IMDB (train + test)": lambda d, c: datamodules.IMDBDataModule(
        path=str(d / "imdb"), cache_dir=c
    ),
    "IMDB + 50k unsupervised": lambda d, c: datamodules.IMDBDataModule(
        path=str(d / "imdb"), cache_dir=c, include_unsupervised=True
    ),
    "20 Newsgroups": lambda d, c: datamodules.NewsgroupsDataModule(
        path=str(d / "20_newsgroups"), cache_dir=c
    ),
}


# ---- the alternative: the tokenizer's own batch encoding ----------------------------------------
def rust_encode(tokenizer, texts: list[str], max_length: int | None) -> list[list[int]]:
    """``encoding.encode`` without the shadow tokenizer: ``encode_batch_fast`` (Rust threads),
    truncation by the tokenizer, ``[UNK]`` for a text without tokens, long texts cut first."""
    unk = tokenizer.token_to_id(UNK_TOKEN)
    bound = None if max_length is None else max_length * CHARS_PER_TOKEN
    long = {} if bound is None else {i: t for i, t in enumerate(texts) if len(t) > bound}
    LONG_TEXTS[0] += len(long)
    texts = ["" if i in long else t for i, t in enumerate(texts)]
    ids = _batch(tokenizer, texts, max_length)
    for i, text in long.items():
        ids[i] = _ids_of_long(tokenizer, text, max_length, bound)
    return [x or [unk] for x in ids]


def _batch(tokenizer, texts: list[str], limit: int | None) -> list[list[int]]:
    if limit is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(limit)
    return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def _ids_of_long(tokenizer, text: str, max_length: int, bound: int) -> list[int]:
    # encoding.TextEncoder._ids_of_long with the tokenizer alone: the part that would stay.
    first = bound
    while True:
        piece = text
        if len(text) > bound:
            at = max(text.rfind(c, bound // 2, bound + 1) for c in "\t\n\v\f\r ")
            piece = text[: at if at > 0 else bound]
        ids = _batch(tokenizer, [piece], max_length + 1)[0]
        if len(ids) > max_length or piece is text or bound >= first * 64:
            return ids[:max_length]
        bound *= 4


def rust_encode_split(split, tokenizer, normalize, max_length, fingerprint=None):
    """``pipeline.encode_split`` with ``rust_encode``: one process, no fork pool."""
    texts = split.select_columns(["text"])
    values, lengths = [], []
    for start in range(0, len(split), CHUNK_ROWS):
        batch = [normalize(t) for t in texts[start : start + CHUNK_ROWS]["text"]]
        ids = rust_encode(tokenizer, batch, max_length)
        n = np.fromiter(map(len, ids), np.int32, len(ids))
        values.append(np.fromiter(chain.from_iterable(ids), np.int32, int(n.sum())))
        lengths.append(n)
    arrays = []
    for v, n in zip(values, lengths, strict=True):
        offsets = np.zeros(len(n) + 1, np.int32)
        np.cumsum(n, out=offsets[1:])
        arrays.append(pa.ListArray.from_arrays(pa.array(offsets), v))
    columns = {
        "input_ids": pa.chunked_array(arrays, type=pa.list_(pa.int32())),
        "length": pa.chunked_array(lengths, type=pa.int32()),
        "index": pa.array(np.arange(len(split), dtype=np.int64)),
    }
    features = {
        "input_ids": datasets.List(datasets.Value("int32")),
        "length": datasets.Value("int32"),
        "index": datasets.Value("int64"),
    }
    if "label" in split.column_names:
        labels = split.select_columns(["label"]).with_format("arrow")[:]["label"].combine_chunks()
        columns = {"label": labels, **columns}
        features = {"label": split.features["label"], **features}
    info = datasets.DatasetInfo(features=datasets.Features(features))
    table = datasets.table.InMemoryTable(pa.table(columns)).cast(info.features.arrow_schema)
    return datasets.Dataset(table, info, fingerprint=fingerprint)


# ---- one cold start, in a fresh process ---------------------------------------------------------
def _cpu() -> float:
    t = os.times()  # this process's threads (Rust) and its waited-for children (fork pool)
    return t.user + t.system + t.children_user + t.children_system


def cold_start(data: Path, name: str, way: str, cache: str) -> dict[str, float]:
    """Times of one cold start; the encoding step is timed apart (wall and CPU)."""
    spent = {"encode": 0.0, "encode_cpu": 0.0, "long_texts": 0}
    original = TextClassificationDataModule._encode

    def encode(self, split, fingerprint_):
        wall, cpu = time.perf_counter(), _cpu()
        if way == "shadow":
            out = original(self, split, fingerprint_)
        elif way == "shadow-1proc":  # the shadow tokenizer (the fork pool is gone: as "shadow")
            out = pipeline.encode_split(split, self.tokenizer, self.normalize, self.max_length,
                                        fingerprint_)  # fmt: skip
        else:
            out = rust_encode_split(split, self.tokenizer, self.normalize, self.max_length,
                                    fingerprint_)  # fmt: skip
        spent["encode"] += time.perf_counter() - wall
        spent["encode_cpu"] += _cpu() - cpu
        spent["long_texts"] = LONG_TEXTS[0]
        return out

    TextClassificationDataModule._encode = encode
    wall, cpu = time.perf_counter(), _cpu()
    dm = DATASETS[name](data, cache)
    _ = dm.vocab_size, dm.num_classes
    tokenizer = time.perf_counter()
    dm.prepare_data()
    dm.setup("fit")
    total = time.perf_counter() - wall
    return {
        "total": total,
        "total_cpu": _cpu() - cpu,
        "tokenizer": tokenizer - wall,  # raw splits loaded + checked, tokenizer trained
        **spent,
    }


def _fresh(data: Path, name: str, way: str, cache: str, home: str) -> dict[str, float]:
    env = {**os.environ, "HF_HOME": home, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("TOKENIZERS_PARALLELISM", None)  # as a user's shell: Rust threads on
    for attempt in range(10):
        shutil.rmtree(cache, ignore_errors=True)  # a cold start each try
        begin = time.perf_counter()
        result = subprocess.run(
            [sys.executable, __file__, "--cold", name, "--way", way, "--cache", cache,
             "--data", str(data)],
            env=env, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        # Others move modules in this tree while it runs: wait for imports to work again.
        if (
            result.returncode == 0
            or "ImportError" not in result.stderr.replace("ModuleNotFoundError", "ImportError")
            or attempt == 9
        ):
            break
        print(f"(import failed, retrying in 30 s: {result.stderr.splitlines()[-1]})",
              file=sys.stderr, flush=True)  # fmt: skip
        time.sleep(30)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - begin  # with Python's imports of torch, datasets ...
    return out


def same_ids(cache_a: str, cache_b: str) -> int:
    """Rows compared; raises if any split's ids or lengths differ between the two caches."""
    rows = 0
    entries_a = sorted(p for p in Path(cache_a, "encoded").iterdir() if p.is_dir())
    entries_b = sorted(p for p in Path(cache_b, "encoded").iterdir() if p.is_dir())
    assert [p.name for p in entries_a] == [p.name for p in entries_b], "different cache keys"
    for a, b in zip(entries_a, entries_b, strict=True):
        da, db = datasets.load_from_disk(str(a)), datasets.load_from_disk(str(b))
        assert set(da) == set(db), f"{a.name}: different splits"
        for split in da:
            for column in ("input_ids", "length", "index"):
                ca = da[split].data.column(column).combine_chunks()
                cb = db[split].data.column(column).combine_chunks()
                assert ca.equals(cb), f"{a.name}/{split}: {column} differ"
            rows += len(da[split])
    return rows


def shadow_vs_rust(
    data: Path, rounds: int, names: list[str] | None = None, ways: list[str] | None = None
) -> str:
    """Cold starts, every way in turn (the order rotates each round); the first way is the
    reference: each other way's extra seconds are paired with it per round."""
    names, ways = names or list(DATASETS), ways or ["shadow", "rust"]
    runs: dict[str, dict[str, list[dict]]] = {n: {w: [] for w in ways} for n in names}
    checked: dict[str, int] = {}
    load = os.getloadavg()[0]
    for r in range(rounds):
        for name in names:
            order = ways[r % len(ways) :] + ways[: r % len(ways)]
            with tempfile.TemporaryDirectory() as tmp:
                for way in order:
                    cache, home = f"{tmp}/{way}/cache", f"{tmp}/{way}/hf_home"
                    runs[name][way].append(_fresh(data, name, way, cache, home))
                    shutil.rmtree(home, ignore_errors=True)  # (raw data: under cache/datasets)
                if r == 0:
                    for way in ways[1:]:
                        checked[name] = same_ids(f"{tmp}/{ways[0]}/cache", f"{tmp}/{way}/cache")
            print(f"round {r + 1}/{rounds} {name}: "
                  + ", ".join(f"{w} {runs[name][w][-1]['total']:.1f} s" for w in order),
                  file=sys.stderr, flush=True)  # fmt: skip
    first = ways[0]
    lines = [
        f"### Cold start by encoding path ({rounds} rounds, order rotated; load average "
        f"{load:.1f} → {os.getloadavg()[0]:.1f})",
        "",
        "| dataset | way | cold start s (median; all) | encode s | encode CPU s | rest s "
        f"| process s | {WAYS[first].split(' (')[0]} saves s | share of this cold start |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        base = runs[name][first]
        for way in ways:
            rs = runs[name][way]
            med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
            every = ", ".join(f"{x['total']:.1f}" for x in rs)
            tail = "— | —"
            if way != first:  # paired per round: both ran back to back, under about one load
                saving = [b["total"] - a["total"] for a, b in zip(base, rs, strict=True)]
                share = [d / b["total"] for d, b in zip(saving, rs, strict=True)]
                tail = (
                    f"{statistics.median(saving):.2f} | **{statistics.median(share):.1%}** "
                    f"({min(share):.1%} – {max(share):.1%})"
                )
            lines.append(
                f"| {name} | {WAYS[way]} | {med['total']:.2f} ({every}) | {med['encode']:.2f} "
                f"| {med['encode_cpu']:.2f} | {med['total'] - med['encode']:.2f} "
                f"| {med['process']:.1f} | {tail} |"
            )
    long = ", ".join(f"{n} {runs[n]['rust'][0]['long_texts']}" for n in names if "rust" in ways)
    lines += [
        "",
        f"saves: that way's cold start minus {first}'s, paired per round (median); share: of "
        "that way's cold start (what removing the difference would cost a user), median "
        "(range). encode: the DataModule's `_encode` calls (all splits), wall and CPU (Rust "
        "threads and forked workers included); rest: loading, checking, tokenizer training, "
        "Arrow cache; process: the whole child process, imports included. Ids: every way's "
        f"cache equals {first}'s, every split's `input_ids`, `length` and `index`: "
        + ", ".join(f"{n} {rows:,} rows" for n, rows in checked.items())
        + "."
        + (
            f" Texts cut before tokenizing (over max_length × 64 characters): {long}."
            if long
            else ""
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS))
    parser.add_argument("--ways", nargs="+", choices=list(WAYS), default=["shadow", "rust"])
    parser.add_argument("--cold", help=argparse.SUPPRESS)  # internal: one start, in a child
    parser.add_argument("--way", choices=list(WAYS), help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    if args.cold:
        print(json.dumps(cold_start(args.data, args.cold, args.way, args.cache)))
        return
    print(shadow_vs_rust(args.data, args.rounds, args.datasets, args.ways))


if __name__ == "__main__":
    main()
