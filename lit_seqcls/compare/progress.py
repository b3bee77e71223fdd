"""The progress of ``lit-seqcls compare``: one line for the whole comparison.

The runs' own output goes to their log files (``runs/<run>/fit.log``); the terminal gets, at
every event (a run starts, ends, finishes an epoch), how many runs are done, running and left,
the time elapsed and an estimate of the time left. On a terminal the line is rewritten in place
and each run that ends leaves a line of its own; in a log file every event is a line.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from lit_seqcls.compare.results import RunResult
from lit_seqcls.compare.runs import RunSpec


@dataclasses.dataclass
class _Running:
    index: int
    label: str
    started: float
    epoch: int = 0
    max_epochs: int = 0
    note: str = "starting"


class Progress:
    """One line for the whole comparison: runs done / running / left, elapsed and an estimate.

    Each event prints the line (on a terminal it is rewritten in place, and a run that ends
    leaves a line of its own); the runs' own output goes to their log files.
    """

    def __init__(
        self, plan: Sequence[RunSpec], done: int, jobs: int, stream: TextIO | None = None
    ) -> None:
        self.total, self.done, self.jobs = len(plan), done, jobs
        self.index = {spec.name: i for i, spec in enumerate(plan, start=1)}
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.durations: list[float] = []
        self.running: dict[str, _Running] = {}
        self.lock = threading.Lock()

    def started(self, spec: RunSpec) -> None:
        with self.lock:
            label = f"{spec.label} (seed {spec.seed})"
            run = _Running(self.index.get(spec.name, 0), label, time.monotonic())
            self.running[spec.name] = run
            self._show(f"{self._tag(run)}: starting", permanent=False)

    def on_event(self, spec: RunSpec) -> Callable[[dict[str, Any]], None]:
        def event(event: dict[str, Any]) -> None:
            if event.get("event") != "epoch":
                return
            with self.lock:
                run = self.running.get(spec.name)
                if run is None:
                    return
                run.epoch, run.max_epochs = event["epoch"], event.get("max_epochs") or 0
                acc = f", val/acc {event['val/acc']:.3f}" if "val/acc" in event else ""
                run.note = f"epoch {run.epoch}/{run.max_epochs or '?'}{acc}"
                self._show(f"{self._tag(run)}: {run.note}", permanent=False)

        return event

    def finished(self, spec: RunSpec, result: RunResult) -> None:
        with self.lock:
            run = self.running.pop(spec.name, None)
            if run is None:
                return
            if not result.status.startswith("interrupted"):
                self.done += 1
                self.durations.append(time.monotonic() - run.started)
            self._show(f"{self._tag(run)}: {result.summary()}", permanent=True)

    def note(self, message: str) -> None:
        with self.lock:
            self._show(message, permanent=True)

    def tick(self) -> None:
        if self.tty:
            with self.lock:
                self._show("", permanent=False)

    def status(self) -> str:
        left = self.total - self.done - len(self.running)
        line = f"{self.done}/{self.total} done, {len(self.running)} running, {left} left"
        line += f"; elapsed {_duration(time.monotonic() - self.start)}"
        estimate = self._seconds_left(left)
        return line + (f", ~{_duration(estimate)} left" if estimate is not None else "")

    def _tag(self, run: _Running) -> str:
        return f"[{run.index}/{self.total}] {run.label}"

    def _show(self, message: str, permanent: bool) -> None:
        status = self.status()
        if not self.tty:
            if message:
                self.stream.write(f"{message} ({status})\n")
        else:
            text = "\r\033[K" + (f"{message}\n" if permanent and message else "")
            current = "; ".join(f"{r.label} {r.note}" for r in self.running.values())
            text += f"[compare] {status}" + (f" | {current}" if current else "")
            self.stream.write(text if not permanent or self.running else text + "\n")
        self.stream.flush()

    def _seconds_left(self, pending: int) -> float | None:
        now = time.monotonic()
        guesses = [
            (now - r.started) * r.max_epochs / r.epoch
            for r in self.running.values()
            if r.epoch and r.max_epochs
        ]
        typical = statistics.fmean(self.durations or guesses) if self.durations or guesses else 0
        if not typical:
            return None
        work = pending * typical
        for r in self.running.values():
            own = (now - r.started) * r.max_epochs / r.epoch if r.epoch and r.max_epochs else None
            work += max((own or typical) - (now - r.started), 0.0)
        return work / max(1, min(self.jobs, len(self.running) + pending))


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
