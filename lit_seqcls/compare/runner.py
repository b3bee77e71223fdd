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

Resumable: a run is recorded (``runs/<run>/result.json``, see ``lit_seqcls.compare.runs``) when
its ``fit`` and ``test`` have finished, and the tables are rewritten after every run. Rerunning
the same command reuses every finished run and continues the others, ``fit`` from the newest
checkpoint of its folder (``--ckpt_path auto``: exactly where it stopped); ``--fresh`` starts
over. A run folder started by another command (other configs or overrides) is refused, naming
``--fresh``, never resumed. Where runs run (``--launcher``: here ``--jobs`` at a time, or a
SLURM job array through submitit) is ``lit_seqcls.compare.launchers``; every launcher calls
``execute_run`` once per run.

With a W&B logger in the configs, every run joins the W&B group ``--name`` (through W&B's own
``WANDB_RUN_GROUP``/``WANDB_NAME`` environment variables), so W&B shows them side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import inspect
import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lit_seqcls.compare import execution
from lit_seqcls.compare.execution import execute_run
from lit_seqcls.compare.launchers import (
    ACTIVE_STATES,
    LAUNCHERS,
    SlurmOptions,
    describe_jobs,
    job_state,
    run_local,
    stop_on_signals,
    submit,
    submitted_jobs,
    threads_per_run,
)
from lit_seqcls.compare.progress import Progress
from lit_seqcls.compare.reference import add_reference_argument, reference_row
from lit_seqcls.compare.report import write_report
from lit_seqcls.compare.results import RunResult
from lit_seqcls.compare.runs import (
    COMMAND_FILE,
    RECORD_FILE,
    RunControl,
    RunSpec,
    command_difference,
    read_json,
    read_record,
    run_name,
    same_command,
    stored_command,
)
from lit_seqcls.compare.tuning import TUNING_DIR, tune_all
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.errors import UserError, user_error_in
from lit_seqcls.plugins import build_datamodule, data_arguments
from lit_seqcls.runtime.outputs import check_output_dir
from lit_seqcls.shipped_configs import PREFIX, shipped_config, shipped_names, shipped_root
from lit_seqcls.text.vectors import how_to_make
from lit_seqcls.trust import check_untrusted, read_config_file

ENCODER_ARG = "--model.encoder.init_args."
SUBMITIT_DIR = "submitit"  # submitit's scripts, pickles and task logs, in the output folder
LOCK_FILE = ".compare.lock"


class CompareError(RuntimeError, UserError):
    """The comparison cannot go on as asked; the message says why and what to do."""


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
    with _one_comparison_at_a_time(output_dir):
        specs = _plan(options, passthrough, output_dir)
        if not options.collect:  # before any run, tuning's trials included
            _check_inputs(specs if options.fresh else _unfinished(specs))
        specs += _tuned_runs(options, specs, output_dir)  # --tune N
        if options.fresh:
            _remove_runs(specs)
        report = _Report(specs, output_dir, options.name, _command_line(argv))
        todo = _assess(specs, report, retry_failed=not options.collect)
        if options.collect:
            _collect(todo, report, output_dir / SUBMITIT_DIR)
        elif options.launcher == "local":
            _run_here(specs, todo, options.jobs, report)
        else:
            _submit(todo, options, report, output_dir / SUBMITIT_DIR)
        row = reference_row(options.reference, list(report.results.values()), output_dir)
        if row is not None:  # the linear reference row (compare/reference.py)
            report.results[row.encoder] = row
        written = report.write()
    print(f"\nCompared {len(options.encoders)} encoder(s) × {len(options.seeds)} seed(s):")
    markdown = (output_dir / "comparison.md").read_text(encoding="utf-8")
    print("\n".join(line for line in markdown.splitlines() if line.startswith("|")))
    print("Wrote " + ", ".join(str(p) for p in written))


def _plan(options: argparse.Namespace, overrides: list[str], output_dir: Path) -> list[RunSpec]:
    """One ``RunSpec`` per encoder × seed, in the order they run and appear in the tables."""
    # A SLURM task uses the cores of its allocation; here the cores are shared by --jobs runs.
    threads = None if options.launcher == "slurm" else threads_per_run(options.jobs)
    # Files by their resolved paths, so a run's command records (and a rerun checks) their content.
    configs = tuple(
        str(shipped_config(c)) if c.startswith(PREFIX) else str(Path(c).resolve())
        if Path(c).is_file() else c
        for c in options.config
    )  # fmt: skip
    experiments = experiment_configs(configs, options.encoders) if options.experiments else {}
    return [
        RunSpec(
            encoder=encoder,
            seed=seed,
            configs=(*configs, *model_config(encoder), *experiments.get(encoder, ())),
            overrides=tuple(_for_encoder(overrides, encoder)),
            run_dir=str(output_dir / "runs" / run_name(encoder, seed)),
            group=options.name,
            threads=threads,
            program=tuple(execution.PROGRAM),
        )
        for encoder in options.encoders
        for seed in options.seeds
    ]


def model_config(encoder: str) -> list[str]:
    """The encoder's shipped model config (``model/<encoder>.yaml``), as ``fit`` is documented
    to take it: a comparison runs each encoder with the settings a user gets from README.

    Example:
        >>> model_config("swem")[0].endswith("configs/model/swem.yaml")
        True
    """
    name = f"model/{encoder}.yaml"
    return [str(shipped_config(name))] if name in shipped_names() else []


def experiment_configs(configs: tuple[str, ...], encoders: list[str]) -> dict[str, list[str]]:
    """Each encoder's shipped settings (files) for the shipped datasets among ``configs``.

    A shipped data config ``data/<dataset>.yaml`` (named ``lit_seqcls:data/imdb.yaml``, or as a
    file of the checkout's ``configs/``) brings ``experiment/<dataset>/<encoder>.yaml`` for each
    encoder that has one: what that encoder needs on that data (README, "Real data", says how
    each was found). A user's own data config brings none.

    Example:
        >>> experiment_configs(("my_data.yaml",), ["rnn"])  # a user's own data: nothing
        {}
    """
    root, names, found = shipped_root().resolve(), set(shipped_names()), {}
    for config in configs:
        if config.startswith(PREFIX):
            name = config.removeprefix(PREFIX)
        elif Path(config).resolve().is_relative_to(root):
            name = Path(config).resolve().relative_to(root).as_posix()
        else:
            continue
        group, _, dataset = name.removesuffix(".yaml").partition("/")
        if group != "data":
            continue
        for encoder in encoders:
            experiment = f"experiment/{dataset}/{encoder}.yaml"
            if experiment in names:
                found.setdefault(encoder, []).append(str(shipped_config(experiment)))
    return found


def _tuned_runs(
    options: argparse.Namespace, specs: list[RunSpec], output_dir: Path
) -> list[RunSpec]:
    """``--tune N``: each encoder's N trials here, first (``tuning.tune_all``: ``fit`` only, on
    the validation split, ``--jobs`` trials at a time), then its runs again with the best
    trial's settings, rows of their own. A signal stops the trials; a rerun continues."""
    if not options.tune:
        return []
    firsts = [next(s for s in specs if s.encoder == encoder) for encoder in options.encoders]
    configs = {s.encoder: output_dir / TUNING_DIR / f"{s.encoder}.yaml" for s in firsts}
    if not options.collect:  # --collect starts nothing
        control = RunControl()
        what = "the running trials end uncounted. Rerun the same command to continue tuning."
        with stop_on_signals(control, print, what) as stopped:
            tuned = tune_all(
                firsts, options.tune, output_dir, fresh=options.fresh, jobs=options.jobs,
                control=control,
            )  # fmt: skip
        if stopped:
            raise SystemExit(128 + stopped[0])
        configs = {encoder: t.config for encoder, t in tuned.items()}
    tuned_specs = []
    for spec in specs:
        config = configs[spec.encoder]
        if config is None or not config.is_file():
            continue  # no trial finished (tuning said why): the shipped runs still run
        tuned_specs.append(
            dataclasses.replace(
                spec,
                configs=(*spec.configs, str(config)),
                variant="tuned",
                run_dir=str(output_dir / "runs" / run_name(f"{spec.encoder}-tuned", spec.seed)),
            )
        )
    return tuned_specs


class _Report:
    """The runs of this comparison as they stand; ``write`` rewrites the tables and plots."""

    def __init__(self, specs: list[RunSpec], output_dir: Path, title: str, command: str) -> None:
        self.output_dir, self.title, self.command = output_dir, title, command
        self.results = {
            s.name: RunResult(s.label, s.seed, run_dir=s.run_dir, status="not run yet")
            for s in specs
        }

    def add(self, result: RunResult) -> None:
        """Merge one run and rewrite the report (after every run: always current)."""
        self.results[run_name(result.encoder, result.seed)] = result
        self.write()

    def set_status(self, name: str, status: str) -> None:
        self.results[name].status = status

    def finished(self) -> int:
        return sum(r.status == "ok" for r in self.results.values())

    def write(self) -> list[Path]:
        return write_report(list(self.results.values()), self.output_dir, self.title, self.command)


def _assess(specs: list[RunSpec], report: _Report, retry_failed: bool) -> list[RunSpec]:
    """Merge the finished runs into ``report``; return the runs still to do.

    Raises ``CompareError`` (naming ``--fresh``) when a run folder holds a run of another
    command: resuming it would mix two experiments, and deleting it is the user's call.
    """
    todo, conflicts = [], []
    for spec in specs:
        run_dir = Path(spec.run_dir)
        record = read_json(run_dir / RECORD_FILE)
        stored = (record or {}).get("command") or stored_command(run_dir)
        if stored is None and run_dir.is_dir() and any(run_dir.iterdir()):
            conflicts.append(f"  {spec.name}: started by an earlier lit-seqcls (no {COMMAND_FILE})")
        elif stored is not None and not same_command(stored, spec.command()):
            conflicts.append(f"  {spec.name}: {command_difference(stored, spec.command())}")
        elif record is not None and (not retry_failed or _status(record) == "ok"):
            report.results[spec.name] = read_record(run_dir) or report.results[spec.name]
            if report.results[spec.name].status != "ok":
                todo.append(spec)  # --collect: shown as it failed, not run again
        else:
            todo.append(spec)
    if conflicts:
        raise CompareError(
            f"{report.output_dir} holds runs of another command, which this one will not "
            "resume or reuse:\n" + "\n".join(conflicts) + "\nRerun with --fresh to start "
            "these runs over (it deletes this comparison's runs/<encoder>-seed<seed>/ folders), "
            "or write to a new --output_dir."
        )
    return todo


def _check_inputs(specs: list[RunSpec]) -> None:
    """Before any run starts: each encoder's DataModule builds from its runs' configs and
    ``--data`` arguments, and every file it would read exists. A missing word-vectors file, a
    misspelt data file or a refused data setting stops the comparison here, once, instead of
    failing each of those runs when its turn comes (hours later, or on a cluster node)."""
    from jsonargparse import ArgumentError

    checked = set()
    for spec in specs:
        data_args = tuple(data_arguments(spec.overrides))
        if (spec.configs, data_args) in checked:
            continue
        checked.add((spec.configs, data_args))
        sections = [(read_config_file(c) or {}).get("data") for c in spec.configs]
        if not any(sections) and not data_args:
            raise CompareError(
                "No data to compare on: give a data config (--config configs/data/imdb.yaml, or "
                "configs/data/synthetic.yaml to try it offline) or --data arguments, as for fit."
            )
        try:
            dm = build_datamodule(sections, data_args)
        except (ArgumentError, ValueError, UserError) as err:  # jsonargparse wraps in ValueError
            raise CompareError(
                f"The data settings of the {spec.encoder} runs are refused: "
                f"{user_error_in(err) or err}\nNothing was started."
            ) from err
        missing = [str(p) for p in getattr(dm, "input_files", list)() if not p.exists()]
        if missing:
            vectors = getattr(dm, "vectors", None)
            hint = (
                f" It is a word vectors file: {how_to_make(vectors)}."
                if vectors and str(Path(vectors).expanduser()) in missing
                else ""
            )
            raise CompareError(
                f"The {spec.encoder} runs read {', '.join(missing)}, which does not exist "
                f"(a relative path is read from {Path.cwd()}).{hint} Nothing was started: "
                f"create it, correct the path, or leave {spec.encoder} out (--encoders)."
            )


def _unfinished(specs: list[RunSpec]) -> list[RunSpec]:
    """The runs of ``specs`` without a finished record (a rerun reuses the others)."""
    return [s for s in specs if _status(read_json(Path(s.run_dir) / RECORD_FILE) or {}) != "ok"]


def _status(record: dict[str, Any]) -> str | None:
    return (record.get("result") or {}).get("status")


def _remove_runs(specs: list[RunSpec]) -> None:
    """``--fresh``: delete the run folders of this comparison's runs (nothing else)."""
    for spec in specs:
        shutil.rmtree(spec.run_dir, ignore_errors=True)


@contextlib.contextmanager
def _one_comparison_at_a_time(output_dir: Path) -> Iterator[None]:
    """Two ``compare`` processes in one folder would train the same runs twice."""
    with (output_dir / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompareError(
                f"Another lit-seqcls compare is working in {output_dir}; wait for it to end, "
                "or write to another --output_dir."
            ) from None
        yield


def _run_here(specs: list[RunSpec], todo: list[RunSpec], jobs: int, report: _Report) -> None:
    """``--launcher local``: ``jobs`` runs at a time; a signal stops them, resumable."""
    reused = len(specs) - len(todo)
    if reused:
        print(f"{reused} of {len(specs)} runs already finished (their records are reused).")
    progress = Progress(specs, reused, jobs)
    stopped = run_local(todo, jobs, execute_run, report.add, progress)
    if stopped is not None:
        report.write()
        print(
            f"\nStopped by {signal.Signals(stopped).name}: {report.finished()} of {len(specs)} "
            "runs finished. Rerun the same command to finish the others (each resumes from its "
            "newest checkpoint).",
            flush=True,
        )
        raise SystemExit(128 + stopped)


def _submit(
    todo: list[RunSpec], options: argparse.Namespace, report: _Report, folder: Path
) -> None:
    """``--launcher slurm`` / ``submitit-local``: through submitit (``launchers.submit``)."""
    known = submitted_jobs(folder) if options.launcher == "slurm" else {}
    waiting = {}
    for spec in todo:
        job_id = known.get(spec.name)
        state = job_state(folder, job_id) if job_id else ""
        if state in ACTIVE_STATES:  # never two tasks in one run folder
            waiting[spec.name] = f"{state.lower()} as SLURM job {job_id}"
            report.set_status(spec.name, waiting[spec.name])
    to_submit = [spec for spec in todo if spec.name not in waiting]
    for name, status in waiting.items():
        print(f"{name}: {status} (not submitted again)")
    if not to_submit:
        return
    slurm = _slurm_options(options)
    jobs = submit(
        to_submit, options.launcher, folder, execute_run, slurm, options.name, options.jobs
    )
    if options.launcher == "submitit-local":  # ended: merge what the runs recorded
        for spec in to_submit:
            report.add(read_record(Path(spec.run_dir)) or _unrecorded(spec, jobs[spec.name]))
        return
    for spec in to_submit:
        report.set_status(spec.name, f"submitted as SLURM job {jobs[spec.name].job_id}")
    print(
        f"Submitted {len(to_submit)} runs as SLURM job array {describe_jobs(jobs)}; submitit's "
        f"scripts and task logs are in {folder}.\nWatch: squeue --me; each run's log: "
        f"{Path(to_submit[0].run_dir).parent}/<encoder>-seed<seed>/fit.log\nThen rerun the "
        "same command, or add --collect, to merge the runs that finished (nothing queued or "
        "running is submitted again)."
    )


def _unrecorded(spec: RunSpec, job: Any) -> RunResult:
    status = f"no result (submitit job {job.job_id}: see {job.paths.stderr})"
    return RunResult(spec.label, spec.seed, run_dir=spec.run_dir, status=status)


def _collect(todo: list[RunSpec], report: _Report, folder: Path) -> None:
    """``--collect``: say where each unfinished run stands; start nothing."""
    known = submitted_jobs(folder)
    for spec in todo:
        if report.results[spec.name].status not in ("not run yet",):
            continue  # a failed run, shown as it failed
        job_id = known.get(spec.name)
        if job_id:
            report.set_status(spec.name, f"SLURM job {job_id}: {job_state(folder, job_id)}")
        elif (Path(spec.run_dir) / COMMAND_FILE).is_file():
            report.set_status(spec.name, "unfinished (rerun without --collect to resume)")
    done = report.finished()
    print(f"Collected {done} finished run(s) of {len(report.results)}.")


def _is_comparison_dir(path: Path) -> bool:
    """Whether ``path`` holds an earlier comparison: its ``results.json``, or (cut short in its
    first run) ``runs/<encoder>-seed<seed>/fit.log`` or ``command.json``, or its lock file."""
    return (
        (path / "results.json").is_file()
        or (path / LOCK_FILE).is_file()
        or any(path.glob("runs/*-seed*/fit.log"))
        or any(path.glob(f"runs/*-seed*/{COMMAND_FILE}"))
        or any(path.glob(f"{TUNING_DIR}/*.db"))  # cut short while tuning
    )


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
        default=None,
        help="comparison name: W&B group and default output folder (default: the --config "
        "files' names, e.g. synthetic, so that the same command finds its earlier runs)",
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
    parser.add_argument(
        "--tune",
        type=int,
        default=0,
        metavar="N",
        help="first give every encoder the same N trials of hyper-parameter search on the "
        "validation split (Optuna; search spaces in lit_seqcls/configs/tune/), then run each "
        "seed with the best settings too: rows '<encoder> (tuned)' beside the shipped ones",
    )
    parser.add_argument(
        "--experiments",
        choices=["shipped", "none"],
        default="shipped",
        help="shipped: a shipped data config (e.g. configs/data/imdb.yaml) brings each encoder's "
        "settings for that dataset from lit_seqcls/configs/experiment/<dataset>/; none: every "
        "encoder runs its plain model config (default: shipped)",
    )
    _add_launch_arguments(parser)
    add_reference_argument(parser)
    options, passthrough = parser.parse_known_args(argv)
    stray = [a for a in passthrough if a.split("=")[0] in ("--model.encoder", "--seed_everything")]
    if stray:
        parser.error(f"{stray[0]}: compare sets it itself; use --encoders and --seeds")
    unknown = [a for a in passthrough if a.startswith("--slurm.")]
    if unknown:
        parser.error(f"{unknown[0].split('=')[0]}: not a --slurm.* option (see --help)")
    if options.jobs < 1:
        parser.error("--jobs: at least 1")
    if options.tune < 0 or (options.tune and options.launcher == "slurm"):
        parser.error(
            "--tune N: N >= 0, and trials run here (--jobs at a time): not with --launcher slurm"
        )
    if options.launcher == "slurm" and options.slurm_time is None and not options.collect:
        parser.error("--launcher slurm needs --slurm.time (submitit would ask for 5 minutes)")
    if options.fresh and options.collect:
        parser.error("--fresh deletes the runs that --collect would merge; give one of them")
    options.experiments = options.experiments == "shipped"
    if options.name is None:
        options.name = "-".join(Path(c).name.split(".")[0] for c in options.config) or "comparison"
    return options, passthrough


def _add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the runs run, and what a rerun does with the runs of an earlier one."""
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start every run over, deleting this comparison's run folders first (default: a "
        "rerun reuses the finished runs and resumes the others from their checkpoints)",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="start nothing: merge the runs that finished (e.g. SLURM tasks) into the tables "
        "and say where the others stand",
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="local: processes on this machine, --jobs at a time; slurm: one SLURM job array "
        "through submitit (returns once submitted); submitit-local: that path run here",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at once on this machine; each gets cores // jobs threads (default: 1)",
    )
    slurm = parser.add_argument_group("SLURM (--launcher slurm), passed to submitit")
    for name, kind, what in [
        ("partition", str, "partition"),
        ("account", str, "account to charge"),
        ("time", str, "time limit of each task: minutes, or [days-]hours:minutes:seconds"),
        ("gpus_per_task", int, "GPUs per run"),
        ("cpus_per_task", int, "CPU cores per run (its threads)"),
        ("mem", str, "memory per run, e.g. 16G"),
        ("array_parallelism", int, "most tasks of the array running at once"),
        ("additional", _json_dict, 'further sbatch options as JSON, e.g. \'{"qos": "high"}\''),
    ]:
        slurm.add_argument(f"--slurm.{name}", dest=f"slurm_{name}", type=kind, help=what)


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a JSON object, e.g. \'{{"qos": "high"}}\''
        )
    return value


def _slurm_options(options: argparse.Namespace) -> SlurmOptions:
    prefix = "slurm_"
    given = {k[len(prefix) :]: v for k, v in vars(options).items() if k.startswith(prefix)}
    return SlurmOptions(**given)
