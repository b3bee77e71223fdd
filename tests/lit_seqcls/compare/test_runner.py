"""The runner's orchestration with a stand-in ``lit-seqcls`` (``fake_lit_seqcls.py``): resume,
reuse, refusal, ``--fresh``, ``--jobs``, SIGTERM, and the submitit launchers (its local executor,
and a stand-in ``sbatch`` that records what would be submitted). Real training: ``test_resume``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lit_seqcls.compare import execution, runner
from lit_seqcls.compare.launchers import _Task, run_local
from lit_seqcls.compare.predictions import PREDICTIONS_FILE
from lit_seqcls.compare.progress import Progress
from lit_seqcls.compare.results import RunResult, load_results
from lit_seqcls.compare.runs import RECORD_FILE, RunSpec, read_record, usable_cores

FAKE = Path(__file__).with_name("fake_lit_seqcls.py")
ROOT = Path(__file__).resolve().parents[3]
PLAN = ["--encoders", "cnn", "gru", "--seeds", "0", "1", "--trainer.max_epochs", "1"]


@pytest.fixture
def compare(synthetic_config):
    """``compare(out, *args)``: the runner on the synthetic config, writing to ``out``."""
    return lambda out, *args: runner.main(
        ["--config", synthetic_config, "--output_dir", str(out), *args]
    )


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {row.get("encoder") + row.get("seed", ""): row for row in csv.DictReader(f)}


def _statuses(out: Path) -> set[str]:
    """The statuses of the encoders' runs (not of a reference row the report may add)."""
    rows = _rows(out / "runs.csv").values()
    return {row["status"] for row in rows if row["encoder"] in ("cnn", "gru")}


def test_a_rerun_trains_nothing_and_finishes_only_what_is_missing(
    compare, fits, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("FAKE_STEP_S", "0.5")  # alive long enough for its memory to be read
    out = tmp_path / "cmp"
    compare(out, *PLAN, "--jobs", "2")
    assert len(fits()) == 4
    assert _statuses(out) == {"ok"}
    record = read_record(out / "runs" / "gru-seed1")
    threads = max(1, usable_cores() // 2)  # --jobs 2 share the cores
    assert record.hardware["threads"] == record.hardware["torch_threads"] == threads
    assert record.hardware["cpu"] and record.wall_time_s > 0 and record.time_to_best_s == 0.25
    assert 0 < record.peak_rss_mb < 100  # the child's own memory, not this process's
    summary = _rows(out / "comparison.csv")["gru"]
    assert float(summary["time_to_best_s_mean"]) == 0.25 and float(summary["peak_rss_mb_mean"]) > 0

    compare(out, *PLAN, "--jobs", "2")  # the same command again
    assert len(fits()) == 4
    assert "4 of 4 runs already finished" in capsys.readouterr().out

    # A run cut short before its record was written resumes (and only that one runs).
    (out / "runs" / "gru-seed1" / RECORD_FILE).unlink()
    (out / "runs" / "gru-seed1" / "fit.json").unlink()
    compare(out, *PLAN)
    assert fits()[4:] == ["GRUEncoder 1 auto"]
    assert "attempt 2" in (out / "runs" / "gru-seed1" / "fit.log").read_text()


def test_a_comparison_moved_elsewhere_without_its_checkpoints_is_reused_as_it_is(
    compare, fits, tmp_path
):
    """A finished run's folder without its checkpoints, copied to another folder (another
    machine, a repository), is reused: nothing runs again and the report reads the copies, not
    the paths the records were written with (which no longer exist)."""
    out = tmp_path / "cmp"
    compare(out, *PLAN)
    moved = tmp_path / "elsewhere"
    shutil.copytree(out / "runs", moved / "runs", ignore=shutil.ignore_patterns("*.ckpt"))
    (moved / "runs" / "cnn-seed0" / PREDICTIONS_FILE).write_text(  # the stand-in writes none
        '{"index": 0, "label": "a", "pred": "a"}\n', encoding="utf-8"
    )
    shutil.rmtree(out)

    compare(moved, *PLAN)
    assert len(fits()) == 4  # nothing trained again
    cnn = read_record(moved / "runs" / "cnn-seed0")
    assert cnn.predictions == str(moved / "runs" / "cnn-seed0" / PREDICTIONS_FILE)
    # The tables name the runs by their place in the comparison, not by the machine's paths.
    rows = _rows(moved / "runs.csv")
    assert rows["cnn0"]["run_dir"] == "runs/cnn-seed0"
    saved = {(r.encoder, r.seed): r for r in load_results(moved)}
    assert saved["cnn", 0].run_dir == cnn.run_dir and saved["cnn", 0].predictions == cnn.predictions


def test_kept_runs_of_benchmarks_keep_runs_resume_the_comparison_elsewhere(compare, fits, tmp_path):
    """What ``benchmarks/keep_runs.py`` keeps of a comparison (#17's runs in the repository) is
    enough for the same command, in another folder, to train nothing for those runs."""
    spec = importlib.util.spec_from_file_location("keep_runs", ROOT / "benchmarks/keep_runs.py")
    keep_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keep_runs)
    out = tmp_path / "cmp"
    compare(out, *PLAN)
    (out / "runs" / "gru-seed1" / RECORD_FILE).unlink()  # unfinished: not kept
    for run in ("cnn-seed0", "cnn-seed1", "gru-seed0"):  # the stand-in writes no predictions
        (out / "runs" / run / PREDICTIONS_FILE).write_text(
            '{"index": 0, "label": "a", "pred": "b", "probs": {"a": 0.4, "b": 0.6}}\n'
        )
    kept = keep_runs.keep(out, tmp_path / "repo" / "runs")
    assert kept == ["cnn-seed0", "cnn-seed1", "gru-seed0"]
    lines = (tmp_path / "repo" / "runs" / "cnn-seed0" / PREDICTIONS_FILE).read_text()
    assert json.loads(lines) == {"index": 0, "label": "a", "pred": "b"}

    shutil.copytree(tmp_path / "repo" / "runs", tmp_path / "elsewhere" / "runs")
    compare(tmp_path / "elsewhere", *PLAN)
    assert fits()[4:] == ["GRUEncoder 1 auto"]  # only the run that was not finished


def test_another_command_is_refused_naming_fresh_which_starts_over(compare, fits, tmp_path):
    out = tmp_path / "cmp"
    plan = ["--encoders", "cnn", "--trainer.max_epochs", "1"]
    compare(out, *plan)
    with pytest.raises(runner.CompareError, match=r"(?s)cnn-seed0: overrides were.*--fresh"):
        compare(out, "--encoders", "cnn", "--trainer.max_epochs", "2")
    assert len(fits()) == 1
    compare(out, "--encoders", "cnn", "--trainer.max_epochs", "2", "--fresh")
    assert len(fits()) == 2
    assert read_record(out / "runs" / "cnn-seed0").status == "ok"
    # Launch options are not part of a run's command: a rerun with other --jobs reuses it.
    compare(out, "--encoders", "cnn", "--trainer.max_epochs", "2", "--jobs", "2")
    assert len(fits()) == 2


def test_a_missing_input_file_stops_the_comparison_before_any_run(compare, fits, tmp_path):
    # IMDB's attention config reads a vectors file made beforehand: without it each attention
    # run failed when its turn came, hours into the comparison, with the others left to finish.
    out = tmp_path / "cmp"
    vectors = ["--data.init_args.vectors", "missing-vectors.txt", "--model.embedding_dim=8"]
    with pytest.raises(runner.CompareError) as refused:
        compare(out, "--encoders", "cnn", "gru", *vectors)
    message = str(refused.value)
    assert "The cnn runs read missing-vectors.txt, which does not exist" in message
    assert "lit-seqcls vectors --config <data config> --output missing-vectors.txt" in message
    assert "Nothing was started" in message and fits() == []
    with pytest.raises(runner.CompareError, match=r"(?s)data settings of the cnn runs.*max_lenght"):
        compare(out, "--encoders", "cnn", "--data.init_args.max_lenght=8")
    with pytest.raises(runner.CompareError, match=r"cnn runs are refused: max_length must be"):
        compare(out, "--encoders", "cnn", "--data.init_args.max_length=0")
    with pytest.raises(runner.CompareError, match=r"No data to compare on: give a data config"):
        runner.main(["--output_dir", str(out), "--encoders", "cnn"])
    with pytest.raises(runner.CompareError, match=r"cnn runs read missing-vectors\.txt"):
        compare(out, "--encoders", "cnn", "--tune", "2", *vectors)  # before the first trial
    assert fits() == []
    # Runs that finished are not checked again: their files may be gone by a later rerun.
    (tmp_path / "v.txt").write_text("the " + " ".join(["0.5"] * 8) + "\n")
    vectors[1] = str(tmp_path / "v.txt")
    compare(out, "--encoders", "cnn", *vectors)
    (tmp_path / "v.txt").unlink()
    compare(out, "--encoders", "cnn", *vectors)
    assert len(fits()) == 1


def test_a_failed_run_is_reported_and_tried_again_by_a_rerun(compare, fits, tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    monkeypatch.setenv("FAKE_FAIL", "CNNEncoder")
    compare(out, "--encoders", "cnn", "gru")
    assert _rows(out / "comparison.csv")["cnn"]["status"].startswith("seed 0: fit failed")
    monkeypatch.delenv("FAKE_FAIL")
    compare(out, "--encoders", "cnn", "gru", "--collect")  # merges, starts nothing
    assert len(fits()) == 2
    compare(out, "--encoders", "cnn", "gru")
    assert fits()[2:] == ["CNNEncoder 0 auto"]
    assert _rows(out / "comparison.csv")["cnn"]["status"] == "ok"


def test_sigterm_stops_every_run_with_a_checkpoint_and_a_rerun_resumes_them(
    fits, tmp_path, synthetic_config
):
    out = tmp_path / "cmp"
    script = (
        "import sys; from lit_seqcls.compare import execution, runner; "
        f"execution.PROGRAM = (sys.executable, {str(FAKE)!r}); runner.main(sys.argv[1:])"
    )
    argv = ["--config", synthetic_config, "--output_dir", str(out), *PLAN, "--jobs", "2"]
    env = {**os.environ, "FAKE_STEPS": "60", "FAKE_STEP_S": "0.1"}  # 6 s of "training" a run
    compare = subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a job of a shell
    )
    deadline = time.monotonic() + 300
    while not (list(out.glob(f"runs/*/{RECORD_FILE}")) and _training(out / "runs" / "gru-seed0")):
        assert compare.poll() is None and time.monotonic() < deadline, compare.stdout.read()
        time.sleep(0.1)
    os.killpg(compare.pid, signal.SIGTERM)  # what a scheduler or `kill -- -PGID` does
    output = compare.communicate(timeout=120)[0]
    assert compare.returncode == 128 + signal.SIGTERM, output
    assert "Stopped by SIGTERM" in output and "Rerun the same command" in output
    finished = {p.parent.name for p in out.glob(f"runs/*/{RECORD_FILE}")}
    stopped = {p.parent.name for p in out.glob("runs/*/fake_state.json")}
    assert 1 <= len(finished) < 4 and stopped and not stopped & finished

    before = len(fits())
    runner.main(argv)  # the same command: finishes the rest, from where each stopped
    assert len(fits()) - before == 4 - len(finished)
    for name in stopped:
        fit = json.loads((out / "runs" / name / "fit.json").read_text())
        assert fit["resumed_at"] > 0  # continued from its saved step, not from 0
    assert _statuses(out) == {"ok"}


def _training(run_dir: Path) -> bool:
    """Whether the run's fit has started training (the reporter's ``fit_start`` event)."""
    log = run_dir / "fit.log"
    return log.is_file() and '"fit_start"' in log.read_text()


def test_progress_is_one_line_for_the_whole_comparison():
    plan = [RunSpec("gru", s, (), (), f"runs/gru-seed{s}") for s in (0, 1, 2)]
    stream = io.StringIO()
    progress = Progress(plan, done=1, jobs=2, stream=stream)
    progress.started(plan[1])
    progress.on_event(plan[1])({"event": "epoch", "epoch": 1, "max_epochs": 2, "val/acc": 0.5})
    progress.finished(plan[1], RunResult("gru", 1, status="ok", test_acc=0.9, test_f1=0.8))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[2/3] gru (seed 1): starting (1/3 done, 1 running, 1 left")
    assert "epoch 1/2, val/acc 0.500 (1/3 done, 1 running, 1 left; elapsed" in lines[1]
    assert lines[1].endswith("left)") and "~" in lines[1]  # an estimate from the epoch's pace
    assert lines[2].startswith("[2/3] gru (seed 1): test acc 0.900, macro-F1 0.800 (2/3 done")


def test_progress_counts_a_run_as_ended_before_the_next_one_starts():
    # --jobs 1: the second run's "starting" line said "0/2 done, 2 running".
    plan = [RunSpec("gru", s, (), (), f"runs/gru-seed{s}") for s in (0, 1)]
    stream = io.StringIO()
    progress = Progress(plan, done=0, jobs=1, stream=stream)
    reported = []

    def execute(spec, on_event, control):
        return RunResult("gru", spec.seed, status="ok", test_acc=0.9, test_f1=0.8)

    assert run_local(plan, 1, execute, reported.append, progress) is None
    lines = [line.split(";")[0] for line in stream.getvalue().splitlines()]
    assert lines == [
        "[1/2] gru (seed 0): starting (0/2 done, 1 running, 1 left",
        "[1/2] gru (seed 0): test acc 0.900, macro-F1 0.800 (1/2 done, 0 running, 1 left",
        "[2/2] gru (seed 1): starting (1/2 done, 1 running, 0 left",
        "[2/2] gru (seed 1): test acc 0.900, macro-F1 0.800 (2/2 done, 0 running, 0 left",
    ]
    assert [r.seed for r in reported] == [0, 1]


def test_submitit_local_executor_runs_the_comparison_and_collect_merges_it(compare, fits, tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "cmp"
    plan = ["--encoders", "cnn", "--seeds", "0", "1"]
    compare(out, *plan, "--launcher", "submitit-local", "--jobs", "2")
    assert len(fits()) == 2
    assert _statuses(out) == {"ok"}
    assert list((out / "submitit").glob("*_log.out"))  # submitit ran the tasks
    compare(out, *plan, "--collect")
    assert len(fits()) == 2


def _stand_in_slurm(bin_dir: Path, log: Path) -> None:
    """``sbatch`` records its arguments and script and answers job 4242; ``sacct`` reports
    every task in state ``$FAKE_STATE``; ``srun``, ``squeue`` and ``scancel`` do nothing."""
    bin_dir.mkdir()
    scripts = {
        "sbatch": f'echo "$@" >> {log}/sbatch.args\ncp "${{@: -1}}" {log}/submitted.sh\n'
        'echo "Submitted batch job 4242"\n',
        "sacct": 'echo "JobID|State|NodeList"\nfor t in 0 1 2 3; do echo "4242_$t|$FAKE_STATE|n1"; '
        "done\n",
        "srun": "",
        "squeue": "",
        "scancel": "",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)


def test_slurm_submits_one_array_running_our_per_run_function(compare, fits, tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    log = tmp_path / "slurm_log"
    log.mkdir()
    _stand_in_slurm(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STATE", "RUNNING")
    out = tmp_path / "cmp"
    plan = ["--encoders", "cnn", "gru"]
    slurm = [
        "--launcher", "slurm", "--slurm.partition", "gpu", "--slurm.time", "1:30:00",
        "--slurm.gpus_per_task", "1", "--slurm.cpus_per_task", "4", "--slurm.mem", "16G",
        "--slurm.account", "proj", "--slurm.array_parallelism", "1",
        "--slurm.additional", '{"qos": "high"}',
    ]  # fmt: skip
    compare(out, *plan, *slurm)
    assert len((log / "sbatch.args").read_text().splitlines()) == 1  # one array, one sbatch
    script = (log / "submitted.sh").read_text()
    for line in [
        "#SBATCH --array=0-1%1",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16G",
        "#SBATCH --account=proj",
        "#SBATCH --qos=high",
        "#SBATCH --signal=USR1@90",  # Lightning's requeue signal (submitit's default: USR2)
    ]:
        assert line in script.splitlines()
    assert f"-m submitit.core._submit {out / 'submitit'}" in script
    assert fits() == []  # submitted, nothing run here
    assert "submitted as SLURM job 4242_1" in (out / "runs.csv").read_text()

    # Each task's pickle holds our per-run function and its run.
    for task, encoder in enumerate(["cnn", "gru"]):
        pickle = out / "submitit" / f"4242_{task}_submitted.pkl"
        delayed = submitit.core.utils.DelayedSubmission.load(pickle)
        assert isinstance(delayed.function, _Task)
        assert delayed.function.execute is execution.execute_run
        (spec,) = delayed.args
        assert (spec.encoder, spec.seed, spec.threads) == (encoder, 0, None)

    # Run task 0 the way SLURM would start it (the line of the script after srun).
    task_env = {
        **os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4243",
        "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "0", "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
    }  # fmt: skip
    command = [sys.executable, "-u", "-m", "submitit.core._submit", str(out / "submitit")]
    subprocess.run(command, env=task_env, check=True, timeout=300)
    assert fits() == ["CNNEncoder 0 auto"]

    # Rerunning while task 1 still runs submits nothing; --collect merges task 0.
    compare(out, *plan, *slurm)
    assert len((log / "sbatch.args").read_text().splitlines()) == 1
    compare(out, *plan, "--collect")
    runs = _rows(out / "runs.csv")
    assert runs["cnn0"]["status"] == "ok"
    assert runs["gru0"]["status"] == "SLURM job 4242_1: RUNNING"


def test_the_reporter_counts_and_clock_survive_a_resume():
    # Its state is in every checkpoint, so a resumed run reports the whole run: the epochs
    # before the interruption, and the fit time of both attempts (not the time in between).
    from lit_seqcls.compare.reporter import ComparisonReporter

    before = ComparisonReporter()
    before.history = [{"epoch": 0, "elapsed": 4.0, "val/acc": 0.5}]
    before.train_samples, before.train_tokens, before.train_seconds = 64, 640, 2.0
    before._elapsed_before = 5.0  # as if 5 s of fit so far
    state = json.loads(json.dumps(before.state_dict()))  # plain data
    after = ComparisonReporter()
    after.load_state_dict(state)
    assert after.history == before.history and after.train_tokens == 640
    assert after._elapsed() == pytest.approx(5.0)
