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
    on_event: Callable[[dict[str, Any]], None] | None = None,
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
    on_event: Callable[[dict[str, Any]], None] | None = None,
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
    on_event: Callable[[dict[str, Any]], None] | None,
    control: RunControl | None,
) -> dict[str, Any] | None:
    """The two steps of ``run_one``; sets ``result.status``; returns the fit summary."""
    run_dir = Path(spec.run_dir)
    env = {
        **os.environ,
        # Read by wandb.init when a W&B logger is configured; ignored otherwise.
        "WANDB_RUN_GROUP": spec.group,
        "WANDB_NAME": spec.name,
        **_thread_env(spec.threads),
        "PYTHONUNBUFFERED": "1",  # the log is written as it happens (tail -f, our events)
    }
    fit = read_json(run_dir / FIT_DONE_FILE)  # fit finished in an earlier attempt: only test
    if fit is None:
        fit_args = [
            "fit",
            *_config_args(list(spec.configs)),
            # `.class_path`: a bare `--model.encoder=X` is read as an encoder *name* (a string).
            f"--model.encoder.class_path={_class_path(spec.encoder)}",
            "--trainer.enable_progress_bar=false",  # progress comes from the reporter's events
            "--trainer.enable_model_summary=false",
            *spec.overrides,
            f"--seed_everything={spec.seed}",
            f"--trainer.default_root_dir={run_dir}",
            f"--trainer.callbacks+={REPORTER}",
            "--ckpt_path=auto",  # the newest checkpoint under default_root_dir, or none
        ]
        fit_env = {**env, "WANDB_JOB_TYPE": "fit"}
        code, files = _child(spec, "fit", fit_args, fit_env, on_event, control)
        if _stopped(code, control):
            result.status = f"{INTERRUPTED} during fit (exit {code}): rerun to resume"
            return None
        if code != 0 or FIT_FILE not in files:
            result.status = f"fit failed (exit {code}, see {run_dir.name}/fit.log)"
            _show_failure(run_dir / "fit.log")
            return None
        fit = json.loads(files[FIT_FILE].read_text(encoding="utf-8"))
        write_json(run_dir / FIT_DONE_FILE, fit)
    result.add_fit(fit)
    if not fit.get("best_model_path"):
        result.status = "no checkpoint to test (is checkpointing on?)"
        return fit
    test_args = [
        "test",
        "--config",
        str(Path(fit["log_dir"]) / "config.yaml"),
        f"--ckpt_path={fit['best_model_path']}",
    ]
    test_env = {**env, "WANDB_JOB_TYPE": "test"}
    code, files = _child(spec, "test", test_args, test_env, None, control)
    if _stopped(code, control):
        result.status = f"{INTERRUPTED} during test (exit {code}): rerun to finish"
        return fit
    if code != 0 or TEST_FILE not in files:
        result.status = f"test failed (exit {code}, see {run_dir.name}/test.log)"
        _show_failure(run_dir / "test.log")
        return fit
    result.add_test(json.loads(files[TEST_FILE].read_text(encoding="utf-8")))
    result.status = "ok"
    return fit


def _thread_env(threads: int | None) -> dict[str, str]:
    """One run's threads (torch reads ``OMP_NUM_THREADS`` for its own thread pool)."""
    if threads is None:
        return {}
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _stopped(code: int, control: RunControl | None) -> bool:
    return code in _STOPPED or (control is not None and control.stop.is_set() and code != 0)


def _child(
    spec: RunSpec,
    step: str,
    args: list[str],
    env: dict[str, str],
    on_event: Callable[[dict[str, Any]], None] | None,
    control: RunControl | None,
) -> tuple[int, dict[str, Path]]:
    """Run ``lit-seqcls *args`` with its output in ``<run>/<step>.log``; return (exit code, the
    files it wrote). Its events are read from the log as it grows; its wall time, exit status
    and peak resident memory go to ``launches.jsonl``.

    The peak is the process's ``VmHWM`` (``/proc/<pid>/status``), read at every poll once it
    runs our command; only without ``/proc`` is it ``wait4``'s ``ru_maxrss``, which on Linux
    also counts this (forking) process's memory: a stdlib-only child of a 600 MB parent
    reported 603 MB there, 14 MB in ``VmHWM``.
    """
    run_dir = Path(spec.run_dir)
    if control is not None and control.stop.is_set():
        return -signal.SIGTERM, {}
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
    code, usage, files, peak_kb = None, None, {}, None
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
                    _on_line(line.decode("utf-8", errors="replace"), files, on_event)
                if code is None:
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
    return code, files


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


def _on_line(
    line: str, files: dict[str, Path], on_event: Callable[[dict[str, Any]], None] | None
) -> None:
    if not line.startswith(EVENT_PREFIX):
        return
    event = json.loads(line[len(EVENT_PREFIX) :])
    if event["event"] == "wrote":
        files[event["file"]] = Path(event["path"])
    elif on_event is not None:
        on_event(event)


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


def _class_path(encoder: str) -> str:
    cls = ENCODERS[encoder]
    return f"{cls.__module__}.{cls.__name__}"


def _config_args(configs: list[str]) -> list[str]:
    return [arg for path in configs for arg in ("--config", path)]
