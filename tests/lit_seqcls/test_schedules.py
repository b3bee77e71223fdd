"""``lr_schedule: warmup_cosine``: per-step warm-up then cosine, from YAML, exact on resume."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lit_seqcls import Batch, SequenceClassifier
from lit_seqcls.cli import main
from lit_seqcls.schedules import WarmupCosine, build_schedule
from lit_seqcls.validation import ConfigValueError

LR, WARMUP, BATCHES, EPOCHS = 0.01, 7, 5, 3  # the warm-up runs past the first epoch


def _batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (4,), generator=g)
    ids = torch.randint(2, 30, (4, 7), generator=g)
    ids[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    return Batch(ids, lengths, torch.randint(0, 3, (4,), generator=g))


def _loader() -> DataLoader:
    return DataLoader([_batch(i) for i in range(BATCHES)], batch_size=None)  # fixed order


def _model() -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(
        30, 3, encoder="swem", embedding_dim=8, dropout=0.0,
        optimizer=lambda p: torch.optim.AdamW(p, lr=LR),
        lr_schedule="warmup_cosine", warmup_steps=WARMUP,
    )  # fmt: skip


class _LearningRates(L.Callback):
    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.lrs: list[float] = []
        self.stop_after_epoch = stop_after_epoch

    def on_train_batch_start(self, trainer, *args) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer, *args) -> None:
        if trainer.current_epoch + 1 == self.stop_after_epoch:
            trainer.should_stop = True  # an interruption: the run was configured for EPOCHS


def _fit(model, callback, ckpt_path=None) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=EPOCHS, callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=_loader(), ckpt_path=ckpt_path)
    return trainer


def test_factor_warms_up_linearly_then_decays_by_a_cosine_to_zero():
    f = WarmupCosine(warmup_steps=4, total_steps=14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0 and f(9) == pytest.approx(0.5) and f(14) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(4, 20))
    assert WarmupCosine(0, 10)(0) == 1.0  # no warm-up: starts at the full rate


def test_steps_follow_the_schedule_over_the_runs_steps():
    callback = _LearningRates()
    trainer = _fit(_model(), callback)
    total = BATCHES * EPOCHS
    assert trainer.estimated_stepping_batches == total
    expected = [LR * WarmupCosine(WARMUP, total)(s) for s in range(total)]
    assert callback.lrs == pytest.approx(expected)
    assert callback.lrs[0] == pytest.approx(LR / WARMUP) and max(callback.lrs) == pytest.approx(LR)


def test_resume_continues_the_same_curve_exactly(tmp_path):
    whole = _LearningRates()
    uninterrupted = _model()
    _fit(uninterrupted, whole)

    first, second = _LearningRates(stop_after_epoch=1), _LearningRates()
    interrupted = _model()
    trainer = _fit(interrupted, first)
    path = tmp_path / "stopped.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)  # plain data: the scheduler state included
    state = saved["lr_schedulers"][0]
    assert state["last_epoch"] == BATCHES
    assert state["lr_lambdas"] == [{"warmup_steps": WARMUP, "total_steps": BATCHES * EPOCHS}]
    resumed = _model()
    _fit(resumed, second, ckpt_path=path)

    assert len(first.lrs) == BATCHES
    assert first.lrs + second.lrs == whole.lrs  # bitwise: the same steps, the same rates
    for a, b in zip(resumed.parameters(), uninterrupted.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_schedule": "linear"}, "lr_schedule must be one of warmup_cosine (or unset)"),
        ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
        (
            {"lr_schedule": "warmup_cosine",
             "lr_scheduler": lambda o: torch.optim.lr_scheduler.StepLR(o, 1)},
            "both lr_schedule (warmup_cosine) and lr_scheduler are set: choose one",
        ),
    ],
    ids=["unknown", "negative-warmup", "both"],
)  # fmt: skip
def test_bad_settings_are_refused_when_the_model_is_built(kwargs, message):
    with pytest.raises(ConfigValueError, match=re.escape(message)):
        SequenceClassifier(30, 3, **kwargs)


def test_an_endless_run_has_no_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigValueError, match="needs a finite number of steps"):
        build_schedule("warmup_cosine", optimizer, 10, math.inf)


def test_picked_from_the_command_line_without_code(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    data = Path(__file__).resolve().parents[2] / "configs" / "data" / "synthetic.yaml"
    main([
        "fit", "--config", str(data), "--data.init_args.train_size=64",
        "--data.init_args.batch_size=8", "--data.init_args.test_size=16",
        "--data.init_args.median_length=6", "--data.init_args.max_text_length=12",
        "--model.embedding_dim=8", "--model.encoder=swem",
        "--model.lr_schedule=warmup_cosine", "--model.warmup_steps=2",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    ])  # fmt: skip
    last = next(tmp_path.glob("logs/**/last.ckpt"))
    scheduler = torch.load(last, weights_only=True)["lr_schedulers"][0]
    assert scheduler["last_epoch"] == 3  # stepped per optimizer step, not per epoch
    assert scheduler["lr_lambdas"] == [{"warmup_steps": 2, "total_steps": 3}]
