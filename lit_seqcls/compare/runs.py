"""One run of ``lit-seqcls compare`` on disk: what it is, what it was started with, what it gave.

A run folder ``runs/<encoder>-seed<seed>/`` holds, besides Lightning's logs and checkpoints:

- ``command.json``: the run's command (encoder, seed, the content of every ``--config`` file,
  the overrides it gets), written before its first process starts, so that a rerun can tell
  an interrupted run of the same command (resume it) from one of another command (refuse);
- ``launches.jsonl``: one line per ``fit``/``test`` process started, with its wall time, exit
  status and peak memory (an interrupted run has several; they add up to its cost);
- ``fit.json``: the reporter's training summary, once ``fit`` has finished (a rerun then only
  tests);
- ``result.json``: the finished run (a ``RunResult``), written atomically as its last step. A
  rerun reuses a run whose record holds ``status: ok`` and the same command.

A finished run needs only ``command.json``, ``result.json``, ``test_predictions.jsonl``
(``lit_seqcls.compare.predictions``) and, for the reference row's data settings, Lightning's
``config.yaml``: copied into another comparison folder, on another machine too, they are reused
as they are (``read_record`` takes the run's folder and predictions file from where it reads
them, not from the paths recorded). Checkpoints are only for resuming an unfinished run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

from lit_seqcls.compare.predictions import PREDICTIONS_FILE
from lit_seqcls.compare.results import RunResult
from lit_seqcls.runtime.atomic import atomic_write

COMMAND_FILE = "command.json"
LAUNCHES_FILE = "launches.jsonl"
FIT_DONE_FILE = "fit.json"
RECORD_FILE = "result.json"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, as plain data (pickled into a SLURM task by submitit).

    Args:
        encoder: a name from ``ENCODERS``.
        seed: ``--seed_everything``.
        configs: ``--config`` files for ``fit``.
        overrides: the ``fit`` arguments this encoder gets (``_for_encoder`` already applied).
        run_dir: the run's folder and ``trainer.default_root_dir``.
        group: W&B group (the comparison's name).
        threads: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of its processes; ``None``: every
            core this process may use (a SLURM task has its ``cpus_per_task``).
        program: how a ``lit-seqcls`` process is started (tests put a stand-in here).
        variant: ``""``, or ``"tuned"`` for a run with ``compare --tune``'s settings (in
            ``configs``): the tables give it a row of its own, ``<encoder> (tuned)``.
    """

    encoder: str
    seed: int
    configs: tuple[str, ...]
    overrides: tuple[str, ...]
    run_dir: str
    group: str = "comparison"
    threads: int | None = None
    program: tuple[str, ...] = ()
    variant: str = ""

    @property
    def label(self) -> str:
        """The encoder as the tables name this run's row: ``cnn``, or ``cnn (tuned)``."""
        return f"{self.encoder} ({self.variant})" if self.variant else self.encoder

    @property
    def name(self) -> str:
        return run_name(self.label, self.seed)

    def command(self) -> dict[str, Any]:
        """What decides the run's result: a rerun with a different one must not reuse it."""
        return {
            "encoder": self.encoder,
            "seed": self.seed,
            "configs": [_digest(path) for path in self.configs],
            "overrides": list(self.overrides),
        }


@dataclasses.dataclass
class RunControl:
    """Shared by the runs of one local comparison: a stop request and the processes running."""

    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    running: set[subprocess.Popen] = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def run_name(encoder: str, seed: int) -> str:
    return f"{encoder}-seed{seed}"


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``; None when missing or unreadable (a half-written file never is:
    every file here is written atomically)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON through a temporary file and a rename (never half a file)."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)


def read_record(run_dir: Path) -> RunResult | None:
    """The finished run in ``run_dir/result.json``, or None."""
    raw = read_json(run_dir / RECORD_FILE)
    if not isinstance(raw, dict) or "result" not in raw:
        return None
    fields = {f.name for f in dataclasses.fields(RunResult)}
    return relocated(RunResult(**{k: v for k, v in raw["result"].items() if k in fields}), run_dir)


def relocated(result: RunResult, run_dir: Path) -> RunResult:
    """``result`` as read from ``run_dir``: its folder, and its predictions file where that
    folder holds one. A record keeps the absolute paths of the machine that wrote it; a run
    folder copied elsewhere (a cluster's scratch to a laptop, a session's disk to a repository)
    then still pairs its own predictions, not a missing or stale file at the old path.
    """
    result.run_dir = str(run_dir)
    if (run_dir / PREDICTIONS_FILE).is_file():
        result.predictions = str(run_dir / PREDICTIONS_FILE)
    return result


def write_record(spec: RunSpec, result: RunResult) -> None:
    write_json(
        Path(spec.run_dir) / RECORD_FILE,
        {"command": spec.command(), "result": dataclasses.asdict(result)},
    )


def stored_command(run_dir: Path) -> dict[str, Any] | None:
    """The command ``run_dir`` was started with (None: never started)."""
    return read_json(run_dir / COMMAND_FILE)


def same_command(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether two ``RunSpec.command()`` give the same run (config files by content, not path)."""
    if old is None:
        return False

    def key(c: dict[str, Any]) -> tuple:
        shas = [config.get("sha256") for config in c.get("configs", [])]
        return c.get("encoder"), c.get("seed"), shas, c.get("overrides")

    return key(old) == key(new)


def command_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What changed between two ``RunSpec.command()``, in words.

    Example:
        >>> old = {"configs": [], "overrides": ["--trainer.max_epochs=2"]}
        >>> command_difference(old, {"configs": [], "overrides": ["--trainer.max_epochs=1"]})
        'overrides were `--trainer.max_epochs=2`, now `--trainer.max_epochs=1`'
    """
    parts = []
    if old.get("overrides") != new.get("overrides"):
        was, now = (" ".join(c.get("overrides") or []) or "none" for c in (old, new))
        parts.append(f"overrides were `{was}`, now `{now}`")
    if [c.get("sha256") for c in old.get("configs", [])] != [
        c.get("sha256") for c in new.get("configs", [])
    ]:
        names = [c["path"] for c in new.get("configs", [])]
        parts.append(f"the --config files ({', '.join(names) or 'none'}) differ in content")
    return "; ".join(parts) or "the command differs"


def record_launch(run_dir: Path, entry: dict[str, Any]) -> None:
    with (run_dir / LAUNCHES_FILE).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def launches(run_dir: Path) -> list[dict[str, Any]]:
    """Every process started for this run (``step``, ``seconds``, ``exit``, ``maxrss_kb``)."""
    path = run_dir / LAUNCHES_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def hardware(threads: int | None) -> dict[str, Any]:
    """The machine a run runs on: host, CPU model, usable cores and the threads per process.

    The GPU (name, peak memory) is added from the run's own process by the reporter.
    """
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "threads": threads or usable_cores(),
    }


def usable_cores() -> int:
    """Cores this process may run on (its affinity: a SLURM task's ``cpus_per_task``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _digest(path: str) -> dict[str, str]:
    try:
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        sha = "unreadable"
    return {"path": str(path), "sha256": sha}
