"""User files through the CLI, and a checkpoint that alone turns raw text into predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import lightning as L
import pytest
import torch

from datamodules import IMDBDataModule, NewsgroupsDataModule, TextDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.cli import main
from lit_seqcls.text.encoding import encode
from lit_seqcls.text.tokenization import load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
CNN = str(ROOT / "configs" / "model" / "cnn.yaml")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
NEW_TEXTS = ["a good film", "", "bad bad film 😀", "unseen words only", "فيلم good"]


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


def _rows(n: int) -> list[dict]:
    words = ["good", "bad"]
    return [{"text": f"{words[i % 2]} film {i % 7}", "label": words[i % 2]} for i in range(n)]


def _trained_one_step(run) -> None:
    """A ``fast_dev_run=1`` fit finished its one step on a model linked to the data."""
    assert run.trainer.state.finished and run.trainer.global_step == 1
    assert run.model.hparams.vocab_size == run.datamodule.vocab_size
    assert run.model.hparams.class_names == run.datamodule.class_names


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_fit_on_user_files_in_each_format(fmt, tmp_path, cli_runs):
    files = {}
    for split, n in (("train", 40), ("test", 10)):
        path = tmp_path / f"{split}.{fmt}"
        if fmt == "jsonl":
            path.write_text("\n".join(json.dumps(r) for r in _rows(n)))
        else:
            getattr(datasets.Dataset.from_list(_rows(n)), f"to_{fmt}")(str(path))
        files[split] = str(path)
    main(["fit", "--data", "datamodules.TextDataModule",
          "--data.data_files.train", files["train"], "--data.data_files.test", files["test"],
          "--config", CNN, "--trainer.fast_dev_run=1", "--model.embedding_dim=8",
          *QUIET])  # fmt: skip
    (run,) = cli_runs
    _trained_one_step(run)
    assert run.datamodule.class_names == ["bad", "good"]
    sizes = {name: len(split) for name, split in run.datamodule.splits.items()}
    assert sizes == {"train": 36, "validation": 4, "test": 10}


@pytest.mark.parametrize(("side", "max_length"), [("right", 16), ("left", 2)])
def test_checkpoint_alone_predicts_like_the_in_memory_model(side, max_length, tmp_path):
    # max_length 2 cuts "bad bad film 😀" and "unseen words only": `left` keeps their ends,
    # and predict from the checkpoint alone must cut them the same way.
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in _rows(60)))
    dm = TextDataModule(
        data_files={"train": str(train)},
        batch_size=8,
        max_length=max_length,
        truncation_side=side,
    )
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8,
                               class_names=dm.class_names)  # fmt: skip
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)

    model.eval()
    with torch.no_grad():
        ids = encode(dm.tokenizer, NEW_TEXTS, dm.max_length, side)
        # predict writes the calibrated probabilities: softmax(logits / temperature) (#18)
        expected = [(model(torch.tensor([x]), torch.tensor([len(x)])).logits
                     / model.temperature).softmax(-1)[0] for x in ids]  # fmt: skip

    # Plain data only: the checkpoint loads with weights_only and carries the text pipeline.
    pipeline = torch.load(ckpt, weights_only=True)["text_pipeline"]
    assert pipeline["class_names"] == ["bad", "good"] and pipeline["max_length"] == max_length
    assert pipeline["truncation_side"] == side
    assert load_tokenizer(pipeline["tokenizer"]).get_vocab() == dm.tokenizer.get_vocab()

    new = tmp_path / "new.txt"
    new.write_text("\n".join(NEW_TEXTS) + "\n", "utf-8")
    out = tmp_path / "preds.jsonl"
    train.unlink()  # nothing but the checkpoint and the new texts
    main(["predict", "--ckpt_path", str(ckpt), "--data.data_files.predict", str(new),
          "--predictions.output", str(out), *QUIET])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == NEW_TEXTS
    for row, probs in zip(rows, expected, strict=True):
        assert [row["probs"][c] for c in ("bad", "good")] == pytest.approx(probs.tolist(), abs=1e-5)

    # New labelled files are scored the same way (labels by name, as in training).
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps(r) for r in _rows(12)))
    main(["test", "--ckpt_path", str(ckpt), "--data.data_files.test", str(labelled), *QUIET])


FIXTURES = ROOT / "tests" / "fixtures"
TINY_MODEL = ["--config", CNN, "--model.embedding_dim=8", "--trainer.fast_dev_run=1", *QUIET]


@pytest.mark.parametrize(
    ("config", "path"),
    [("imdb", FIXTURES / "imdb"), ("newsgroups", FIXTURES / "20_newsgroups")],
)
def test_shipped_real_data_configs_run_on_the_fixtures(config, path, cli_runs):
    data = str(ROOT / "configs" / "data" / f"{config}.yaml")
    main(["fit", "--config", data, "--data.init_args.path", str(path), *TINY_MODEL])
    (run,) = cli_runs
    _trained_one_step(run)
    expected = {"imdb": (IMDBDataModule, 2), "newsgroups": (NewsgroupsDataModule, 20)}[config]
    assert (type(run.datamodule), run.datamodule.num_classes) == expected
    assert run.datamodule.path == str(path)


def test_local_files_example_config_runs(tmp_path, cli_runs):
    (tmp_path / "data").mkdir()
    for split, n in (("train", 30), ("test", 10)):
        rows = _rows(n)
        (tmp_path / "data" / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    main(["fit", "--config", str(ROOT / "configs" / "data" / "local_files.yaml"), *TINY_MODEL])
    (run,) = cli_runs
    _trained_one_step(run)
    # The config's relative paths are read from the working directory.
    assert run.datamodule.data_files == {"train": ["data/train.jsonl"], "test": ["data/test.jsonl"]}
    assert len(run.datamodule.splits["test"]) == 10
