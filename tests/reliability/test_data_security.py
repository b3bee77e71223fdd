"""No data source runs code: no `trust_remote_code`, no loading scripts, paths are only paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import pytest

from datamodules import TextDataModule
from datamodules.schema import DataError
from lit_seqcls.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["lit_seqcls", "datamodules", "callbacks", "configs", "scripts", "pyproject.toml"]
ROWS = [{"text": f"text {i}", "label": "ab"[i % 2]} for i in range(8)]


@pytest.fixture
def calls(monkeypatch) -> list[dict]:
    """Every ``datasets.load_dataset`` call's keyword arguments (the call still happens)."""
    seen, real = [], datasets.load_dataset

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return seen


def _code(marker: Path) -> str:
    return f"__import__('os').system('touch {marker}')"


def _script(folder: Path, name: str, marker: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")


def test_no_shipped_file_mentions_trust_remote_code():
    files = [p for top in SHIPPED for p in sorted((ROOT / top).rglob("*")) if p.is_file()]
    files += [ROOT / "pyproject.toml"] if (ROOT / "pyproject.toml").is_file() else []
    found = [str(p) for p in files if b"trust_remote_code" in p.read_bytes()]
    assert len(files) > 20 and found == []


def test_the_loader_never_passes_trust_remote_code(calls, tmp_path):
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    _ = TextDataModule(data_files={"train": str(tmp_path / "train.jsonl")}).splits
    folder = tmp_path / "hub_layout"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    _ = TextDataModule(path=str(folder)).splits
    with pytest.raises(ConnectionError):  # offline (conftest): the hub is asked, and fails
        _ = TextDataModule(path="someone/dataset-with-a-script").splits
    assert len(calls) == 3 and not any("trust_remote_code" in kwargs for kwargs in calls)


@pytest.mark.parametrize("given", ["folder", "script"])
def test_a_loading_script_is_refused_and_never_run(given, calls, tmp_path):
    marker = tmp_path / "script_ran"
    folder = tmp_path / "reviews"
    _script(folder, "reviews", marker)
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    path = folder if given == "folder" else folder / "reviews.py"
    with pytest.raises(DataError, match=r"reviews\.py is a dataset loading script.*never runs"):
        _ = TextDataModule(path=str(path)).splits
    assert calls == [] and not marker.exists()


def test_other_python_files_in_a_data_folder_are_not_run(tmp_path):
    marker = tmp_path / "helper_ran"
    folder = tmp_path / "reviews"
    _script(folder, "helper", marker)
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    assert len(TextDataModule(path=str(folder)).texts("train")) == 7  # 1 held out for validation
    assert not marker.exists()


def test_paths_that_look_like_code_are_only_paths(tmp_path):
    marker = tmp_path / "pwned"
    code = _code(marker)
    with pytest.raises(DataError, match=r"cannot tell the format of __import__"):
        _ = TextDataModule(data_files={"train": code}).splits
    with pytest.raises(FileNotFoundError, match=r"data file __import__\(.*\) does not exist"):
        _ = TextDataModule(path="json", data_files={"train": code}).splits
    with pytest.raises((ConnectionError, DataError)):
        _ = TextDataModule(path=code).splits
    with pytest.raises(FileNotFoundError, match=r"tokenizer file __import__\(.*\) does not"):
        _ = TextDataModule(data_files={"train": code}, tokenizer_file=code).tokenizer
    assert not marker.exists()


def test_a_config_cannot_run_code_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    marker = tmp_path / "pwned"
    cnn = str(ROOT / "configs" / "model" / "cnn.yaml")
    args = ["fit", "--config", cnn, "--trainer.fast_dev_run=1"]
    # A DataError is a UserError: the CLI prints it as one block and exits.
    with pytest.raises(SystemExit, match=r"data file __import__\(.*\) does not exist"):
        main([*args, "--data", "datamodules.TextDataModule", "--data.path", "json",
              "--data.data_files.train", _code(marker)])  # fmt: skip
    # A YAML tag that would call a function is refused by the parser, never constructed.
    config = tmp_path / "data.yaml"
    config.write_text(
        "data:\n  class_path: datamodules.TextDataModule\n  init_args:\n    path: json\n"
        f"    data_files:\n      train: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(SystemExit):
        main([*args, "--config", str(config)])
    assert not marker.exists()
