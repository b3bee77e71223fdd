"""A NaN/inf loss or gradient stops training (or skips the step) before the update is applied.

The model below poisons chosen steps: ``loss`` multiplies the loss by NaN (loss and gradients
non-finite), ``grad`` keeps the loss finite but makes its gradient NaN, ``value`` adds a NaN
constant (loss NaN, gradients finite: what one DDP rank alone can see).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.checkpoints import CheckpointError, load_checkpoint
from lit_seqcls.cli import main
from lit_seqcls.runtime import AtomicCheckpointIO
from lit_seqcls.runtime.guards import NonFiniteGuard, NonFiniteLossError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class _NanGrad(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradients are not."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def _poison(loss: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "loss":
        return loss * float("nan")
    if kind == "grad":
        return _NanGrad.apply(loss)
    return loss + float("nan")  # "value": a NaN constant has no gradient


class _Poisoned(SequenceClassifier):
    def __init__(self, *args, bad_steps=(), kind="loss", rank=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad_steps, self.kind, self.rank = list(bad_steps), kind, rank

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        bad_rank = self.rank is None or self.trainer.global_rank == self.rank
        if self.trainer.global_step in self.bad_steps and bad_rank:
            out["loss"] = _poison(out["loss"], self.kind)
        return out


class _Weights(L.Callback):
    """The float weights at the start and at the end of every training batch."""

    def __init__(self):
        self.before: dict[tuple[int, int], dict] = {}
        self.after: dict[tuple[int, int], dict] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[trainer.current_epoch, batch_idx] = _weights(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after[trainer.current_epoch, batch_idx] = _weights(pl_module)


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _finite(weights: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in weights.values())


@pytest.fixture
def data(small_synthetic_kwargs):
    dm = SyntheticDataModule(**small_synthetic_kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _fit(dm, root, guard=None, bad_steps=(), kind="loss", io=True, max_epochs=2):
    torch.set_num_threads(1)  # conftest restores the thread count
    torch.manual_seed(0)
    model = _Poisoned(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8,
                      bad_steps=bad_steps, kind=kind)  # fmt: skip
    weights = _Weights()
    ckpt = ModelCheckpoint(dirpath=root, save_last=True)  # after every epoch
    trainer = L.Trainer(
        max_epochs=max_epochs, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=2,
        gradient_clip_val=1.0, default_root_dir=root,
        callbacks=[ckpt, weights, *([guard] if guard else [])],
        plugins=[AtomicCheckpointIO()] if io else None,
    )  # fmt: skip
    return trainer, model, weights


def test_without_a_guard_a_nan_loss_ends_in_a_nan_checkpoint(data, tmp_path):
    # The fault the guard fixes (Lightning's defaults: no guard, TorchCheckpointIO).
    trainer, model, _ = _fit(data, tmp_path, bad_steps=[len(data.train_dataloader()) + 2], io=False)
    trainer.fit(model, data)
    last = load_checkpoint(tmp_path / "last.ckpt")["state_dict"]
    assert not _finite(last)


def test_stop_names_step_batch_rows_and_keeps_weights_and_checkpoint_finite(data, tmp_path):
    per_epoch = len(data.train_dataloader())
    trainer, model, weights = _fit(data, tmp_path, NonFiniteGuard(), bad_steps=[per_epoch + 2])
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit(model, data)
    message = str(err.value)
    assert f"step {per_epoch + 2} (epoch 1, batch 2, dataset rows " in message
    assert "the loss is nan" in message and "--ckpt_path auto" in message
    assert str(tmp_path / "last.ckpt") in message  # the last good checkpoint, named
    # The bad update was never applied: the weights are those from before the bad batch.
    assert _same(_weights(model), weights.before[1, 2]) and _finite(_weights(model))
    last = load_checkpoint(tmp_path / "last.ckpt")
    assert last["global_step"] == per_epoch and _finite(last["state_dict"])


def test_finite_loss_with_nan_gradients_is_caught(data, tmp_path):
    trainer, model, weights = _fit(data, tmp_path, NonFiniteGuard(), bad_steps=[3], kind="grad")
    with pytest.raises(NonFiniteLossError, match="loss is finite but a gradient holds NaN/inf"):
        trainer.fit(model, data)
    assert _same(_weights(model), weights.before[0, 3])


def test_skip_drops_only_the_bad_update_and_training_goes_on(data, tmp_path):
    trainer, model, weights = _fit(
        data, tmp_path, NonFiniteGuard(action="skip"), bad_steps=[3], max_epochs=1
    )
    with pytest.warns(UserWarning, match=r"step 3 \(epoch 0, batch 3.*Skipped this update"):
        trainer.fit(model, data)
    assert _same(weights.after[0, 3], weights.before[0, 3])  # the optimizer changed nothing
    assert not _same(weights.after[0, 4], weights.before[0, 4])  # the next step trains again
    assert _finite(_weights(model)) and trainer.global_step == len(data.train_dataloader())


def test_skip_gives_up_after_max_skips_bad_steps_in_a_row(data, tmp_path):
    guard = NonFiniteGuard(action="skip", max_skips=3)
    trainer, model, _ = _fit(data, tmp_path, guard, bad_steps=range(2, 1000), max_epochs=1)
    with (
        pytest.warns(UserWarning, match="Skipped this update"),
        pytest.raises(NonFiniteLossError, match=r"step 5 .*after skipping 3 bad steps in a row"),
    ):
        trainer.fit(model, data)


def test_a_nan_checkpoint_never_replaces_a_good_one(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, tmp_path / "last.ckpt")
    with pytest.raises(CheckpointError, match=r"weights hold NaN or inf \(w\)"):
        io.save_checkpoint({"state_dict": {"w": torch.tensor([1.0, float("inf"), 0])}},
                           tmp_path / "last.ckpt")  # fmt: skip
    assert torch.equal(load_checkpoint(tmp_path / "last.ckpt")["state_dict"]["w"], torch.ones(3))


def test_the_cli_stops_a_diverging_run_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    args = [
        "fit", "--config", str(CONFIGS / "data" / "synthetic.yaml"),
        "--config", str(CONFIGS / "model" / "cnn.yaml"),
        "--data.init_args.train_size=120", "--data.init_args.test_size=20",
        "--data.init_args.median_length=8", "--data.init_args.max_text_length=20",
        "--model.embedding_dim=8", "--model.encoder.init_args.num_filters=4",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.max_epochs=2", "--model.optimizer.init_args.lr=1e30",  # diverges at once
    ]  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"at step 1 \(epoch 0, batch 1"):
        main(args)
    for ckpt in tmp_path.rglob("*.ckpt"):  # whatever was written is finite
        assert _finite(load_checkpoint(ckpt)["state_dict"]), ckpt


# Two CPU ranks; only rank 1 sees a NaN loss (its gradients stay finite, so DDP's gradient
# all-reduce alone would not tell rank 0). Each rank writes a hash of its final weights.
ONE_RANK_NAN = """
import hashlib, sys
import lightning as L, torch
sys.path.insert(0, {tests!r})
from test_nonfinite import _Poisoned
from datamodules import SyntheticDataModule
from lit_seqcls.runtime.guards import NonFiniteGuard

action, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
dm = SyntheticDataModule(**{data!r})
model = _Poisoned(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8,
                  bad_steps=[3], kind="value", rank=1)
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                    callbacks=[NonFiniteGuard(action=action)])
trainer.fit(model, dm)
digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values()))
with open(f"{{out}}.rank{{trainer.global_rank}}", "w") as f:
    f.write(digest.hexdigest())
"""


def _one_rank_nan(tmp_path, small_synthetic_kwargs, action):
    script = tmp_path / "one_rank_nan.py"
    tests = str(Path(__file__).parent)
    script.write_text(ONE_RANK_NAN.format(tests=tests, data=small_synthetic_kwargs))
    out = tmp_path / "weights"
    result = subprocess.run(
        [sys.executable, str(script), action, str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result, [out.with_name(f"weights.rank{r}") for r in (0, 1)]


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_ranks_stop_together_when_only_one_sees_a_nan(tmp_path, small_synthetic_kwargs):
    result, _ = _one_rank_nan(tmp_path, small_synthetic_kwargs, "stop")
    assert result.returncode != 0
    # Rank 0 stops with the same verdict (naming rank 1), not with a lost-connection error.
    assert "NonFiniteLossError: Non-finite training step at step 3" in result.stderr
    assert "on rank 1 of 2: a NaN/inf loss or gradient" in result.stderr
    assert "on rank 1 of 2: the loss is nan" in result.stderr
    assert "Connection reset by peer" not in result.stderr, result.stderr[-3000:]


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_ranks_skip_the_same_step_and_keep_identical_weights(tmp_path, small_synthetic_kwargs):
    result, digests = _one_rank_nan(tmp_path, small_synthetic_kwargs, "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped this update" in result.stderr
    assert digests[0].read_text() == digests[1].read_text()
