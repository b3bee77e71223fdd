"""One run of ``lit-seqcls compare``, start to end: ``fit`` then ``test`` in child processes.

``execute_run`` is what every launcher calls once per encoder × seed (a thread here, a SLURM
task there): it returns a run already recorded as finished, starts a failed one over, and
otherwise continues the run where it stopped (``run_one``). ``fit`` always runs with
``--ckpt_path auto``, so an interrupted run goes on from the newest checkpoint in its folder
(the pre-emption ``hpc_ckpt_N.ckpt`` of a requeued SLURM task, the ``interrupted.ckpt`` of a
Ctrl-C/SIGTERM, or ``last.ckpt``), bit for bit where the uninterrupted run would be. The files
of a run folder are described in ``lit_seqcls.compare.runs``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lit_seqcls.compare.reporter import EVENT_PREFIX, FIT_FILE, TEST_FILE
from lit_seqcls.compare.results import RunResult
from lit_seqcls.compare.runs import (
    COMMAND_FILE,
    FIT_DONE_FILE,
    RunControl,
    RunSpec,
    hardware,
    launches,
    read_json,
    read_record,
    record_launch,
    same_command,
    stored_command,
    write_json,
    write_record,
)
from lit_seqcls.encoders import ENCODERS

REPORTER = "lit_seqcls.compare.ComparisonReporter"
# Gets each reporter event (an epoch, ...) of a process as it happens; true: stop the process.
Listener = Callable[[dict[str, Any]], bool | None]
LOG_TAIL = 2000  # characters of a failed run's log shown in the terminal
PROGRAM = (sys.executable, "-m", "lit_seqcls")  # how a run's `fit`/`test` process starts
INTERRUPTED = "interrupted"  # a run's status when stopped by a signal: no record, a rerun resumes
POLL_S = 0.2  # how often a run's log is read for the reporter's events
STOP_GRACE_S = 60.0  # a run's process gets this long to save a checkpoint when we must stop
# Exit statuses of a process stopped by a signal (GracefulShutdown: 128 + signal; killed: -signal).
_STOPPED = {128 + signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGKILL}
_STOPPED |= {-signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL}
_PROC = Path("/proc")


def execute_run(
    spec: RunSpec,
    on_event: Listener | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Finish one run and record it: the per-run function of every launcher (a SLURM task too).

    A run recorded as finished with this command is returned as it is; a failed one starts over
    from an empty folder; any other continues where it stopped (``run_one``). The record
    (``result.json``) is written last and atomically, and only when the run was not stopped by
    a signal, so an interrupted run is never mistaken for a finished one.
    """
    run_dir = Path(spec.run_dir)
    command = spec.command()
    stored = stored_command(run_dir)
    if stored is not None and not same_command(stored, command):
        status = f"not run: its folder holds a run of another command ({run_dir}); see --fresh"
        return RunResult(spec.label, spec.seed, run_dir=str(run_dir), status=status)
    done = read_record(run_dir)
    if done is not None and done.status == "ok":
        return done
    if done is not None:  # it failed: try again from nothing, not from its checkpoints
        shutil.rmtree(run_dir, ignore_errors=True)
    if done is not None or stored is None:
        write_json(run_dir / COMMAND_FILE, command)
    result = run_one(spec, on_event, control)
    if not result.status.startswith(INTERRUPTED):
        write_record(spec, result)
    return result


def run_one(
    spec: RunSpec,
    on_event: Listener | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """``fit`` then ``test`` one encoder with one seed in child processes; never raises on failure.

    ``fit`` runs with ``--ckpt_path auto``: fresh in an empty folder, otherwise from the newest
    checkpoint in it, exactly where an interrupted attempt stopped; once it has finished
    (``fit.json``), a rerun only tests. Encoder arguments in ``spec.overrides`` have already
    been kept to the encoders that take them (``_for_encoder``).

    Args:
        spec: the run (encoder, seed, configs, overrides, folder, threads).
        on_event: gets the reporter's events (epochs) as they happen; ``None``: ignored.
        control: a stop request shared with the launcher, and where the running processes are
            registered so that it can signal them.
    """
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(encoder=spec.label, seed=spec.seed, run_dir=str(run_dir))
    fit = _fit_and_test(spec, result, on_event, control)
    entries = launches(run_dir)  # every process of every attempt: the run's cost
    result.wall_time_s = sum(e["seconds"] for e in entries) if entries else None
    peak = [e["peak_rss_kb"] for e in entries if e.get("peak_rss_kb")]
    result.peak_rss_mb = max(peak) / 1024 if peak else None
    device = (fit or {}).get("device", {})
    result.hardware = {
        **hardware(spec.threads),
        "device": device.get("type"),
        "torch_threads": device.get("torch_threads"),
        **({"gpu": device["name"]} if "name" in device else {}),
        **({"peak_gpu_mem_mb": device["peak_gpu_mem_mb"]} if "peak_gpu_mem_mb" in device else {}),
    }
    return result


def _fit_and_test(
    spec: RunSpec,
    result: RunResult,
    on_event: Listener | None,
    control: RunControl | None,
) -> dict[str, Any] | None:
    """The two steps of ``run_one``; sets ``result.status``; returns the fit summary."""
    run_dir = Path(spec.run_dir)
    fit = read_json(run_dir / FIT_DONE_FILE)  # fit finished in an earlier attempt: only test
    if fit is None:
        fit = _step(spec, "fit", fit_args(spec), FIT_FILE, result, on_event, control)
        if fit is None:
            return None
        write_json(run_dir / FIT_DONE_FILE, fit)
    result.add_fit(fit)
    if not fit.get("best_model_path"):
        result.status = "no checkpoint to test (is checkpointing on?)"
        return fit
    config = str(Path(fit["log_dir"]) / "config.yaml")
    test_args = ["test", "--config", config, f"--ckpt_path={fit['best_model_path']}"]
    test = _step(spec, "test", test_args, TEST_FILE, result, None, control)
    if test is not None:
        result.add_test(test)
        result.status = "ok"
    return fit


def _step(
    spec: RunSpec,
    step: str,
    args: list[str],
    wanted: str,
    result: RunResult,
    on_event: Listener | None,
    control: RunControl | None,
) -> dict[str, Any] | None:
    """One ``fit`` or ``test`` process of a run: the summary it wrote (the reporter's ``wanted``
    file), or None with ``result.status`` saying why not (interrupted, or failed)."""
    ended = run_process(spec, step, args, run_env(spec, step), on_event, control)
    log = Path(spec.run_dir) / f"{step}.log"
    if stopped(ended.code, control):
        then = "resume" if step == "fit" else "finish"
        result.status = f"{INTERRUPTED} during {step} (exit {ended.code}): rerun to {then}"
        return None
    if ended.code != 0 or wanted not in ended.files:
        result.status = f"{step} failed (exit {ended.code}, see {log.parent.name}/{log.name})"
        _show_failure(log)
        return None
    return json.loads(ended.files[wanted].read_text(encoding="utf-8"))


def fit_args(spec: RunSpec) -> list[str]:
    """The ``lit-seqcls fit`` arguments of ``spec`` (a run, or a tuning trial): its configs,
    encoder, overrides and seed, its folder as ``default_root_dir``, the ``ComparisonReporter``,
    and ``--ckpt_path auto``, which resumes from the newest checkpoint there (none: a fresh fit)."""
    return [
        "fit",
        *(arg for path in spec.configs for arg in ("--config", path)),
        # `.class_path`: a bare `--model.encoder=X` is read as an encoder *name* (a string).
        f"--model.encoder.class_path={class_path(spec.encoder)}",
        "--trainer.enable_progress_bar=false",  # progress comes from the reporter's events
        "--trainer.enable_model_summary=false",
        *spec.overrides,
        f"--seed_everything={spec.seed}",
        f"--trainer.default_root_dir={spec.run_dir}",
        f"--trainer.callbacks+={REPORTER}",
        "--ckpt_path=auto",
    ]


def run_env(spec: RunSpec, job_type: str, name: str | None = None) -> dict[str, str]:
    """The environment of one of ``spec``'s processes: its threads, and its W&B group, name and
    job type (read by ``wandb.init`` when a W&B logger is configured; ignored otherwise)."""
    return {
        **os.environ,
        "WANDB_RUN_GROUP": spec.group,
        "WANDB_NAME": name or spec.name,
        "WANDB_JOB_TYPE": job_type,
        **_thread_env(spec.threads),
        "PYTHONUNBUFFERED": "1",  # the log is written as it happens (tail -f, our events)
    }


def _thread_env(threads: int | None) -> dict[str, str]:
    """One run's threads (torch reads ``OMP_NUM_THREADS`` for its own thread pool)."""
    if threads is None:
        return {}
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def stopped(code: int, control: RunControl | None) -> bool:
    """Whether a process that ended with ``code`` was stopped by a signal (not failed): its run
    or trial is unfinished, and a rerun goes on with it."""
    return code in _STOPPED or (control is not None and control.stop.is_set() and code != 0)


@dataclasses.dataclass
class Ended:
    """How a ``run_process`` ended: its exit ``code``, the reporter ``files`` it wrote, and
    ``cut``: stopped because its listener asked (a trial pruned by Optuna)."""

    code: int
    files: dict[str, Path]
    cut: bool = False


def run_process(
    spec: RunSpec,
    step: str,
    args: list[str],
    env: dict[str, str],
    on_event: Listener | None = None,
    control: RunControl | None = None,
) -> Ended:
    """Run ``lit-seqcls *args`` with its output in ``<run>/<step>.log``: the one child runner of
    compare, for runs and tuning trials alike.

    The reporter's events are read from the log as it grows and handed to ``on_event``; when
    that returns true (Optuna prunes the trial), the process is stopped like any other
    (SIGTERM, a grace period) and later events are not handed on. Its wall time, exit status
    and peak resident memory go to ``launches.jsonl``.

    The peak is the process's ``VmHWM`` (``/proc/<pid>/status``), read at every poll once it
    runs our command; only without ``/proc`` is it ``wait4``'s ``ru_maxrss``, which on Linux
    also counts this (forking) process's memory: a stdlib-only child of a 600 MB parent
    reported 603 MB there, 14 MB in ``VmHWM``.
    """
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if control is not None and control.stop.is_set():
        return Ended(-signal.SIGTERM, {})
    log = run_dir / f"{step}.log"
    command = [*(spec.program or PROGRAM), *args]
    attempt = 1 + sum(entry["step"] == step for entry in launches(run_dir))
    with log.open("a", encoding="utf-8") as out:  # appended: every attempt stays readable
        if attempt > 1:
            out.write(f"\n\n----- attempt {attempt} (resumes from its newest checkpoint) -----\n")
        out.write(" ".join(command) + "\n\n")
        out.flush()
        offset, started = out.tell(), time.time()
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    if control is not None:
        with control.lock:
            control.running.add(child)
        if control.stop.is_set():  # asked to stop while it was starting
            child.send_signal(signal.SIGTERM)
    code, usage, files, peak_kb, cut = None, None, {}, None, False
    try:
        with log.open("rb") as tail:
            tail.seek(offset)
            partial = b""
            while code is None:
                peak_kb = _peak_rss_kb(child.pid, command) or peak_kb
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    code = child.returncode = os.waitstatus_to_exitcode(status)
                *lines, partial = (partial + tail.read()).split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", errors="replace")
                    cut = _on_line(text, files, None if cut else on_event) or cut
                if code is None and cut:
                    code = _stop(child)
                elif code is None:
                    time.sleep(POLL_S)
    finally:
        if control is not None:
            with control.lock:
                control.running.discard(child)
        if code is None:  # this process is being stopped: let the run save a checkpoint first
            code = _stop(child)
        record_launch(
            run_dir,
            {
                "step": step,
                "attempt": attempt,
                "started": started,
                "seconds": time.time() - started,
                "exit": code,
                # ru_maxrss only without /proc; with it, never read means it ended too soon.
                "peak_rss_kb": peak_kb or (_maxrss_kb(usage) if not _PROC.is_dir() else None),
            },
        )
    return Ended(code, files, cut)


def _maxrss_kb(usage: Any) -> int | None:
    return usage.ru_maxrss if usage is not None and usage.ru_maxrss else None


def _peak_rss_kb(pid: int, command: list[str]) -> int | None:
    """``VmHWM`` of ``pid`` once it has become ``command`` (before the exec it is our copy)."""
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[:-1]
        if [a.decode(errors="replace") for a in argv] != command:
            return None
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _on_line(line: str, files: dict[str, Path], on_event: Listener | None) -> bool:
    """Take in one line of a process's log; whether its listener asks to stop the process."""
    if not line.startswith(EVENT_PREFIX):
        return False
    event = json.loads(line[len(EVENT_PREFIX) :])
    if event["event"] == "wrote":
        files[event["file"]] = Path(event["path"])
    elif on_event is not None:
        return bool(on_event(event))
    return False


def _stop(child: subprocess.Popen) -> int:
    child.send_signal(signal.SIGTERM)  # GracefulShutdown: a checkpoint at the next step
    try:
        return child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def _show_failure(log: Path) -> None:
    text = log.read_text(encoding="utf-8", errors="replace")
    print(f"  !! failed; last lines of {log}:\n{text[-LOG_TAIL:]}", file=sys.stderr, flush=True)


def class_path(encoder: str) -> str:
    """The class path of the encoder named ``encoder`` (``--model.encoder.class_path``)."""
    cls = ENCODERS[encoder]
    return f"{cls.__module__}.{cls.__name__}"
