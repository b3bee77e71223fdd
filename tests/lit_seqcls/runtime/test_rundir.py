"""Runs started at once in one log dir each get their own ``version_N`` (issue #14)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from lit_seqcls.runtime.rundir import _BroadcastVersion, claim_version, pin_logger_versions

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def test_lightning_alone_gives_two_runs_the_same_version(tmp_path):
    """The bug: versions are chosen from what is on disk, so runs starting together collide."""
    assert [CSVLogger(tmp_path).version for _ in range(2)] == [0, 0]


def test_claim_version_numbers_after_the_largest_existing_version(tmp_path):
    logs = tmp_path / "lightning_logs"
    for name in ("version_0", "version_3", "version_x", "other"):
        (logs / name).mkdir(parents=True)
    (logs / "version_9").write_text("a file, not a run")
    assert claim_version(tmp_path) == 4
    assert (logs / "version_4").is_dir()
    assert claim_version(tmp_path, name="") == 0  # name "" means no subdirectory, as in Lightning
    assert (tmp_path / "version_0").is_dir()


def test_claim_version_from_racing_threads_gives_distinct_numbers(tmp_path):
    start, claimed = threading.Barrier(12), []

    def claim():
        start.wait()
        claimed.append(claim_version(tmp_path))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(12))


def _claim_in_process(root, start, out):
    start.wait()
    out.put(claim_version(root))


def test_claim_version_from_racing_processes_gives_distinct_numbers(tmp_path):
    context = multiprocessing.get_context("fork")  # the test module need not be importable
    start, out = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(tmp_path, start, out)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(out.get(timeout=5) for _ in processes) == [0, 1, 2, 3]


@pytest.mark.parametrize("logger", [True, "csv"], ids=["default-logger", "csv-logger"])
def test_two_trainers_in_one_root_log_to_different_directories(tmp_path, logger):
    def trainer():
        chosen = CSVLogger(tmp_path) if logger == "csv" else True
        return L.Trainer(default_root_dir=tmp_path, logger=chosen, **QUIET)

    first, second = trainer(), trainer()  # both built before either writes, as in a race
    assert [pin_logger_versions(first), pin_logger_versions(second)] == [0, 1]
    assert Path(first.log_dir) != Path(second.log_dir)
    assert Path(second.log_dir) == tmp_path / "lightning_logs" / "version_1"
    assert Path(second.log_dir).is_dir()  # claimed on disk, so a third run skips it


def test_a_version_the_user_chose_is_left_alone(tmp_path):
    trainer = L.Trainer(logger=CSVLogger(tmp_path, version=7), **QUIET)
    assert pin_logger_versions(trainer) is None
    assert trainer.logger.version == 7
    assert not (tmp_path / "lightning_logs").exists()


def test_no_logger_no_claim(tmp_path):
    assert pin_logger_versions(L.Trainer(default_root_dir=tmp_path, logger=False, **QUIET)) is None
    assert list(tmp_path.iterdir()) == []


def test_loggers_under_different_roots_get_one_number_free_in_all(tmp_path):
    (tmp_path / "a" / "lightning_logs" / "version_2").mkdir(parents=True)
    loggers = [CSVLogger(tmp_path / "a"), CSVLogger(tmp_path / "b", name="csv")]
    trainer = L.Trainer(logger=loggers, **QUIET)
    assert pin_logger_versions(trainer) == 3
    assert [logger.version for logger in loggers] == [3, 3]
    assert (tmp_path / "b" / "csv" / "version_3").is_dir()


def test_under_ddp_rank_zero_claims_and_adds_the_broadcast_first(tmp_path):
    trainer = L.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", devices=2, strategy="ddp", **QUIET
    )  # built, not launched: this process is rank zero
    assert pin_logger_versions(trainer) == 0
    assert isinstance(trainer.callbacks[0], _BroadcastVersion)


def test_other_ranks_do_not_claim_and_learn_the_number_by_broadcast(tmp_path):
    logger = CSVLogger(tmp_path)
    sent = []
    strategy = SimpleNamespace(broadcast=lambda obj, src: sent.append(obj) or 5)  # rank 0 had 5
    rank_one = SimpleNamespace(
        loggers=[logger], global_rank=1, world_size=2, callbacks=[], strategy=strategy
    )
    assert pin_logger_versions(rank_one) is None
    assert not (tmp_path / "lightning_logs").exists()  # only rank zero creates directories
    rank_one.callbacks[0].setup(rank_one, None, "fit")
    assert sent == [None]
    assert logger.version == 5
    assert Path(logger.log_dir).name == "version_5"
