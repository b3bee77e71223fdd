"""Nothing lit-seqcls writes destroys a user's file (issue #14, "Trust boundary").

``predict`` never writes over one of its inputs (by path, symlink, relative path or hard link) or
over an existing file that is not an earlier predictions file unless told to; ``compare`` never
writes into a folder of the user's; text in CSV files cannot run as a spreadsheet formula.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import lightning as L
import pytest

from callbacks import sinks
from datamodules import TextDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.cli import main
from lit_seqcls.compare import RunResult, execution
from lit_seqcls.compare import runner as compare_module
from lit_seqcls.runtime.outputs import OutputFileError, check_output_file, spreadsheet_safe
from lit_seqcls.runtime.prediction import PredictionWriter
from lit_seqcls.shipped_configs import shipped_config

SYNTHETIC = str(shipped_config("data/synthetic.yaml"))  # compare checks the data before any run

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
CUSTOMERS = 'id,text\n1,a good film\n2,bad bad film\n3,=HYPERLINK("http://x")\n'


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny model whose checkpoint alone predicts on new files (its text pipeline inside)."""
    root = tmp_path_factory.mktemp("model")
    train = root / "train.jsonl"
    rows = [{"text": f"{w} film {i % 3}", "label": w} for i, w in enumerate(["good", "bad"] * 12)]
    train.write_text("\n".join(json.dumps(r) for r in rows))
    dm = TextDataModule(data_files={"train": str(train)}, batch_size=8, cache_dir=str(root / "c"))
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8,
                               class_names=dm.class_names)  # fmt: skip
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    trainer.save_checkpoint(root / "model.ckpt")
    return root / "model.ckpt"


@pytest.fixture
def customers(tmp_path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS)
    return path


def _predict(checkpoint: Path, data: Path, output: str | Path, *extra: str) -> None:
    main(["predict", "--ckpt_path", str(checkpoint), "--data.data_files.predict", str(data),
          "--predictions.output", str(output), *QUIET, *extra])  # fmt: skip


def _refusal(run, *args) -> str:
    """The message of a refused write: an ``OutputFileError``, or the CLI's one-line exit."""
    with pytest.raises((OutputFileError, SystemExit)) as err:
        run(*args)
    return str(err.value.code if isinstance(err.value, SystemExit) else err.value)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- predict -----------------------------------------------------------------------------------
def test_predict_onto_its_own_input_csv_is_refused_and_the_csv_kept(checkpoint, customers):
    # The reported data loss: this command exited 0 and replaced the CSV with JSON lines.
    message = _refusal(_predict, checkpoint, customers, customers)
    assert f"{customers} is one of this run's input files" in message
    assert "--predictions.output" in message and "customers-predictions.jsonl" in message
    assert customers.read_text() == CUSTOMERS


@pytest.mark.parametrize("form", ["symlink", "relative", "hard link"])
def test_predict_never_writes_over_an_input_even_with_overwrite(form, checkpoint, customers):
    (customers.parent / "sub").mkdir()
    if form == "symlink":
        output = customers.parent / "link.csv"
        output.symlink_to(customers)
    elif form == "relative":
        output = Path("sub") / ".." / customers.name  # the tests run in tmp_path
    else:
        output = customers.parent / "sub" / "same.csv"
        os.link(customers, output)
    message = _refusal(_predict, checkpoint, customers, output, "--predictions.overwrite=true")
    assert "input files" in message and str(output) in message
    assert customers.read_text() == CUSTOMERS
    assert not list(customers.parent.rglob("*.jsonl"))  # refused before anything was written


def test_predict_refuses_a_foreign_file_unless_told_to_overwrite(checkpoint, customers, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    message = _refusal(_predict, checkpoint, customers, notes)
    assert f"{notes} already exists and is not an earlier lit-seqcls predictions file" in message
    assert "--predictions.overwrite true" in message
    assert notes.read_text() == "my notes\n"

    _predict(checkpoint, customers, notes, "--predictions.overwrite", "true")
    assert [r["index"] for r in _rows(notes)] == [0, 1, 2]


def test_predict_replaces_its_own_earlier_predictions(checkpoint, customers, tmp_path):
    output = tmp_path / "out" / "predictions.jsonl"
    _predict(checkpoint, customers, output)
    first = _rows(output)
    _predict(checkpoint, customers, output)  # a rerun, no flag needed
    assert _rows(output) == first and [r["index"] for r in first] == [0, 1, 2]
    assert first[2]["text"] == '=HYPERLINK("http://x")'  # JSON keeps the text as it is


def test_predict_never_writes_over_its_checkpoint(checkpoint, customers):
    # A DataModule that does not know the checkpoint: the writer checks it once it is restored.
    root = checkpoint.parent
    files = {"train": str(root / "train.jsonl"), "predict": str(customers)}
    dm = TextDataModule(data_files=files, batch_size=8, cache_dir=str(root / "c"))
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8,
                               class_names=dm.class_names)  # fmt: skip
    link = customers.with_name("model.ckpt")
    link.symlink_to(checkpoint)
    writer = PredictionWriter(output=str(link), overwrite=True)
    trainer = L.Trainer(callbacks=[writer], logger=False, enable_progress_bar=False)
    before = checkpoint.read_bytes()
    with pytest.raises(OutputFileError, match="is one of this run's input files"):
        trainer.predict(model, dm, ckpt_path=checkpoint)
    assert checkpoint.read_bytes() == before and writer.written is None


def test_an_empty_file_may_be_replaced_and_a_folder_is_named_as_one(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    check_output_file(empty)
    with pytest.raises(OutputFileError, match=f"{tmp_path} is a folder; give a file name"):
        check_output_file(tmp_path)


def test_the_text_data_module_lists_every_file_it_reads(tmp_path, checkpoint):
    folder = tmp_path / "hub_layout"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text("{}")
    files = {"predict": ["a.txt", "b.txt"]}
    assert TextDataModule(data_files=files).input_files() == [Path("a.txt"), Path("b.txt")]
    with_checkpoint = TextDataModule(data_files=files, from_checkpoint=str(checkpoint))
    assert with_checkpoint.input_files()[0] == checkpoint  # its tokenizer is JSON, not a file
    local = TextDataModule(path=str(folder), tokenizer_file="~/tok.json")
    assert local.input_files() == [Path("~/tok.json").expanduser(), folder / "data/train.jsonl"]


# ---- compare -----------------------------------------------------------------------------------
@pytest.fixture
def fake_runs(monkeypatch) -> list[str]:
    """``compare`` with each fit replaced by a failed run that only writes its ``fit.log``."""
    started = []

    def run_one(spec, on_event=None, control=None):
        started.append(f"{spec.encoder}-seed{spec.seed}")
        run_dir = Path(spec.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "fit.log").write_text("fake\n")
        return RunResult(spec.label, spec.seed, run_dir=str(run_dir), status="fit failed (exit 1)")

    # The local launcher runs each run's `execute_run` in this process (a thread per job).
    monkeypatch.setattr(execution, "run_one", run_one)
    return started


def test_compare_refuses_a_foreign_folder_before_running_anything(tmp_path, fake_runs):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "comparison.md").write_text("# my chapter\n")  # a name compare writes too
    args = ["--config", SYNTHETIC, "--encoders", "gru", "--output_dir", str(thesis)]
    message = _refusal(compare_module.main, args)
    assert f"--output_dir {thesis} is a folder that already holds other files" in message
    assert "--overwrite" in message
    assert fake_runs == [] and (thesis / "comparison.md").read_text() == "# my chapter\n"

    compare_module.main([*args, "--overwrite"])
    assert fake_runs == ["gru-seed0"] and (thesis / "results.json").is_file()


def test_compare_reruns_into_its_own_folder(tmp_path, fake_runs):
    # The default folder comparisons/<name>, written by a first run, is not a foreign folder.
    # (A folder cut short in its first run: tests/lit_seqcls/compare/test_runner.py.)
    args = [
        "--config",
        SYNTHETIC,
        "--encoders",
        "gru",
        "cnn",
        "--name",
        "mine",
        "--reference",
        "none",
    ]
    folder = tmp_path / "comparisons" / "mine"
    compare_module.main(args)
    compare_module.main(args)
    assert fake_runs == ["gru-seed0", "cnn-seed0"] * 2
    with (folder / "runs.csv").open() as f:
        assert [r["encoder"] for r in csv.DictReader(f)] == ["gru", "cnn"]


# ---- CSV cells ---------------------------------------------------------------------------------
def test_text_that_a_spreadsheet_would_run_is_escaped_and_numbers_are_kept():
    cells = ['=HYPERLINK("http://evil","click")', "+1", "-x", "@SUM(A1:A9)", "\tx", "\rx"]
    assert [spreadsheet_safe(c) for c in cells] == ["'" + c for c in cells]
    assert [spreadsheet_safe(c) for c in ["positive", "a=b", "", -0.5, -3, None]] == [
        "positive", "a=b", "", -0.5, -3, None,
    ]  # fmt: skip


def test_analysis_csv_files_escape_class_names_and_texts(tmp_path):
    path = tmp_path / "t.csv"
    sinks.write_csv(path, ["true \\ predicted", "=cmd|' /C calc'!A0", "pos"],
                    [["@SUM(1+1)", -2, 3], ["pos", 0.5, "-x"]])  # fmt: skip
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["true \\ predicted", "'=cmd|' /C calc'!A0", "pos"],
        ["'@SUM(1+1)", "-2", "3"],  # a negative number stays a number
        ["pos", "0.5", "'-x"],
    ]
