"""Mid-epoch resume: the interrupted epoch continues with exactly the batches not yet seen."""

from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.checkpoints import load_checkpoint
from lit_seqcls.cli import main as cli_main
from lit_seqcls.runtime.resume import (
    BestCheckpoint,
    clean_run_root,
    resolve_ckpt_path,
    save_last_every_epoch,
)

LR_0 = "--model.optimizer.init_args.lr=0"  # val/acc stays where it started


class _Interrupt(L.Callback):
    """Writes a checkpoint after ``step`` optimizer steps, then dies like a killed job."""

    def __init__(self, step, path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise _Killed


class _Killed(Exception):
    pass


class _Seen(L.Callback):
    def __init__(self):
        self.by_epoch: dict[int, list[int]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.by_epoch.setdefault(trainer.current_epoch, []).extend(batch.index.tolist())


def _fit(dm, seen, ckpt_path=None, extra=(), **trainer_kwargs):
    torch.manual_seed(0)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8)
    trainer = L.Trainer(
        callbacks=[seen, *extra], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, **trainer_kwargs,
    )  # fmt: skip
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("max_tokens", [None, 200])
def test_resume_mid_epoch_sees_each_remaining_sample_once(
    tmp_path, small_synthetic_kwargs, max_tokens
):
    dm = SyntheticDataModule(**small_synthetic_kwargs, max_tokens=max_tokens)
    whole = _Seen()
    _fit(dm, whole, max_epochs=2)

    first = _Seen()
    steps_per_epoch = len(dm.train_dataloader())
    ckpt = tmp_path / "mid.ckpt"
    with pytest.raises(_Killed):
        _fit(
            dm,
            first,
            max_epochs=2,
            extra=[_Interrupt(steps_per_epoch + steps_per_epoch // 2, ckpt)],
        )
    second = _Seen()
    _fit(dm, second, ckpt_path=ckpt, max_epochs=2)

    assert whole.by_epoch[0] != whole.by_epoch[1]  # Lightning reshuffles through set_epoch
    for epoch in (0, 1):
        resumed = first.by_epoch.get(epoch, []) + second.by_epoch.get(epoch, [])
        assert Counter(resumed) == Counter(whole.by_epoch[epoch]), epoch
    assert second.by_epoch.get(1) and first.by_epoch.get(1)  # the cut really was mid-epoch 1


def test_auto_resume_removes_temporaries_left_by_a_killed_save(tmp_path, caplog):
    """A kill during a save leaves ``.last.ckpt.<pid>.tmp``; the resumed run writes elsewhere."""
    checkpoints = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({"global_step": 3}, checkpoints / "epoch0.ckpt")
    stale = checkpoints / ".last.ckpt.4194304.tmp"  # above any real process id: a dead writer
    stale.write_bytes(b"")
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    with caplog.at_level("INFO"):  # what the CLI does before `fit --ckpt_path auto`
        assert resolve_ckpt_path("auto", trainer.default_root_dir) == str(
            checkpoints / "epoch0.ckpt"
        )
        clean_run_root(trainer)
    assert not stale.exists()
    assert "Removed 1 temporary file(s) left by killed writers" in caplog.text
    assert str(stale) in caplog.text


def test_last_ckpt_is_the_newest_epoch_also_when_val_acc_did_not_improve(
    tmp_path, monkeypatch, tiny_fit_args
):
    # At lr 0 val/acc never improves after epoch 0, so the best checkpoint stays epoch 0's. Before
    # LastCheckpoint, last.ckpt was saved beside it only: a run killed in epoch 3 resumed from
    # epoch 0 and trained epochs 1 and 2 again.
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", *tiny_fit_args, LR_0, "--trainer.max_epochs=3"])
    checkpoints = next(tmp_path.glob("logs/lightning_logs/version_0/checkpoints"))
    best, last = sorted(p.name for p in checkpoints.iterdir())
    assert best.startswith("epoch00") and last == "last.ckpt"
    assert load_checkpoint(checkpoints / last)["epoch"] == 2  # the third epoch's end
    assert resolve_ckpt_path("auto", tmp_path / "logs") == str(checkpoints / last)


def test_ckpt_path_last_continues_the_previous_run(tmp_path, monkeypatch, tiny_fit_args, cli_runs):
    # Lightning looks for `last` in the new run's own version_N folder, finds none, warns and
    # trains from scratch (fit), or tests the untrained model (test).
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", *tiny_fit_args, "--trainer.max_epochs=1"])
    cli_main(["fit", *tiny_fit_args, "--trainer.max_epochs=2", "--ckpt_path=last"])
    first, second = cli_runs
    assert second.trainer.global_step == 2 * first.trainer.global_step  # one more epoch, resumed
    cli_main(["test", *tiny_fit_args, "--ckpt_path=last"])
    weights = load_checkpoint(tmp_path / "logs/lightning_logs/version_1/checkpoints/last.ckpt")
    tested = cli_runs[-1].model.state_dict()
    assert all(torch.equal(tested[k], v) for k, v in weights["state_dict"].items())


def test_ckpt_path_last_with_no_run_to_continue_is_an_error(
    tmp_path, monkeypatch, cli_error, tiny_fit_args
):
    monkeypatch.chdir(tmp_path)
    message = cli_error(["fit", *tiny_fit_args, "--ckpt_path=last"])
    assert "--ckpt_path last: no last.ckpt under" in message and "--ckpt_path auto" in message
    assert not list(tmp_path.rglob("*.ckpt"))


def test_no_last_ckpt_with_save_last_false(tmp_path, monkeypatch, tiny_fit_args):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", *tiny_fit_args, "--checkpoint.save_last=false", "--trainer.max_epochs=2"])
    names = [p.name for p in tmp_path.rglob("*.ckpt")]
    assert len(names) == 1 and names[0].startswith("epoch"), names


def test_a_users_step_checkpoint_is_not_taken_for_the_best_one(
    tmp_path, monkeypatch, capsys, tiny_fit_args
):
    # Lightning's `checkpoint_callback` is the first checkpoint callback, and the ones a user adds
    # came before the CLI's: fit reported (and compare tested) the newest step file as the best.
    monkeypatch.chdir(tmp_path)
    steps = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.every_n_train_steps=1"]
    cli_main(["fit", *tiny_fit_args, *steps, LR_0, "--trainer.max_epochs=2"])
    best = capsys.readouterr().out.split("Best checkpoint (val/acc=")[1].split()[1]
    assert Path(best).name.startswith("epoch00-val_acc")
    names = {p.name for p in tmp_path.rglob("*.ckpt")}
    assert "epoch=1-step=4.ckpt" in names and "last.ckpt" in names, names


def test_a_fast_dev_run_leaves_no_checkpoint_for_auto_to_resume(
    tmp_path, monkeypatch, tiny_fit_args
):
    # Lightning's save_last wrote last.ckpt when even a fast_dev_run ended, and a real run with
    # --ckpt_path auto then "resumed" from that one step, found max_epochs reached, and stopped.
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", *tiny_fit_args, "--trainer.fast_dev_run=true"])
    assert not list(tmp_path.rglob("*.ckpt"))


class _Scripted(BoringModel):
    """Logs ``val/acc`` = ``scores[epoch]``."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", self.scores[self.current_epoch])
        return super().validation_step(batch, batch_idx)


def _scripted_fit(scores, folder, epochs, ckpt_path=None, **trainer_kwargs):
    best = BestCheckpoint(dirpath=folder, monitor="val/acc", mode="max", save_last=True)
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=[best], logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_train_batches=2, limit_val_batches=1, **trainer_kwargs,
    )  # fmt: skip
    save_last_every_epoch(trainer, best)
    trainer.fit(_Scripted(scores), ckpt_path=ckpt_path)
    return best


def test_the_best_checkpoint_keeps_its_ranking_when_a_run_resumes_into_a_new_folder(tmp_path):
    # Lightning forgets the kept checkpoints' scores when the folder changes (every CLI resume
    # writes a new version_N): epoch 2 (0.6) became the best, then epoch 3 (0.7), not epoch 0.
    scores = [0.9, 0.5, 0.6, 0.7]
    _scripted_fit(scores, tmp_path / "v0", epochs=2)
    best = _scripted_fit(scores, tmp_path / "v1", 4, ckpt_path=tmp_path / "v0" / "last.ckpt")
    assert Path(best.best_model_path).parent.name == "v0"
    assert best.best_model_score.item() == pytest.approx(0.9)
    assert load_checkpoint(tmp_path / "v1" / "last.ckpt")["epoch"] == 3


def test_a_checkpoint_from_a_plain_model_checkpoint_resumes_with_its_ranking(tmp_path):
    # Checkpoints written before BestCheckpoint (a plain ModelCheckpoint) hold the state under
    # ModelCheckpoint's key; under another key Lightning skipped it, and the ranking was lost.
    plain = ModelCheckpoint(dirpath=tmp_path / "v0", monitor="val/acc", mode="max", save_last=True)
    trainer = L.Trainer(
        max_epochs=2, callbacks=[plain], logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_train_batches=2, limit_val_batches=1,
    )  # fmt: skip
    trainer.fit(_Scripted([0.9, 0.5, 0.6]))
    best = _scripted_fit(
        [0.9, 0.5, 0.6], tmp_path / "v1", 3, ckpt_path=tmp_path / "v0" / "last.ckpt"
    )
    assert best.best_model_score.item() == pytest.approx(0.9)
    assert Path(best.best_model_path).parent.name == "v0"


def test_last_ckpt_is_written_every_epoch_also_when_validation_runs_every_second(tmp_path):
    _scripted_fit([0.5] * 3, tmp_path, epochs=3, check_val_every_n_epoch=2)
    assert load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 2  # after epoch 2, no validation
