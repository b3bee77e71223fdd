"""``lit-seqcls compare --tune N``: every encoder gets the same N trials of hyper-parameter search.

Each trial is one ``lit-seqcls fit`` process, started by the runner's own child runner
(``execution.run_process``, as a run's ``fit``) with the run's command plus the settings Optuna's
TPE sampler (seeded) draws from the encoder's search space (``search_space``); the trial never
runs ``test``. Its ``val/acc`` arrives per epoch through the ``ComparisonReporter`` events, goes
to ``trial.report``, and a trial that Optuna's median pruner gives up on is stopped the way a
run is stopped (SIGTERM). A trial's score is its best ``val/acc`` (what the checkpoint that
``test`` reads would hold). So the test set decides nothing here; it gives only the final
scores of the runs trained afterwards with the chosen settings.

``--jobs N`` runs N trials at once, each in a thread of this process and its ``fit`` with a run's
share of the cores: the encoders' studies side by side (N of them at a time, each one trial
after another, so the trials are those of ``--jobs 1``), and with more jobs than encoders,
``N // encoders`` trials of each study at once. Where a study has trials running, TPE counts
them as scoring badly (``constant_liar``) so as not to draw the same settings twice; what it
draws then depends on which trial ends first.

In the comparison's folder::

    tuning/<encoder>.db            the Optuna study (SQLite): a rerun continues it
    tuning/<encoder>.yaml          the best trial's settings, a model config for --config
    tuning/<encoder>/trial-NNN/    each trial's fit.log, launches.jsonl and Lightning logs;
                                   its newest epoch's checkpoint only until the trial ends

Pruned and failed trials count towards N, so every encoder spends the same budget. A trial cut
short by an interrupted comparison (a signal, the end of an allocation, a killed process) does
not count, and the next run of the command resumes it: the same settings, in the same folder,
from its last checkpoint, with the scores of its earlier epochs reported to the pruner again
(``_resume_cut_trials``). Settings given on the command line
(``--model.dropout 0.2``) are kept and left out of the search. With a W&B logger in the configs,
trials join the comparison's W&B group (job type ``tune``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import textwrap
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lit_seqcls.compare import execution
from lit_seqcls.compare.execution import class_path, fit_args, run_env, run_process, stopped
from lit_seqcls.compare.reporter import VAL_TEXTS
from lit_seqcls.compare.runs import RunControl, RunSpec
from lit_seqcls.compare.search_space import Param, SearchSpaceError, load_space, space_file
from lit_seqcls.errors import UserError
from lit_seqcls.metrics import VAL_ACC

if TYPE_CHECKING:
    import optuna

TUNING_DIR = "tuning"
# After the user's overrides: one checkpoint, the newest epoch's (no monitor: the previous file
# is replaced every epoch), so that a trial cut short can resume; a trial's weights are never
# tested, so no best checkpoint is kept beside it, and no last.ckpt (the same epoch again).
TRIAL_ARGS = (
    "--checkpoint.monitor=null",
    "--checkpoint.save_top_k=1",
    "--checkpoint.save_last=false",
)
RESUMES = "resumes"  # user attribute of a trial that continues a cut-short one: that one's number
ORIGIN = "origin"  # user attribute: the number of the first trial of the chain, whose folder it is
PRUNE_FROM_EPOCH = 2  # one epoch is too noisy to give up on (README: BiLSTM val 0.862 → 0.992)


class TuningError(RuntimeError, UserError):
    """Tuning cannot start as asked (Optuna missing, a study made with other settings)."""


@dataclass
class Tuned:
    """What tuning one encoder gave: ``config`` is ``tuning/<encoder>.yaml``, or ``None`` when
    no trial finished (``status`` says why).

    Example:
        >>> Tuned("cnn", None, "tuning failed: none of 2 trials finished").config is None
        True
    """

    encoder: str
    config: Path | None
    status: str


def tune(
    encoder: str,
    trials: int,
    configs: Sequence[str],
    overrides: Sequence[str],
    output_dir: Path,
    *,
    seed: int = 0,
    group: str = "comparison",
    **options: Any,
) -> Tuned:
    """Tune one encoder: ``tune_all`` with the run ``encoder`` × ``seed`` of ``configs`` and
    ``overrides`` (already only the encoder arguments ``encoder`` takes)."""
    spec = RunSpec(encoder, seed, tuple(configs), tuple(overrides), run_dir="", group=group)
    return tune_all([spec], trials, output_dir, **options)[encoder]


def tune_all(
    specs: Sequence[RunSpec],
    trials: int,
    output_dir: Path,
    *,
    spaces: str | Path | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    fresh: bool = False,
    jobs: int = 1,
    control: RunControl | None = None,
) -> dict[str, Tuned]:
    """Run each encoder's study up to ``trials`` counted trials, ``jobs`` trials at a time; write
    each encoder's best settings as YAML.

    Args:
        specs: one run per encoder, as the comparison runs it: encoder, ``--config`` files,
            overrides, seed (``--seed_everything`` of every trial, and the sampler's seed), W&B
            group, threads and program.
        trials: the budget N, the same for every encoder.
        output_dir: the comparison's folder; everything goes under its ``tuning/``.
        spaces: folder of ``<encoder>.yaml`` search spaces (default: the shipped ones).
        pruner: Optuna pruner (default: median pruner from epoch ``PRUNE_FROM_EPOCH`` on).
        fresh: delete these encoders' studies, trials and configs first (``compare --fresh``).
        jobs: trials running at once, over all encoders.
        control: a stop request (a signal; the running trials are stopped and not counted) and
            where the running processes are registered.
    """
    optuna = _import_optuna()
    control = control or RunControl()
    folder = output_dir / TUNING_DIR
    spaces_of = {s.encoder: _searched(load_space(space_file(s.encoder, spaces), s.encoder),
                                      s.overrides, s.encoder) for s in specs}  # fmt: skip
    for spec in specs if fresh else []:
        _remove(folder, spec.encoder)
    folder.mkdir(parents=True, exist_ok=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens
    try:
        studies = [
            _Study(optuna, spec, spaces_of[spec.encoder], trials, folder, pruner) for spec in specs
        ]
        # The studies side by side, `jobs` at a time; the jobs they leave over, inside them.
        inside = max(1, jobs // max(1, len(studies)))
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tune") as pool:
            for done in [pool.submit(s.run, inside, control) for s in studies]:
                done.result()
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {study.spec.encoder: study.write_best() for study in studies}


class _Study:
    """One encoder's Optuna study, whose trials may run in several threads at once."""

    def __init__(self, optuna, spec: RunSpec, space, trials: int, folder: Path, pruner) -> None:
        self.optuna, self.space, self.trials = optuna, space, trials
        self.encoder, self.folder = spec.encoder, folder / spec.encoder
        self.spec = dataclasses.replace(spec, program=spec.program or tuple(execution.PROGRAM))
        self.lock = threading.Lock()  # ask, report, prune and tell one trial at a time
        setup = {
            "configs": [_digest(path) for path in spec.configs],
            "overrides": list(spec.overrides),
            "seed": spec.seed,
            "space": [asdict(p) for p in space],
        }
        self.study = _open_study(
            optuna, folder / f"{spec.encoder}.db", spec.encoder, trials, pruner, spec.seed, setup
        )
        self.started = _spent(self.study)

    def run(self, jobs: int, control: RunControl) -> None:
        """The trials left of the budget, ``jobs`` at a time."""
        left = self.trials - _spent(self.study)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="trial") as pool:
            for done in [pool.submit(self.run_trial, control) for _ in range(left)]:
                done.result()

    def run_trial(self, control: RunControl) -> None:
        """One trial: ask, run its ``fit`` (stopped when pruned), tell how it ended."""
        if control.stop.is_set():
            return
        with self.lock:
            trial = self.study.ask()  # a cut-short trial's settings first (enqueued), if any
            values = {p.name: p.suggest(trial) for p in self.space}
            self.started += 1
            tag = f"[tune {self.encoder} {self.started}/{self.trials}]"
            resumed = trial.user_attrs.get(RESUMES)
            # An integer from the study's database, formatted here: the folder (whose
            # checkpoints an ended trial deletes) is always one of ours under tuning/.
            folder = f"trial-{int(trial.user_attrs.get(ORIGIN, trial.number)):03d}"
            # epoch → val/acc; a resumed trial starts with its predecessor's epochs, which the
            # pruner must see again (Optuna keeps a trial's reports, not a chain's).
            scores: dict[int, float] = {}
            if resumed is not None:
                before = self.study.get_trials(deepcopy=False)[resumed]
                scores.update(before.intermediate_values)
                for epoch, value in sorted(scores.items()):
                    trial.report(value, step=epoch)
                if before.user_attrs.get(VAL_TEXTS):
                    trial.set_user_attr(VAL_TEXTS, before.user_attrs[VAL_TEXTS])
        searched = (f"--{p.flag}={_cli_value(values[p.name])}" for p in self.space)
        spec = dataclasses.replace(
            self.spec,
            overrides=(*self.spec.overrides, *TRIAL_ARGS, *searched),
            run_dir=str(self.folder / folder),
        )
        if resumed is None:
            print(f"{tag} trial {trial.number}: {_show(values)}", flush=True)
        else:
            done = max(scores, default=0)
            print(f"{tag} trial {trial.number} resumes trial {resumed} (cut short after epoch "
                  f"{done}) in {folder}: {_show(values)}", flush=True)  # fmt: skip

        def on_epoch(event: dict[str, Any]) -> bool:
            if event.get("event") != "epoch" or VAL_ACC not in event:
                return False
            epoch = event["epoch"]
            with self.lock:
                if epoch not in scores:  # an epoch redone after a resume was reported already
                    trial.report(event[VAL_ACC], step=epoch)
                scores[epoch] = event[VAL_ACC]
                if event.get(VAL_TEXTS) and not trial.user_attrs.get(VAL_TEXTS):
                    trial.set_user_attr(VAL_TEXTS, int(event[VAL_TEXTS]))
                prune = trial.should_prune()
            print(f"{tag} epoch {epoch}/{event.get('max_epochs')}, "
                  f"{VAL_ACC} {event[VAL_ACC]:.3f}", flush=True)  # fmt: skip
            return prune

        env = run_env(spec, "tune", name=f"{self.encoder}-trial{trial.number}")
        ended = run_process(spec, "fit", fit_args(spec), env, on_epoch, control)
        log = Path(spec.run_dir) / "fit.log"
        states = self.optuna.trial.TrialState
        with self.lock:
            if ended.cut:
                self.study.tell(trial, state=states.PRUNED)
                with log.open("a", encoding="utf-8") as out:
                    out.write(f"\n[pruned by compare --tune after epoch {max(scores)}]\n")
                print(f"{tag} pruned after epoch {max(scores)}", flush=True)
            elif stopped(ended.code, control):  # not counted: the next run resumes it
                self.study.tell(trial, state=states.FAIL)
                print(f"{tag} stopped (exit {ended.code}); a rerun resumes it from its last "
                      "checkpoint", flush=True)  # fmt: skip
                return  # its checkpoint stays
            elif ended.code == 0 and scores:
                self.study.tell(trial, max(scores.values()))
                best = self.study.best_value
                print(f"{tag} {VAL_ACC} {max(scores.values()):.3f} (best so far {best:.3f})",
                      flush=True)  # fmt: skip
            else:
                problem = f"exit {ended.code}" if ended.code else f"no {VAL_ACC} reported"
                trial.set_user_attr("error", f"{problem}, see {log}")
                self.study.tell(trial, state=states.FAIL)
                print(f"{tag} failed ({problem}, see {log})", flush=True)
        for checkpoint in Path(spec.run_dir).rglob("*.ckpt"):  # the trial ended: no resume
            checkpoint.unlink()

    def write_best(self) -> Tuned:
        path = self.folder.parent / f"{self.encoder}.yaml"
        return _write_best(self.study, self.space, path, self.encoder, self.spec.seed)


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as err:
        raise TuningError(
            "--tune needs Optuna: pip install 'lit-seqcls[tune]' (or pip install optuna)."
        ) from err
    return optuna


def _remove(folder: Path, encoder: str) -> None:
    """Delete ``encoder``'s study, trial folders and tuned config (nothing else)."""
    shutil.rmtree(folder / encoder, ignore_errors=True)
    for suffix in (".db", ".yaml"):
        (folder / f"{encoder}{suffix}").unlink(missing_ok=True)


def _searched(space: list[Param], overrides: Sequence[str], encoder: str) -> list[Param]:
    """``space`` without the parameters the command line sets (those stay as given)."""
    given = {arg.split("=", 1)[0].lstrip("-") for arg in overrides if arg.startswith("--")}
    fixed = [p for p in space if p.flag in given]
    for param in fixed:
        print(f"[tune {encoder}] {param.name}: --{param.flag} is given, not searched", flush=True)
    if len(fixed) == len(space):
        raise SearchSpaceError(
            f"{space_file(encoder)}: every parameter is set on the command line; nothing to tune."
        )
    return [p for p in space if p not in fixed]


def _open_study(optuna, db, encoder, trials, pruner, seed, setup: dict[str, Any]):
    """The study in ``db`` (created, or continued when it was made with the same ``setup``)."""
    study = optuna.create_study(
        storage=f"sqlite:///{db.resolve()}",
        study_name=encoder,
        direction="maximize",
        load_if_exists=True,
        pruner=pruner or optuna.pruners.MedianPruner(n_warmup_steps=PRUNE_FROM_EPOCH),
    )
    now, before = json.loads(json.dumps(setup)), study.user_attrs.get("setup")  # as stored
    if before is None:
        study.set_user_attr("setup", now)
    elif now != before:
        changed = ", ".join(key for key in now if now[key] != before.get(key))
        raise TuningError(
            f"{db} holds a study made with other settings ({changed} differ). Use another "
            f"--output_dir, or delete {db} to tune again from scratch."
        )
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # cut short: not counted
    _resume_cut_trials(study)
    if _spent(study) > trials:
        raise TuningError(
            f"{db} already holds {_spent(study)} trials, more than --tune {trials}; every "
            "encoder gets the same budget: pass that number, or use another --output_dir."
        )
    # Seeded, and reseeded past the trials already run, so a rerun does not redraw them.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), constant_liar=True)
    return study


def _resume_cut_trials(study) -> None:
    """Enqueue each cut-short trial's settings once, so that the next ``ask`` continues it.

    Cut short: failed without an ``error`` (stopped by a signal, or left ``RUNNING`` by a
    killed process), so not counted. The new trial gets the same parameters (Optuna's
    ``enqueue_trial``: the sampler does not draw them) and the old trial's folder, whose newest
    checkpoint the ``fit`` resumes from (``--ckpt_path auto``; without one it starts over).
    """
    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs[RESUMES] for t in trials if RESUMES in t.user_attrs}
    for cut in trials:
        cut_short = cut.state.name == "FAIL" and "error" not in cut.user_attrs
        if cut_short and cut.params and cut.number not in continued:
            origin = cut.user_attrs.get(ORIGIN, cut.number)
            study.enqueue_trial(cut.params, user_attrs={RESUMES: cut.number, ORIGIN: origin})


def _spent(study) -> int:
    """Trials that count towards the budget: finished, pruned, or failed on their own."""
    return sum(
        t.state.name in ("COMPLETE", "PRUNED") or "error" in t.user_attrs
        for t in study.get_trials(deepcopy=False)
    )


def _write_best(study, space, path: Path, encoder: str, seed: int) -> Tuned:
    trials = study.get_trials(deepcopy=False)
    pruned = sum(t.state.name == "PRUNED" for t in trials)
    failed = sum("error" in t.user_attrs for t in trials)  # not those cut short: uncounted
    done = f"{_spent(study)} trials ({pruned} pruned, {failed} failed)"
    if not any(t.state.name == "COMPLETE" for t in trials):
        return Tuned(encoder, None, f"tuning failed: none of {done} finished; see {path.parent}")
    best = study.best_trial
    others = [t.value for t in trials if t.state.name == "COMPLETE" and t.number != best.number]
    noise = _within_noise(best.value, best.user_attrs.get(VAL_TEXTS), others)
    flags = {p.name: p.flag for p in space}
    tree: dict[str, Any] = {}
    _put(tree, "model.encoder.class_path", class_path(encoder))
    for name, value in best.params.items():
        _put(tree, flags[name], value)
    path.write_text(
        f"# Chosen by lit-seqcls compare --tune (seed {seed}; the test set played no part):\n"
        f"# trial {best.number}, best {VAL_ACC} {best.value:.4f} of {done}. Reuse:\n"
        f"#   lit-seqcls fit --config <data config> --config {path}\n"
        + "".join(f"# {line}\n" for line in textwrap.wrap(noise, 94))
        + yaml.safe_dump(tree, sort_keys=False),
        encoding="utf-8",
    )
    status = f"best {VAL_ACC} {best.value:.3f} (trial {best.number}) of {done}"
    print(f"[tune {encoder}] {status} → {path}", flush=True)
    if noise:
        print(f"[tune {encoder}] {noise}", flush=True)
    return Tuned(encoder, path, status)


def _within_noise(best: float, texts: int | None, others: Sequence[float]) -> str:
    """What to say when other trials score inside the best one's 95% interval (empty if none).

    The interval is the normal approximation of an accuracy measured on ``texts`` validation
    texts. Trials inside it are not told apart by this split, and the best of several such
    trials is the luckiest draw: on 300 validation texts (a 3,000-text data set's 10%) the
    interval is about ±5 points, and a tuned swem that won by 2 points on validation lost 4.6 on
    test (docs/results/README.md).

    Example:
        >>> _within_noise(0.753, 300, [0.737, 0.713, 0.60])[:85]
        'On 300 validation texts the best score has a 95% interval of ±4.9 points, and 2 other'
        >>> _within_noise(0.753, 20_000, [0.737])
        ''
    """
    if not texts:
        return ""  # trials of an older lit-seqcls, which did not report the count
    half = 1.96 * math.sqrt(best * (1 - best) / texts)
    close = sum(best - value <= half for value in others)
    if not close:
        return ""
    return (
        f"On {texts:,} validation texts the best score has a 95% interval of "
        f"±{half * 100:.1f} points, and {close} other "
        f"{'trials score' if close > 1 else 'trial scores'} inside it: "
        "the choice between them is mostly noise. Compare the tuned and shipped test rows "
        "before adopting these settings; a larger validation split "
        "(--data.init_args.val_fraction) would tell such trials apart."
    )


def _put(tree: dict[str, Any], flag: str, value: Any) -> None:
    *parents, leaf = flag.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _cli_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _show(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def _digest(path: str) -> str:
    """A config file by its content (a rerun from another folder names it differently)."""
    data = Path(path).read_bytes() if Path(path).is_file() else path.encode()
    return hashlib.sha256(data).hexdigest()
