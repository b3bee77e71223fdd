"""Where the runs of ``lit-seqcls compare`` run: here, N at a time, or as a SLURM job array.

Every launcher calls the same per-run function (``runner.execute_run``, handed in as
``execute``) once per encoder × seed; what differs is only where that call happens:

- ``local`` (``run_local``): threads of this process, ``--jobs`` at a time, each run's
  processes with ``cores // jobs`` threads (two 2-thread processes on 2 cores were far slower
  than two 1-thread ones: BENCHMARKS.md). Ctrl-C or SIGTERM stops every run at its next step
  boundary with a checkpoint (the runs' own ``GracefulShutdown``); rerunning resumes them.
- ``slurm`` (``submit``): one SLURM job array through submitit's ``SlurmExecutor.map_array``,
  one task per run. SLURM signals every process of a task 90 s before its time limit; the
  script asks for SIGUSR1 (``SlurmOptions``), so the ``fit`` process handles it as it does
  under ``sbatch``: Lightning saves ``hpc_ckpt_N.ckpt`` and requeues the task, which then
  resumes with ``--ckpt_path auto``. The task's own process only waits (``_Task``): submitit's
  requeue would be a second one, and it ends the process while the ``fit`` is still saving.
- ``submitit-local``: the same submission through submitit's ``LocalExecutor``, to try it here.

Results are read back from the run folders (``runs.read_record``), never from submitit's
pickles, so ``--collect`` and a rerun see the same thing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from pathlib import Path
from typing import Any

from lit_seqcls.compare.progress import Progress
from lit_seqcls.compare.results import RunResult
from lit_seqcls.compare.runs import RunControl, RunSpec, read_json, usable_cores, write_json
from lit_seqcls.errors import UserError

LAUNCHERS = ("local", "slurm", "submitit-local")
JOBS_FILE = "jobs.json"  # in the submitit folder: run name -> job id
ACTIVE_STATES = {  # sacct states of a job that may still write its run folder
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
    "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING",
}  # fmt: skip
POLL_S = 1.0
REQUEUE_WARNING_S = 90  # SIGUSR1 this long before the time limit: Lightning saves and requeues

Execute = Callable[..., RunResult]  # execute(spec, on_event=None, control=None)
OnResult = Callable[[RunResult], None]


class LauncherError(RuntimeError, UserError):
    """The chosen launcher cannot run here (no SLURM, no submitit); the message says what to do."""


def threads_per_run(jobs: int) -> int:
    """Threads for each of ``jobs`` processes sharing this machine's cores (at least 1)."""
    return max(1, usable_cores() // jobs)


# -- here ------------------------------------------------------------------------------------
def run_local(
    specs: Sequence[RunSpec], jobs: int, execute: Execute, on_result: OnResult, progress: Progress
) -> int | None:
    """Run ``specs`` ``jobs`` at a time; return the signal that stopped them early, or None.

    ``on_result`` gets each run as it ends (the caller rewrites the report). A first Ctrl-C or
    SIGTERM starts no further run and passes SIGTERM to the running processes, which stop at
    their next step boundary with a checkpoint; this waits for them.
    """
    control = RunControl()
    note = "the running runs save a checkpoint. Rerun the same command to resume them."
    queue = list(specs)
    futures: dict[Future, RunSpec] = {}
    with (
        stop_on_signals(control, progress.note, note) as stopped,
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="compare") as pool,
    ):
        while queue or futures:
            done, _ = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
            ended = [(futures.pop(future), future.result()) for future in done]
            # Counted as ended before the next runs start: with --jobs 1 the next run's
            # "starting" line said "2 running".
            for spec, result in ended:
                progress.finished(spec, result)
            if control.stop.is_set():
                queue.clear()
            # Start the next runs before the report is rewritten (its plots take seconds).
            while queue and len(futures) < jobs:
                spec = queue.pop(0)
                progress.started(spec)
                future = pool.submit(execute, spec, progress.on_event(spec), control)
                futures[future] = spec
            for _, result in ended:
                on_result(result)
            progress.tick()
    return stopped[0] if stopped else None


@contextlib.contextmanager
def stop_on_signals(
    control: RunControl, say: Callable[[str], None], what: str
) -> Iterator[list[int]]:
    """While inside, a first Ctrl-C or SIGTERM sets ``control.stop`` and passes SIGTERM on to
    the processes running (``control.running``), which stop at their next step boundary (a run
    with a checkpoint); ``say`` gets the signal's name and ``what`` happens then. Yields the
    signals received (empty: none)."""
    stopped: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        if not stopped:
            say(f"{signal.Signals(signum).name}: stopping; {what}")
            control.stop.set()
            with control.lock:  # a `kill <pid>` reaches this process only
                for child in control.running:
                    with suppress(ProcessLookupError):
                        child.send_signal(signal.SIGTERM)  # a repeat is ignored by the run
        stopped.append(signum)

    previous = _install(on_signal)
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _install(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


# -- through submitit --------------------------------------------------------------------------
@dataclasses.dataclass
class SlurmOptions:
    """``--slurm.*``: passed to submitit's ``SlurmExecutor.update_parameters``.

    Example:
        >>> SlurmOptions(partition="gpu", gpus_per_task=1, time="2:00:00").parameters("cmp")
        ... # doctest: +NORMALIZE_WHITESPACE
        {'job_name': 'lit-seqcls-cmp', 'ntasks_per_node': 1,
         'additional_parameters': {'signal': 'USR1@90'}, 'partition': 'gpu',
         'gpus_per_task': 1, 'time': 120}

    submitit asks SLURM for SIGUSR2 before the time limit (its default since 1.5); Lightning
    requeues on SIGUSR1, and a ``fit`` process would die of a SIGUSR2 it does not handle, so
    the script asks for SIGUSR1 (``--slurm.additional '{"signal": ...}'`` overrides it).
    """

    partition: str | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    time: str | None = None  # minutes, or SLURM's [days-]hours:minutes:seconds
    mem: str | None = None  # e.g. 16G
    account: str | None = None
    array_parallelism: int | None = None
    additional: dict[str, Any] | None = None  # further sbatch options, e.g. {"qos": "high"}

    def parameters(self, name: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "job_name": f"lit-seqcls-{name}",
            "ntasks_per_node": 1,
            "additional_parameters": {
                "signal": f"USR1@{REQUEUE_WARNING_S}",
                **(self.additional or {}),
            },
        }
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and field.name != "additional":
                params[field.name] = slurm_minutes(value) if field.name == "time" else value
        return params


def slurm_minutes(value: str | int) -> int:
    """SLURM's time formats in whole minutes (submitit's ``time`` is minutes).

    Example:
        >>> [slurm_minutes(v) for v in ("90", "2:00:00", "1-00:00:00", "1-2", "10:30", 45)]
        [90, 120, 1440, 1560, 11, 45]
    """
    text = str(value).strip()
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(p) for p in rest.split(":")]
        day = int(days) if days else 0
    except ValueError:
        raise LauncherError(
            f"--slurm.time {value!r}: give minutes (90) or [days-]hours:minutes:seconds "
            "(2:00:00, 1-00:00:00)."
        ) from None
    if days:  # days-hours[:minutes[:seconds]]
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:  # minutes:seconds
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return day * 1440 + hours * 60 + minutes + (1 if seconds else 0)


class _Task:
    """What a submitit job runs: ``execute(spec)``, with SIGUSR1 left to Lightning under SLURM.

    SLURM sends SIGUSR1 to this process too, whose default action would end it (and, through
    ``run_process``'s clean-up, stop the ``fit`` that is saving); the handler only says who acts.
    """

    def __init__(self, execute: Execute) -> None:
        self.execute = execute

    def __call__(self, spec: RunSpec) -> RunResult:
        if _is_slurm_task() and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, _leave_to_lightning)
        return self.execute(spec)


def _is_slurm_task() -> bool:
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm"


def _leave_to_lightning(signum: int, frame: Any) -> None:
    print(
        "lit-seqcls compare: SIGUSR1 left to the run's fit process (Lightning saves "
        "hpc_ckpt_N.ckpt and requeues this task; it resumes with --ckpt_path auto).",
        file=sys.stderr,
        flush=True,
    )


def submit(
    specs: Sequence[RunSpec],
    kind: str,
    folder: Path,
    execute: Execute,
    slurm: SlurmOptions,
    name: str,
    jobs: int = 1,
) -> dict[str, Any]:
    """Submit ``specs`` through submitit; return ``{run name: job}``.

    ``slurm``: one job array (``map_array``), at most ``slurm.array_parallelism`` tasks at a
    time. ``submitit-local``: ``jobs`` at a time, each submitted when one ends (submitit's
    local executor starts every job at once), so this call returns when all have ended.
    """
    executor = _executor(kind, folder, slurm, name)
    task = _Task(execute)
    if kind == "slurm":
        submitted = executor.map_array(task, list(specs))
        by_run = dict(zip((s.name for s in specs), submitted, strict=True))
        _save_jobs(folder, {run: job.job_id for run, job in by_run.items()})
        return by_run
    by_run, queue, running = {}, list(specs), []
    while queue or running:
        while queue and len(running) < jobs:
            spec = queue.pop(0)
            by_run[spec.name] = job = executor.submit(task, spec)
            running.append(job)
        time.sleep(POLL_S / 4)
        running = [job for job in running if not job.done()]
    return by_run


def _executor(kind: str, folder: Path, slurm: SlurmOptions, name: str) -> Any:
    try:
        import submitit
    except ImportError:
        raise LauncherError(
            f"--launcher {kind} needs submitit: pip install 'lit-seqcls[slurm]' "
            "(or pip install submitit)."
        ) from None
    if kind == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        minutes = slurm_minutes(slurm.time) if slurm.time else 24 * 60
        executor.update_parameters(timeout_min=minutes)
        return executor
    try:
        executor = submitit.SlurmExecutor(folder=folder)
    except RuntimeError as err:  # "Could not detect srun"
        raise LauncherError(
            f"--launcher slurm: {err} Submit from a machine with SLURM's commands (a login "
            "node), or use --launcher local."
        ) from None
    try:
        executor.update_parameters(**slurm.parameters(name))
    except ValueError as err:
        raise LauncherError(f"--slurm.* options: {err}") from None
    return executor


def _save_jobs(folder: Path, jobs: dict[str, str]) -> None:
    known = read_json(folder / JOBS_FILE) or {}
    write_json(folder / JOBS_FILE, {**known, **jobs})


def submitted_jobs(folder: Path) -> dict[str, str]:
    """``{run name: SLURM job id}`` of every run this comparison submitted (newest id)."""
    return read_json(folder / JOBS_FILE) or {}


def job_state(folder: Path, job_id: str) -> str:
    """The job's SLURM state through submitit (``sacct``); ``UNKNOWN`` when it cannot tell."""
    try:
        import submitit

        return submitit.SlurmJob(folder=folder, job_id=job_id).state
    except Exception:  # no sacct, no submitit, accounting off: say so, never fail the report
        return "UNKNOWN"


def describe_jobs(jobs: dict[str, Any]) -> str:
    """``12345 (tasks 0-3)`` for the ids of one array; the ids themselves otherwise."""
    ids = sorted({str(getattr(j, "job_id", j)).split("_")[0] for j in jobs.values()})
    if len(ids) == 1 and all("_" in str(getattr(j, "job_id", j)) for j in jobs.values()):
        return f"{ids[0]} (tasks 0-{len(jobs) - 1})"
    return ", ".join(ids)


__all__ = [
    "LAUNCHERS",
    "LauncherError",
    "SlurmOptions",
    "job_state",
    "run_local",
    "stop_on_signals",
    "submit",
    "submitted_jobs",
    "threads_per_run",
]
