"""Exact resume: 4 epochs equal 2 epochs + resume for 2 more, also when cut mid-epoch.

Dropout is on and the batch order is reshuffled every epoch, so both the RNG states
(``RNGStateCheckpoint``) and the sampler position (``BucketBatchSampler``) must be restored.
"""

from __future__ import annotations

import functools
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from datamodules import SyntheticDataModule
from lit_seqcls import SequenceClassifier
from lit_seqcls.encoders import GRUEncoder
from lit_seqcls.runtime.resume import RNG_KEY, RNGStateCheckpoint
from lit_seqcls.text.bucketing import ResumableDataLoader

EPOCHS = 4
NOT_RESUMABLE = "your dataloader is not resumable"  # Lightning's warning on a mid-epoch resume


class _Killed(Exception):
    pass


class _KillAt(L.Callback):
    """Writes a checkpoint after ``step`` optimizer steps, then dies like a pre-empted job."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise _Killed


class _ValLoss(L.Callback):
    def __init__(self) -> None:
        self.history: list[float] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.history.append(float(trainer.callback_metrics["val/loss"]))


def _fit(dm, root, max_epochs, ckpt_path=None, extra=(), rng=True, init_seed=0):
    # Tiny tensors: one thread is ~20× faster than two on a busy 2-core machine (conftest
    # restores the thread count after each test).
    torch.set_num_threads(1)
    L.seed_everything(init_seed, verbose=False)  # a resumed run starts from other weights
    encoder = functools.partial(GRUEncoder, hidden_size=8)
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder, embedding_dim=8, dropout=0.5)
    val = _ValLoss()
    callbacks = [ModelCheckpoint(dirpath=root, save_last=True), val, *extra]
    trainer = L.Trainer(
        max_epochs=max_epochs, deterministic=True, default_root_dir=root, logger=False,
        callbacks=[*callbacks, *([RNGStateCheckpoint()] if rng else [])],
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, dm, ckpt_path=ckpt_path)
    return model, val.history


class _PlainSynthetic(SyntheticDataModule):
    """The same batches, through a plain ``DataLoader`` (Lightning cannot tell it resumes)."""

    def train_dataloader(self):
        own = super().train_dataloader()
        assert isinstance(own, ResumableDataLoader)  # the DataModules' own training loader
        return DataLoader(own.dataset, batch_sampler=own.batch_sampler, collate_fn=own.collate_fn)


DATA = dict(train_size=90, test_size=10, median_length=6, max_text_length=12, seed=3, batch_size=8)


@pytest.fixture(scope="module")
def data():
    dm = SyntheticDataModule(**DATA)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def plain_data():
    dm = _PlainSynthetic(**DATA)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return _fit(data, tmp_path_factory.mktemp("whole"), EPOCHS)


def _resumed_at_epoch(data, root, rng=True):
    _fit(data, root, EPOCHS // 2, rng=rng)
    return _fit(data, root, EPOCHS, ckpt_path=root / "last.ckpt", rng=rng, init_seed=123)


def _resumed_mid_epoch(data, root):
    """The resumed run, and the messages of the warnings it gave."""
    steps = len(data.train_dataloader())
    cut = root / "cut.ckpt"
    with pytest.raises(_Killed):
        _fit(data, root, EPOCHS, extra=[_KillAt(steps + steps // 2, cut)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = _fit(data, root, EPOCHS, ckpt_path=cut, init_seed=123)
    return run, [str(w.message) for w in caught]


def _assert_same(run, reference):
    (model, history), (ref_model, ref_history) = run, reference
    for (name, got), want in zip(
        model.state_dict().items(), ref_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6, msg=name)
    assert history[-EPOCHS // 2 :] == pytest.approx(ref_history[-EPOCHS // 2 :], abs=1e-6)


def test_two_epochs_plus_two_resumed_equal_four(data, uninterrupted, tmp_path):
    _assert_same(_resumed_at_epoch(data, tmp_path), uninterrupted)


def test_resume_after_a_mid_epoch_kill_equals_an_uninterrupted_run(
    plain_data, uninterrupted, tmp_path
):
    run, messages = _resumed_mid_epoch(plain_data, tmp_path)
    _assert_same(run, uninterrupted)
    # With a plain DataLoader Lightning cannot tell; this guards the test below.
    assert any(NOT_RESUMABLE in m for m in messages), messages


def test_a_resumable_loader_resumes_exactly_without_the_unreliable_warning(
    data, uninterrupted, tmp_path
):
    """Before #14 every mid-epoch resume warned "unreliable results", though it is exact."""
    run, messages = _resumed_mid_epoch(data, tmp_path)
    _assert_same(run, uninterrupted)
    assert not [m for m in messages if NOT_RESUMABLE in m or "planned differently" in m]


def test_without_rng_states_the_resumed_run_drifts(data, uninterrupted, tmp_path):
    # Guards the two tests above: the comparison is sensitive to the RNG states.
    model, _ = _resumed_at_epoch(data, tmp_path, rng=False)
    drift = max(
        (got - want).abs().max().item()
        for got, want in zip(
            model.state_dict().values(), uninterrupted[0].state_dict().values(), strict=True
        )
    )
    assert drift > 1e-4


def test_checkpoint_holds_plain_rng_states_that_load_with_weights_only(data, tmp_path):
    _fit(data, tmp_path, 1)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    (states,) = checkpoint[RNG_KEY]  # one rank
    assert isinstance(states["torch"], torch.Tensor) and isinstance(states["numpy"][1], list)
