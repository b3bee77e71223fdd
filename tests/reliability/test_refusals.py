"""Bad settings, files and places are refused with one block a person can act on, no traceback.

Each test is one bullet of the trust-boundary issue: a checkpoint of other data, a broken YAML
file, a directory as ``--ckpt_path``, a data error, a full disk, a read-only log folder, and a
resume with nothing left to train.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from lit_seqcls.cli import main
from lit_seqcls.runtime import checkpoint_io, rundir

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--config", str(ROOT / "configs" / "data" / "synthetic.yaml"),
    "--config", str(ROOT / "configs" / "model" / "cnn.yaml"),
    "--data.init_args.train_size=80", "--data.init_args.test_size=16",
    "--data.init_args.median_length=8", "--data.init_args.max_text_length=20",
    "--model.embedding_dim=8", "--model.encoder.init_args.num_filters=4",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    "--trainer.max_epochs=1",
]  # fmt: skip


@pytest.fixture
def trained(tmp_path) -> Path:
    main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "run")])
    return next((tmp_path / "run").rglob("last.ckpt"))


def test_a_checkpoint_of_other_data_is_explained_before_its_weights_are_copied(trained, cli_error):
    other_vocab = ["--data.init_args.num_filler_words=300"]  # another vocabulary size
    message = cli_error(["test", *TINY, *other_vocab, "--ckpt_path", str(trained)])
    assert "trained on other data" in message and "tokens" in message
    assert "size mismatch" not in message


def test_a_checkpoint_with_another_tokenizer_of_the_same_size_is_refused_as_one(
    tmp_path, cli_error
):
    # Other words, the same vocabulary size and classes: caught only by the tokenizer's digest,
    # which raised a ValueError with a traceback instead of this one-line error.
    def files(words: list[str]) -> list[str]:
        rows = [{"text": f"{words[i % 4]} {words[4 + i % 2]}", "label": i % 2} for i in range(40)]
        path = tmp_path / f"{words[0]}.jsonl"
        path.write_text("\n".join(json.dumps(row) for row in rows))
        return ["--data", "datamodules.TextDataModule", "--data.data_files.train", str(path),
                "--data.data_files.test", str(path)]  # fmt: skip

    model = [*TINY[2:4], "--model.embedding_dim=8", "--trainer.max_epochs=1"]
    main(["fit", *files(["a", "b", "c", "d", "e", "f"]), *model])
    trained = next(tmp_path.rglob("last.ckpt"))
    other = files(["g", "h", "i", "j", "k", "l"])
    message = cli_error(["test", *other, *model, "--ckpt_path", str(trained)])
    assert "different vocabulary" in message and "--data.from_checkpoint" in message


def test_resuming_a_finished_run_says_so(trained, tmp_path, capsys):
    capsys.readouterr()
    main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", "auto"])
    out = capsys.readouterr().out
    assert "Nothing left to train" in out and "Best checkpoint ()" not in out


def test_a_directory_as_ckpt_path_is_named_as_one(tmp_path, cli_error):
    message = cli_error(["test", *TINY, "--ckpt_path", str(tmp_path)])
    assert f"--ckpt_path {tmp_path} is a directory" in message


def test_broken_yaml_names_the_file_and_line(tmp_path, cli_error):
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  dropout: 0.1\n  encoder: [gru\n")
    message = cli_error(["fit", *TINY, "--config", str(config)])
    assert f"config {config}, line 4" in message and "not valid YAML" in message


def test_a_data_error_is_one_block_naming_file_and_line(tmp_path, cli_error):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"text": "good", "label": "a"}\n{"text": "good", "label": "b"}\n{"text": ')
    args = ["fit", "--data", "datamodules.TextDataModule", "--data.path", "json"]
    message = cli_error([*args, "--data.data_files.train", str(bad)])
    assert str(bad) in message and "line 3" in message


def test_a_full_disk_while_saving_keeps_the_last_checkpoint_and_says_so(
    tmp_path, monkeypatch, cli_error
):
    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 28 vs 12")

    monkeypatch.setattr(checkpoint_io.torch, "save", full_disk)
    message = cli_error(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "r")])
    assert "Could not write checkpoint" in message and "MiB free there" in message
    assert "checkpoints written before are intact" in message and "--ckpt_path auto" in message
    assert not list((tmp_path / "r").rglob("*.ckpt")), "no half-written checkpoint is left"


def test_a_read_only_log_folder_is_named_before_any_work(tmp_path, monkeypatch, cli_error):
    def read_only(root, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(root))

    monkeypatch.setattr(rundir, "_claim_in_all", read_only)  # its mkdir, as on a ro mount
    message = cli_error(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "ro")])
    assert f"under {tmp_path / 'ro'}: Read-only file system" in message


def test_a_save_that_wrote_a_cut_file_without_an_error_keeps_the_old_checkpoint(
    tmp_path, monkeypatch
):
    import torch

    from lit_seqcls.runtime.checkpoint_io import AtomicCheckpointIO, CheckpointError

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    real_save = torch.save

    def cut_short(obj, f, *args, **kwargs):  # a file system that lost the tail silently
        real_save(obj, f, *args, **kwargs)
        f.flush()
        f.truncate(f.tell() // 2)
        f.seek(0, 2)

    monkeypatch.setattr(checkpoint_io.torch, "save", cut_short)
    with pytest.raises(CheckpointError, match="does not read back"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
