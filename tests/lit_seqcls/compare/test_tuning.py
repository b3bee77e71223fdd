"""``compare --tune``: a real tiny study, and the study's rules with a stand-in ``fit`` process.

The stand-in prints the reporter's epoch events with the ``val/acc`` a test asks for, so pruning,
failures, the budget and resuming are checked in a second instead of a minute per trial.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from lit_seqcls.cli import main as cli_main  # noqa: E402
from lit_seqcls.compare import execution, runner  # noqa: E402
from lit_seqcls.compare.launchers import stop_on_signals  # noqa: E402
from lit_seqcls.compare.runs import RunControl, RunSpec  # noqa: E402
from lit_seqcls.compare.search_space import SearchSpaceError, load_space, space_file  # noqa: E402
from lit_seqcls.compare.tuning import (  # noqa: E402
    TRIAL_ARGS,
    TUNING_DIR,
    TuningError,
    tune,
    tune_all,
)
from lit_seqcls.trust import check_untrusted  # noqa: E402

ONE_EPOCH = "--trainer.max_epochs=1"
# The stand-in `fit`: records its arguments, W&B group and threads, then reports
# FAKE_PLAN[trial] (a list of val/acc, one per epoch, or an exit code) as the reporter would,
# writing the epoch reached to `stand-in.ckpt` in its folder; with --ckpt_path=auto it goes on
# after that epoch.
# With FAKE_PAIRS (a folder), trials meet in pairs first: the k-th trial started waits until
# 2 * ceil(k / 2) have started, and records the encoders of its pair (None: alone).
FAKE_FIT = textwrap.dedent(
    """
    import json, os, sys, time
    args = sys.argv[1:]
    root = [a.split("=", 1)[1] for a in args if a.startswith("--trainer.default_root_dir=")][0]
    trial = int(root.rsplit("-", 1)[1])
    encoder = [a for a in args if a.startswith("--model.encoder.class_path=")][0]
    encoder = encoder.rsplit(".", 1)[1].removesuffix("Encoder").lower()
    pair = None
    if os.environ.get("FAKE_PAIRS"):
        folder, k = os.environ["FAKE_PAIRS"], 1
        while True:  # the k-th to start: create file k, atomically
            try:
                os.close(os.open(os.path.join(folder, str(k)), os.O_CREAT | os.O_EXCL))
                break
            except FileExistsError:
                k += 1
        with open(os.path.join(folder, f"{k}.tmp"), "w") as f:
            f.write(encoder)
        os.replace(os.path.join(folder, f"{k}.tmp"), os.path.join(folder, f"{k}.encoder"))
        mate = k + 1 if k % 2 else k - 1
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(folder, f"{mate}.encoder")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            with open(os.path.join(folder, f"{mate}.encoder")) as f:
                pair = sorted([encoder, f.read()])
    with open(os.environ["FAKE_CALLS"], "a") as calls:
        record = {"args": args, "group": os.environ.get("WANDB_RUN_GROUP"), "pair": pair,
                  "threads": os.environ.get("OMP_NUM_THREADS")}
        calls.write(json.dumps(record) + "\\n")
    plan = json.loads(os.environ["FAKE_PLAN"])[trial]
    if isinstance(plan, int):
        sys.exit(plan)
    ckpt = os.path.join(root, "stand-in.ckpt")
    done = 0
    if "--ckpt_path=auto" in args and os.path.exists(ckpt):
        with open(ckpt) as f:
            done = int(f.read())
    for epoch, acc in enumerate(plan, start=1):
        if epoch <= done:
            continue
        event = {"event": "epoch", "epoch": epoch, "max_epochs": len(plan), "val/acc": acc}
        if os.environ.get("FAKE_VAL_TEXTS"):
            event["val_texts"] = int(os.environ["FAKE_VAL_TEXTS"])
        print("@@compare " + json.dumps(event), flush=True)
        with open(ckpt + ".tmp", "w") as f:
            f.write(str(epoch))
        os.replace(ckpt + ".tmp", ckpt)
        time.sleep(0.05)
    print("fake fit finished", flush=True)
    """
)


@pytest.fixture
def fake_fit(tmp_path, monkeypatch):
    """Route trials to the stand-in; ``set(plan)`` chooses what each trial reports; returns the
    calls so far (each trial's arguments and W&B group)."""
    script = tmp_path / "fake_fit.py"
    script.write_text(FAKE_FIT)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setattr(execution, "PROGRAM", (sys.executable, str(script)))
    monkeypatch.setenv("FAKE_CALLS", str(calls))

    class Fake:
        def set(self, plan: list) -> None:
            monkeypatch.setenv("FAKE_PLAN", json.dumps(plan))

        @property
        def calls(self) -> list[dict]:
            return (
                [json.loads(line) for line in calls.read_text().splitlines()]
                if calls.exists()
                else []
            )

    return Fake()


def _study(out: Path, encoder: str = "cnn") -> optuna.Study:
    storage = f"sqlite:///{out / TUNING_DIR / f'{encoder}.db'}"
    return optuna.load_study(study_name=encoder, storage=storage)


def _states(out: Path, encoder: str = "cnn") -> list[str]:
    return [t.state.name for t in _study(out, encoder).trials]


def test_a_tiny_study_writes_the_db_and_a_reusable_config_and_never_tests(
    synthetic_config, tiny_synthetic, tmp_path, capsys
):
    out = tmp_path / "cmp"
    tuned = tune("cnn", 2, [synthetic_config], [*tiny_synthetic, ONE_EPOCH], out, group="g")
    assert tuned.config == out / "tuning" / "cnn.yaml" and "of 2 trials" in tuned.status
    assert "embedding_dim: --model.embedding_dim is given, not searched" in capsys.readouterr().out

    with sqlite3.connect(out / "tuning" / "cnn.db") as db:  # a plain SQLite file: resumable
        assert db.execute("select count(*) from trials").fetchone() == (2,)
    study = _study(out)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    searched = {"lr", "weight_decay", "dropout", "num_filters", "word_dropout"}
    assert set(study.best_params) == searched  # the shipped space less embedding_dim (given)
    assert all(t.intermediate_values.keys() == {1} for t in study.trials)  # val/acc per epoch

    config = yaml.safe_load(tuned.config.read_text())
    check_untrusted(config, "tuned config")  # usable with --config
    model = config["model"]
    assert model["encoder"]["class_path"].endswith("CNNEncoder")
    assert model["encoder"]["init_args"]["num_filters"] == study.best_params["num_filters"]
    assert model["optimizer"]["init_args"]["lr"] == study.best_params["lr"]
    assert model["dropout"] == study.best_params["dropout"]
    assert model["word_dropout"] == study.best_params["word_dropout"]
    assert "the test set played no part" in tuned.config.read_text()

    for trial in (0, 1):  # every trial is a `fit` process, never `test`
        log = (out / "tuning" / "cnn" / f"trial-{trial:03d}" / "fit.log").read_text()
        command = log.splitlines()[0].split()
        assert command[command.index("lit_seqcls") + 1] == "fit"
        assert "test" not in command and "--ckpt_path=auto" in command  # resumable
        assert f"--model.dropout={study.trials[trial].params['dropout']}" in command
        assert "--seed_everything=0" in command
    assert not list((out / "tuning").rglob("*.ckpt"))  # an ended trial keeps no weights


def test_a_trial_reporting_a_bad_val_acc_is_pruned_and_its_process_stopped(
    synthetic_config, tmp_path, fake_fit
):
    fake_fit.set([[0.9] * 3, [0.1] * 40, [0.95] * 3])
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=2)
    tuned = tune("cnn", 3, [synthetic_config], [], tmp_path, group="cmp-group", pruner=pruner)
    assert _states(tmp_path) == ["COMPLETE", "PRUNED", "COMPLETE"]
    log = (tmp_path / "tuning" / "cnn" / "trial-001" / "fit.log").read_text()
    pruned = _study(tmp_path).trials[1]
    assert pruned.intermediate_values.keys() == {1, 2}  # not before epoch 2, then at once
    assert "fake fit finished" not in log and "[pruned by compare --tune after epoch 2]" in log
    assert _study(tmp_path).best_value == 0.95 and "1 pruned" in tuned.status
    calls = fake_fit.calls
    assert [c["args"][0] for c in calls] == ["fit"] * 3  # `fit` only, in the trials' group
    assert {c["group"] for c in calls} == {"cmp-group"}


@pytest.mark.parametrize(("texts", "noted"), [(300, True), (100_000, False)])
def test_the_tuned_config_says_when_other_trials_are_inside_the_best_ones_noise(
    synthetic_config, tmp_path, fake_fit, monkeypatch, capsys, texts, noted
):
    monkeypatch.setenv("FAKE_VAL_TEXTS", str(texts))
    fake_fit.set([[0.74], [0.753], [0.60]])  # 0.74 is inside 0.753 ± 4.9 points on 300 texts
    tuned = tune("cnn", 3, [synthetic_config], [], tmp_path)
    text = tuned.config.read_text()
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert _study(tmp_path).best_trial.user_attrs["val_texts"] == texts
    note = "On 300 validation texts the best score has a 95% interval of ±4.9 points"
    assert (note in header) == noted and ("1 other trial scores inside it" in header) == noted
    assert ("mostly noise" in capsys.readouterr().out) == noted
    assert yaml.safe_load(text)["model"]["encoder"]["class_path"].endswith("CNNEncoder")


def test_failed_trials_count_and_no_finished_trial_gives_no_config(
    synthetic_config, tmp_path, fake_fit
):
    fake_fit.set([3, []])  # a crash, and a fit that reports no val/acc
    tuned = tune("gru", 2, [synthetic_config], [], tmp_path)
    assert tuned.config is None and tuned.status.startswith("tuning failed: none of 2 trials")
    assert not (tmp_path / "tuning" / "gru.yaml").exists()
    errors = [t.user_attrs["error"] for t in _study(tmp_path, "gru").trials]
    assert errors[0].startswith("exit 3") and errors[1].startswith("no val/acc")


def test_a_rerun_continues_the_study_and_keeps_the_budget_equal(
    synthetic_config, tmp_path, fake_fit
):
    fake_fit.set([[0.5], [0.6], [0.7], [0.8]])
    tune("cnn", 2, [synthetic_config], [], tmp_path)
    study = _study(tmp_path)
    study.ask()  # a trial cut short by an interrupted comparison: left RUNNING in the db
    tune("cnn", 3, [synthetic_config], [], tmp_path)  # the budget grows by one: one more trial
    assert _states(tmp_path) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert len(fake_fit.calls) == 3  # the interrupted one does not count, the others stay
    assert "of 3 trials" in (tmp_path / "tuning" / "cnn.yaml").read_text()
    tune(
        "cnn", 3, [synthetic_config], [], tmp_path
    )  # done: nothing runs, the config is written again
    assert len(fake_fit.calls) == 3
    with pytest.raises(TuningError, match=r"holds 3 trials, more than --tune 2"):
        tune("cnn", 2, [synthetic_config], [], tmp_path)
    with pytest.raises(TuningError, match=r"made with other settings \(overrides differ\)"):
        tune("cnn", 3, [synthetic_config], ["--trainer.max_epochs=5"], tmp_path)
    tune(
        "cnn", 1, [synthetic_config], ["--trainer.max_epochs=5"], tmp_path, fresh=True
    )  # starts over
    assert _states(tmp_path) == ["COMPLETE"] and len(fake_fit.calls) == 4


@pytest.mark.parametrize("encoders", [["cnn", "gru"], ["cnn"]])
def test_jobs_run_trials_side_by_side_and_a_rerun_continues_each_study(
    synthetic_config, tmp_path, fake_fit, monkeypatch, encoders
):
    # --jobs 2: the trials meet in pairs (the stand-in waits for its mate), counted, not timed.
    # Two encoders: one trial of each study at a time; one encoder: two of its study at once.
    monkeypatch.setenv("FAKE_PAIRS", str(tmp_path / "started"))
    (tmp_path / "started").mkdir()
    fake_fit.set([[0.5], [0.6], [0.7], [0.8], [0.9], [0.95]])
    specs = [
        RunSpec(e, 0, (synthetic_config,), (), run_dir="", group="g", threads=3) for e in encoders
    ]
    trials = 4 // len(encoders)  # four trials in all: two pairs
    tuned = tune_all(specs, trials, tmp_path, jobs=2)
    pair = encoders * 2 if len(encoders) == 1 else encoders
    assert [c["pair"] for c in fake_fit.calls] == [pair] * 4
    assert {c["threads"] for c in fake_fit.calls} == {"3"}  # each trial, a run's threads
    assert all(_states(tmp_path, e) == ["COMPLETE"] * trials for e in encoders)
    assert all(t.config is not None for t in tuned.values())

    tune_all(specs, trials + 2 // len(encoders), tmp_path, jobs=2)  # one pair more, resumed
    assert len(fake_fit.calls) == 6 and [c["pair"] for c in fake_fit.calls[4:]] == [pair] * 2
    assert sum(len(_study(tmp_path, e).trials) for e in encoders) == 6  # none redone


SEARCHED_CNN = {"model.optimizer.init_args.lr", "model.optimizer.init_args.weight_decay",
                "model.dropout", "model.encoder.init_args.num_filters", "model.word_dropout",
                "model.embedding_dim"}  # fmt: skip


def _trial_dir(call: dict) -> str:
    return next(a for a in call["args"] if a.startswith("--trainer.default_root_dir="))


def _searched(call: dict) -> list[str]:
    return [a for a in call["args"] if a.split("=")[0].lstrip("-") in SEARCHED_CNN]


def test_a_trial_stopped_by_a_signal_is_uncounted_and_resumes_with_its_settings_and_scores(
    synthetic_config, tmp_path, fake_fit, capsys
):
    # As in `compare --tune` at the end of an allocation: SIGTERM reaches this process in trial
    # 0's third epoch or later; the next run of the command goes on from the trial's last
    # checkpoint with the same settings, not a new draw.
    plan = [round(0.5 + 0.01 * e, 2) for e in range(40)]
    fake_fit.set([plan, plan, [0.1]])  # by folder: trial-000's plan serves its resumption too
    spec = RunSpec("cnn", 0, (synthetic_config,), (), run_dir="")
    ckpt = tmp_path / "tuning" / "cnn" / "trial-000" / "stand-in.ckpt"

    def terminate_after_a_few_epochs() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if ckpt.exists() and int(ckpt.read_text() or 0) >= 3:
                break
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_after_a_few_epochs, daemon=True).start()
    control = RunControl()
    with stop_on_signals(control, print, "the trials end uncounted") as stopped:
        tune_all([spec], 2, tmp_path, control=control)
    assert stopped == [signal.SIGTERM] and ckpt.exists()  # a cut trial keeps its checkpoint
    (cut,) = _study(tmp_path).trials
    assert cut.state.name == "FAIL" and "error" not in cut.user_attrs  # not counted
    reached = max(cut.intermediate_values)
    assert 3 <= reached < 40 and "a rerun resumes it" in capsys.readouterr().out

    tune_all([spec], 2, tmp_path)
    cut, resumed, fresh = _study(tmp_path).trials
    assert [t.state.name for t in (cut, resumed, fresh)] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert resumed.params == cut.params
    assert (resumed.user_attrs["resumes"], resumed.user_attrs["origin"]) == (0, 0)
    # The pruner saw every epoch once: the cut ones replayed, then the rest.
    assert resumed.intermediate_values == dict(enumerate(plan, start=1))
    assert resumed.value == plan[-1]
    first, again, third = fake_fit.calls
    assert _trial_dir(again) == _trial_dir(first) and _searched(again) == _searched(first)
    assert _searched(third) != _searched(first)  # the budget's next trial is a new draw
    log = (tmp_path / "tuning" / "cnn" / "trial-000" / "fit.log").read_text()
    assert "attempt 2" in log and log.count("fake fit finished") == 1
    assert f"trial 1 resumes trial 0 (cut short after epoch {reached})" in capsys.readouterr().out
    assert not list((tmp_path / "tuning").rglob("*.ckpt"))  # ended trials keep no weights
    tune_all([spec], 2, tmp_path)  # done: the resumed trial is not resumed again
    assert len(fake_fit.calls) == 3 and len(_study(tmp_path).trials) == 3


PROBE = """
import json, os
from pathlib import Path
import lightning as L

class Probe(L.Callback):  # at each epoch's start: the checkpoints a kill would leave
    def on_train_epoch_start(self, trainer, pl_module):
        files = sorted(Path(trainer.default_root_dir).rglob("*.ckpt"))
        with open(os.environ["PROBE_OUT"], "a") as out:
            out.write(json.dumps([trainer.current_epoch, [f.name for f in files]]) + "\\n")
"""


def test_a_trials_fit_keeps_its_newest_epoch_only_and_resumes_from_it(
    synthetic_config, tiny_synthetic, tmp_path, monkeypatch
):
    # What resumption rests on, with Lightning's real ModelCheckpoint, checked *during* the fit:
    # after every epoch one file, that epoch's, also when val/acc did not improve (lr 0). With
    # save_top_k=0 and save_last, Lightning wrote last.ckpt only when the fit ended.
    (tmp_path / "probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PROBE_OUT", str(tmp_path / "probe.jsonl"))
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    overrides = (*tiny_synthetic, "--trainer.callbacks=[]", "--model.optimizer.init_args.lr=0")
    spec = RunSpec("cnn", 0, (synthetic_config,), (*overrides, *TRIAL_ARGS), str(tmp_path / "t"))
    args = [a for a in execution.fit_args(spec) if not a.startswith("--trainer.callbacks+=")]
    cli_main([*args, "--trainer.max_epochs=3", "--trainer.callbacks+=probe.Probe"])
    seen = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert [len(files) for _, files in seen] == [0, 1, 1]
    assert seen[2][1][0].startswith("epoch01")  # the newest epoch, not the best (epoch 0)
    cli_main([*args, "--trainer.max_epochs=4", "--trainer.callbacks+=probe.Probe"])
    lines = (tmp_path / "probe.jsonl").read_text().splitlines()
    assert [json.loads(line)[0] for line in lines[3:]] == [3]  # resumed: epoch 3 only


def test_a_trial_left_running_by_a_killed_process_resumes_with_its_settings(
    synthetic_config, tmp_path, fake_fit
):
    fake_fit.set([[0.5], [0.6], [0.7]])
    tune("cnn", 1, [synthetic_config], [], tmp_path)
    study = _study(tmp_path)
    # A process killed outright (SIGKILL, a node lost) leaves its trial RUNNING, settings drawn.
    killed = study.ask(fixed_distributions=study.trials[0].distributions)
    (tmp_path / "tuning" / "cnn" / f"trial-{killed.number:03d}").mkdir()
    tune("cnn", 2, [synthetic_config], [], tmp_path)
    first, cut, resumed = _study(tmp_path).trials
    assert [t.state.name for t in (first, cut, resumed)] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert resumed.params == cut.params
    assert (resumed.user_attrs["resumes"], resumed.user_attrs["origin"]) == (1, 1)
    assert _trial_dir(fake_fit.calls[-1]).endswith("trial-001")


def test_compare_tune_tunes_each_encoder_then_runs_every_seed_with_its_best(
    synthetic_config, tmp_path, fits
):
    # The runner's stand-in `lit-seqcls` for trials and runs alike: instant, and it counts fits.
    out = tmp_path / "cmp"
    command = ["--config", synthetic_config, "--output_dir", str(out), "--encoders", "cnn", "gru"]
    command += ["--seeds", "0", "1", "--tune", "2", "--reference", "none"]
    runner.main(command)

    trials, runs = fits()[:4], fits()[4:]  # "<class> <seed> <--ckpt_path>" each
    assert trials == ["CNNEncoder 0 auto"] * 2 + ["GRUEncoder 0 auto"] * 2  # fit only, seed 0
    assert len(runs) == 8 and all(f.endswith(" auto") for f in runs)  # 2 × 2 shipped, 2 × 2 tuned
    with (out / "comparison.csv").open(encoding="utf-8") as f:
        rows = {row["encoder"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["cnn", "gru", "cnn (tuned)", "gru (tuned)"]
    assert all(row["status"] == "ok" for row in rows.values())
    fit_log = (out / "runs" / "gru-tuned-seed1" / "fit.log").read_text().splitlines()[0]
    assert f"--config {out / 'tuning' / 'gru.yaml'}" in fit_log  # the tuned config, reused
    assert "--seed_everything=1" in fit_log
    assert "tuning" not in (out / "runs" / "gru-seed1" / "fit.log").read_text().splitlines()[0]

    runner.main(command)  # the same command again: nothing trains, tuning included
    assert len(fits()) == 12
    with pytest.raises(SystemExit):  # trials run here, never on a login node
        runner.main([*command, "--launcher", "slurm", "--slurm.time", "10"])


def test_without_optuna_or_with_nothing_left_to_search_tuning_says_what_to_do(
    synthetic_config, tmp_path, monkeypatch
):
    given = [f"--{p.flag}=1" for p in load_space(space_file("swem"), "swem")]
    with pytest.raises(
        SearchSpaceError, match=r"swem\.yaml: every parameter is set on the command"
    ):
        tune("swem", 1, [synthetic_config], given, tmp_path)
    monkeypatch.setitem(sys.modules, "optuna", None)  # not installed
    with pytest.raises(TuningError, match=r"pip install 'lit-seqcls\[tune\]'"):
        tune("cnn", 1, [synthetic_config], [], tmp_path)
    assert not (tmp_path / TUNING_DIR).exists()  # refused before anything is written


@pytest.mark.slow
def test_compare_tune_with_real_training_applies_the_tuned_settings(
    synthetic_config, tiny_synthetic, tmp_path, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])
    out = tmp_path / "cmp"
    args = ["--config", synthetic_config, "--encoders", "cnn", "--tune", "2", "--reference", "none"]
    cli_main(["compare", *args, "--output_dir", str(out), *tiny_synthetic, ONE_EPOCH])
    with (out / "comparison.csv").open(encoding="utf-8") as f:
        rows = {row["encoder"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["cnn", "cnn (tuned)"]
    assert all(
        row["status"] == "ok" and 0 <= float(row["test_acc_mean"]) <= 1 for row in rows.values()
    )
    best = _study(out).best_params
    fitted = out / "runs" / "cnn-tuned-seed0" / "lightning_logs" / "version_0" / "config.yaml"
    model = yaml.safe_load(fitted.read_text())["model"]  # what the tuned run trained with
    assert model["dropout"] == best["dropout"] and model["embedding_dim"] == 8
    assert model["encoder"]["init_args"]["num_filters"] == best["num_filters"]
    assert model["optimizer"]["init_args"]["lr"] == best["lr"]
