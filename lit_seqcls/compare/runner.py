"""``lit-seqcls compare``: train and test several encoders on the same data, then tabulate and plot.

Example::

    lit-seqcls compare --config configs/data/synthetic.yaml --seeds 0 1 2 --output_dir cmp
    lit-seqcls compare --config configs/data/imdb.yaml --encoders lstm cnn --trainer.max_epochs 3

Every ``--config`` file and every other ``--section.key value`` override is handed to each
``lit-seqcls fit`` unchanged (data and trainer settings, as for ``fit``); ``compare`` adds the
encoder (``--model.encoder``), the seed (``--seed_everything``), the run's log dir and the
``ComparisonReporter`` callback. Each encoder × seed runs as its own ``fit`` and ``test``
process, so one that crashes is reported in the table and the others still run.

The output directory gets ``comparison.md``, ``comparison.csv`` (one row per encoder, mean ± std
over seeds), ``runs.csv`` (one row per run), four PNGs (see ``lit_seqcls.compare.report``) and
``runs/<encoder>-seed<seed>/`` with each run's logs, checkpoints and ``fit.log``/``test.log``.
An existing output directory is used only if it is empty or holds an earlier comparison (then
its files are updated); one holding other files is refused unless ``--overwrite`` is given.

With a W&B logger in the configs, every run joins the W&B group ``--name`` (through W&B's own
``WANDB_RUN_GROUP``/``WANDB_NAME`` environment variables), so W&B shows them side by side.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_seqcls.compare.report import write_report
from lit_seqcls.compare.reporter import EVENT_PREFIX, FIT_FILE, TEST_FILE
from lit_seqcls.compare.results import RunResult
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.runtime.outputs import check_output_dir
from lit_seqcls.trust import check_untrusted, read_config_file

ENCODER_ARG = "--model.encoder.init_args."
REPORTER = "lit_seqcls.compare.ComparisonReporter"
LOG_TAIL = 2000  # characters of a failed run's log shown in the terminal


def main(argv: list[str]) -> None:
    """Run the comparison described by ``argv`` (the arguments after ``compare``)."""
    options, passthrough = _parse(argv)
    for config in options.config:  # refused here once, not in every run's log
        check_untrusted(read_config_file(config), f"config {config}")
    output_dir = Path(options.output_dir or Path("comparisons") / options.name).resolve()
    # Before any run: never write into a folder of the user's (a rerun updates its own folder).
    check_output_dir(
        output_dir,
        overwrite=options.overwrite,
        looks_like_ours=_is_comparison_dir,
        option="--output_dir",
        overwrite_option="--overwrite",
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = [(encoder, seed) for encoder in options.encoders for seed in options.seeds]
    progress = _Progress(len(plan))
    results = []
    for i, (encoder, seed) in enumerate(plan, start=1):
        progress.start_run(i, encoder, seed)
        result = run_one(
            encoder,
            seed,
            options.config,
            passthrough,
            output_dir / "runs" / f"{encoder}-seed{seed}",
            group=options.name,
            progress=progress,
        )
        progress.end_run(result)
        results.append(result)
        # After every run, so a long comparison can be looked at (or cut short) on the way.
        written = write_report(results, output_dir, options.name, _command_line(argv))
    print(f"\nCompared {len(options.encoders)} encoder(s) × {len(options.seeds)} seed(s):")
    markdown = (output_dir / "comparison.md").read_text(encoding="utf-8")
    print("\n".join(line for line in markdown.splitlines() if line.startswith("|")))
    print("Wrote " + ", ".join(str(p) for p in written))


def _is_comparison_dir(path: Path) -> bool:
    """Whether ``path`` holds an earlier comparison: its ``results.json``, or (cut short in its
    first run) ``runs/<encoder>-seed<seed>/fit.log``."""
    return (path / "results.json").is_file() or any(path.glob("runs/*-seed*/fit.log"))


def run_one(
    encoder: str,
    seed: int,
    configs: list[str],
    overrides: list[str],
    run_dir: Path,
    group: str = "comparison",
    progress: _Progress | None = None,
) -> RunResult:
    """``fit`` then ``test`` one encoder with one seed in child processes; never raises on failure.

    Args:
        encoder: a name from ``ENCODERS``.
        seed: passed as ``--seed_everything``.
        configs: ``--config`` files for ``fit`` (data, trainer, logger).
        overrides: further ``fit`` arguments, applied after the encoder is set. An encoder
            argument (``--model.encoder.init_args.hidden_size=64``) goes only to the encoders
            that take it, so one command can size the recurrent encoders and the CNN.
        run_dir: the run's ``trainer.default_root_dir``; logs go to ``run_dir/*.log``.
        group: W&B group of the run (used only when the configs add a W&B logger).
        progress: where epoch events go; ``None`` prints nothing.
    """
    result = RunResult(encoder=encoder, seed=seed, run_dir=str(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        # Read by wandb.init when a W&B logger is configured; ignored otherwise.
        "WANDB_RUN_GROUP": group,
        "WANDB_NAME": f"{encoder}-seed{seed}",
    }
    fit_args = [
        "fit",
        *_config_args(configs),
        # `.class_path`: a bare `--model.encoder=X` is read as an encoder *name* (a string).
        f"--model.encoder.class_path={_class_path(encoder)}",
        "--trainer.enable_progress_bar=false",  # progress comes from the reporter's events
        "--trainer.enable_model_summary=false",
        *_for_encoder(overrides, encoder),
        f"--seed_everything={seed}",
        f"--trainer.default_root_dir={run_dir}",
        f"--trainer.callbacks+={REPORTER}",
    ]
    code, files = _child(fit_args, run_dir / "fit.log", {**env, "WANDB_JOB_TYPE": "fit"}, progress)
    if code != 0 or FIT_FILE not in files:
        result.status = f"fit failed (exit {code}, see {run_dir.name}/fit.log)"
        _show_failure(run_dir / "fit.log")
        return result
    fit = json.loads(files[FIT_FILE].read_text(encoding="utf-8"))
    result.add_fit(fit)
    if not fit.get("best_model_path"):
        result.status = "no checkpoint to test (is checkpointing on?)"
        return result
    test_args = [
        "test",
        "--config",
        str(Path(fit["log_dir"]) / "config.yaml"),
        f"--ckpt_path={fit['best_model_path']}",
    ]
    code, files = _child(test_args, run_dir / "test.log", {**env, "WANDB_JOB_TYPE": "test"}, None)
    if code != 0 or TEST_FILE not in files:
        result.status = f"test failed (exit {code}, see {run_dir.name}/test.log)"
        _show_failure(run_dir / "test.log")
        return result
    result.add_test(json.loads(files[TEST_FILE].read_text(encoding="utf-8")))
    result.status = "ok"
    return result


def _child(
    args: list[str], log: Path, env: dict[str, str], progress: _Progress | None
) -> tuple[int, dict[str, Path]]:
    """Run ``lit-seqcls *args``, tee its output to ``log``, return (exit code, files it wrote)."""
    files: dict[str, Path] = {}
    command = [sys.executable, "-m", "lit_seqcls", *args]
    with log.open("w", encoding="utf-8", buffering=1) as out:  # line-buffered: tail -f works
        out.write(" ".join(command) + "\n\n")
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
        )
        assert child.stdout is not None
        try:
            for line in child.stdout:
                out.write(line)
                if not line.startswith(EVENT_PREFIX):
                    continue
                event = json.loads(line[len(EVENT_PREFIX) :])
                if event["event"] == "wrote":
                    files[event["file"]] = Path(event["path"])
                elif progress is not None:
                    progress.on_event(event)
        finally:  # Ctrl-C or an error here: do not leave the child training in the background
            if child.poll() is None:
                child.kill()
        code = child.wait()
    return code, files


def _for_encoder(overrides: list[str], encoder: str) -> list[str]:
    """``overrides`` without the ``--model.encoder.init_args.<name>`` that ``encoder`` lacks.

    Example:
        >>> args = ["--model.encoder.init_args.hidden_size", "64", "--trainer.max_epochs=2"]
        >>> _for_encoder(args, "cnn"), len(_for_encoder(args, "gru"))
        (['--trainer.max_epochs=2'], 3)
    """
    accepted = inspect.signature(ENCODERS[encoder]).parameters
    kept, skip_value = [], False
    for i, arg in enumerate(overrides):
        if skip_value:
            skip_value = False
            continue
        key = arg.split("=", 1)[0]
        if key.startswith(ENCODER_ARG) and key[len(ENCODER_ARG) :] not in accepted:
            # "--key value": the value is the next token, unless that is the next option.
            nxt = overrides[i + 1] if i + 1 < len(overrides) else "--"
            skip_value = "=" not in arg and not nxt.startswith("--")
            continue
        kept.append(arg)
    return kept


def _show_failure(log: Path) -> None:
    text = log.read_text(encoding="utf-8", errors="replace")
    print(f"  !! failed; last lines of {log}:\n{text[-LOG_TAIL:]}", file=sys.stderr, flush=True)


@dataclass
class _Progress:
    """Prints which run, which epoch, time elapsed and an estimate of the time left."""

    total: int
    start: float = field(default_factory=time.monotonic)
    durations: list[float] = field(default_factory=list)
    run: int = 0
    label: str = ""
    run_start: float = 0.0

    def start_run(self, i: int, encoder: str, seed: int) -> None:
        self.run, self.label, self.run_start = i, f"{encoder} (seed {seed})", time.monotonic()
        print(f"[{i}/{self.total}] {self.label}: starting{self._left(None)}", flush=True)

    def on_event(self, event: dict[str, Any]) -> None:
        if event["event"] != "epoch":
            return
        epoch, max_epochs = event["epoch"], event.get("max_epochs") or event["epoch"]
        # This run's remaining epochs at its own pace so far (an upper bound with early stopping).
        now = time.monotonic() - self.run_start
        this_run = now * max_epochs / epoch
        acc = f", val/acc {event['val/acc']:.3f}" if "val/acc" in event else ""
        print(
            f"[{self.run}/{self.total}] {self.label}: epoch {epoch}/{max_epochs}{acc}"
            f"{self._left(this_run)}",
            flush=True,
        )

    def end_run(self, result: RunResult) -> None:
        self.durations.append(time.monotonic() - self.run_start)
        print(f"[{self.run}/{self.total}] {self.label}: {result.summary()}", flush=True)

    def _left(self, this_run: float | None) -> str:
        elapsed = time.monotonic() - self.start
        per_run = this_run or (sum(self.durations) / len(self.durations) if self.durations else 0)
        if not per_run:
            return f" (elapsed {_duration(elapsed)})"
        current_left = max(per_run - (time.monotonic() - self.run_start), 0.0)
        later = self.total - self.run
        typical = sum(self.durations) / len(self.durations) if self.durations else per_run
        left = current_left + later * typical
        return f" (elapsed {_duration(elapsed)}, ~{_duration(left)} left)"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _class_path(encoder: str) -> str:
    cls = ENCODERS[encoder]
    return f"{cls.__module__}.{cls.__name__}"


def _config_args(configs: list[str]) -> list[str]:
    return [arg for path in configs for arg in ("--config", path)]


def _command_line(argv: list[str]) -> str:
    return " ".join(["lit-seqcls", "compare", *argv])


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="lit-seqcls compare",
        allow_abbrev=False,  # an abbreviation would swallow a fit override such as --con...
        description="Train and test several encoders on the same data; write a table and plots. "
        "Any other --section.key value (e.g. --trainer.max_epochs 3) is passed to each fit; "
        "--model.encoder.init_args.* only to the encoders that take that argument.",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="data/trainer config file, as for fit (repeatable)",
    )
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=list(ENCODERS),
        choices=list(ENCODERS),
        metavar="NAME",
        help=f"encoders to compare, from {', '.join(ENCODERS)} (default: all)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        metavar="SEED",
        help="one run per seed; several give mean ± std (default: 0)",
    )
    parser.add_argument(
        "--name",
        default=time.strftime("comparison-%Y%m%d-%H%M%S"),
        help="comparison name: W&B group and default output folder",
    )
    parser.add_argument(
        "--output_dir", default=None, help="where results go (default: comparisons/<name>)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an existing folder that holds other files (default: refuse; a folder "
        "of an earlier comparison is always updated)",
    )
    options, passthrough = parser.parse_known_args(argv)
    stray = [a for a in passthrough if a.split("=")[0] in ("--model.encoder", "--seed_everything")]
    if stray:
        parser.error(f"{stray[0]}: compare sets it itself; use --encoders and --seeds")
    return options, passthrough
