"""``lit-seqcls compare --tune N``: every encoder gets the same N trials of hyper-parameter search.

Each trial is one ``lit-seqcls fit`` process, the runner's command plus the settings Optuna's TPE
sampler (seeded) draws from the encoder's search space (``search_space``); the trial never runs
``test``. Its ``val/acc`` arrives per epoch through the ``ComparisonReporter`` events the runner
reads too, goes to ``trial.report``, and a trial that Optuna's median pruner gives up on is
stopped by ending its process. A trial's score is its best ``val/acc`` (what the checkpoint
that ``test`` reads would hold). So the test set decides nothing here; it gives only the final
scores of the runs trained afterwards with the chosen settings.

In the comparison's folder::

    tuning/<encoder>.db            the Optuna study (SQLite): a rerun continues it
    tuning/<encoder>.yaml          the best trial's settings, a model config for --config
    tuning/<encoder>/trial-NNN/    each trial's fit.log and Lightning logs (no checkpoints)

Pruned and failed trials count towards N, so every encoder spends the same budget; a trial cut
short by an interrupted comparison does not, and runs again. Settings given on the command line
(``--model.dropout 0.2``) are kept and left out of the search. With a W&B logger in the configs,
trials join the comparison's W&B group (job type ``tune``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lit_seqcls.compare.reporter import EVENT_PREFIX, ComparisonReporter
from lit_seqcls.compare.search_space import Param, SearchSpaceError, load_space, space_file
from lit_seqcls.encoders import ENCODERS
from lit_seqcls.errors import UserError
from lit_seqcls.metrics import VAL_ACC

if TYPE_CHECKING:
    import optuna

TUNING_DIR = "tuning"
LAUNCHER = [sys.executable, "-m", "lit_seqcls"]  # how a trial's `fit` starts
REPORTER = f"{ComparisonReporter.__module__}.{ComparisonReporter.__name__}"
TRIAL_ARGS = [  # progress comes from the reporter's events; a trial's weights are never used
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--checkpoint.save_top_k=0",
    "--checkpoint.save_last=false",
    "--shutdown.save_checkpoint=false",
]
PRUNE_FROM_EPOCH = 2  # one epoch is too noisy to give up on (README: BiLSTM val 0.862 → 0.992)
STOP_GRACE_S = 10.0  # a pruned trial's process gets this long to stop on SIGTERM


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
    spaces: str | Path | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    fresh: bool = False,
) -> Tuned:
    """Run ``encoder``'s study up to ``trials`` counted trials; write the best settings as YAML.

    Args:
        encoder: a name from ``ENCODERS``.
        trials: the budget N, the same for every encoder.
        configs: ``--config`` files for ``fit``, as the runner passes them.
        overrides: further ``fit`` arguments (already only those ``encoder`` takes).
        output_dir: the comparison's folder; everything goes under its ``tuning/``.
        seed: ``--seed_everything`` of every trial, and the sampler's seed.
        group: W&B group of the trials (used only when the configs add a W&B logger).
        spaces: folder of ``<encoder>.yaml`` search spaces (default: the shipped ones).
        pruner: Optuna pruner (default: median pruner from epoch ``PRUNE_FROM_EPOCH`` on).
        fresh: delete this encoder's study, trials and config first (``compare --fresh``).
    """
    optuna = _import_optuna()
    space = _searched(load_space(space_file(encoder, spaces), encoder), overrides, encoder)
    folder = output_dir / TUNING_DIR
    if fresh:
        _remove(folder, encoder)
    folder.mkdir(parents=True, exist_ok=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens
    try:
        study = _open_study(optuna, folder / f"{encoder}.db", encoder, trials, pruner, seed, {
            "configs": [_digest(path) for path in configs], "overrides": list(overrides),
            "seed": seed,
            "space": [asdict(p) for p in space],
        })  # fmt: skip
        base = [
            "fit",
            *(arg for path in configs for arg in ("--config", path)),
            f"--model.encoder.class_path={_class_path(encoder)}",
            *TRIAL_ARGS,
            *overrides,
        ]
        env = {**os.environ, "WANDB_RUN_GROUP": group, "WANDB_JOB_TYPE": "tune"}
        for _ in range(trials - _spent(study)):
            _run_trial(optuna, study, space, base, seed, folder / encoder, env, trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return _write_best(optuna, study, space, folder / f"{encoder}.yaml", encoder, seed)


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
    if _spent(study) > trials:
        raise TuningError(
            f"{db} already holds {_spent(study)} trials, more than --tune {trials}; every "
            "encoder gets the same budget: pass that number, or use another --output_dir."
        )
    # Seeded, and reseeded past the trials already run, so a rerun does not redraw them.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study


def _spent(study) -> int:
    """Trials that count towards the budget: finished, pruned, or failed on their own."""
    return sum(
        t.state.name in ("COMPLETE", "PRUNED") or "error" in t.user_attrs
        for t in study.get_trials(deepcopy=False)
    )


def _run_trial(optuna, study, space, base, seed, folder: Path, env, trials: int) -> None:
    trial = study.ask()
    values = {p.name: p.suggest(trial) for p in space}
    run_dir = folder / f"trial-{trial.number:03d}"
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [
        *base,
        *(f"--{p.flag}={_cli_value(values[p.name])}" for p in space),
        f"--seed_everything={seed}",
        f"--trainer.default_root_dir={run_dir}",
        f"--trainer.callbacks+={REPORTER}",
    ]
    tag = f"[tune {folder.name} {_spent(study) + 1}/{trials}]"
    print(f"{tag} trial {trial.number}: {_show(values)}", flush=True)
    scores: list[float] = []

    def on_epoch(event: dict[str, Any]) -> bool:
        scores.append(event[VAL_ACC])
        trial.report(event[VAL_ACC], step=event["epoch"])
        print(f"{tag} epoch {event['epoch']}/{event.get('max_epochs')}, "
              f"{VAL_ACC} {event[VAL_ACC]:.3f}", flush=True)  # fmt: skip
        return trial.should_prune()

    name = f"{folder.name}-trial{trial.number}"
    code, pruned = _fit(args, run_dir / "fit.log", {**env, "WANDB_NAME": name}, on_epoch)
    states = optuna.trial.TrialState
    if pruned:
        study.tell(trial, state=states.PRUNED)
        print(f"{tag} pruned after epoch {len(scores)}", flush=True)
    elif code == 0 and scores:
        study.tell(trial, max(scores))
        print(f"{tag} {VAL_ACC} {max(scores):.3f} (best so far {study.best_value:.3f})", flush=True)
    else:
        problem = f"exit {code}" if code else f"no {VAL_ACC} reported"
        trial.set_user_attr("error", f"{problem}, see {run_dir / 'fit.log'}")
        study.tell(trial, state=states.FAIL)
        print(f"{tag} failed ({problem}, see {run_dir / 'fit.log'})", flush=True)


def _fit(
    args: list[str], log: Path, env: dict[str, str], on_epoch: Callable[[dict[str, Any]], bool]
) -> tuple[int, bool]:
    """Run ``lit-seqcls *args``, tee it to ``log``, hand each epoch's event to ``on_epoch`` and
    stop the process when that says so; return (exit code, whether it was stopped)."""
    command = [*LAUNCHER, *args]
    pruned = False
    with log.open("w", encoding="utf-8", buffering=1) as out:  # line-buffered: tail -f works
        out.write(" ".join(command) + "\n\n")
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
        )
        assert child.stdout is not None
        try:
            for line in child.stdout:
                out.write(line)
                if not line.startswith(EVENT_PREFIX):
                    continue
                event = json.loads(line[len(EVENT_PREFIX) :])
                if event["event"] == "epoch" and VAL_ACC in event and on_epoch(event):
                    pruned = True
                    break
        finally:  # pruned, Ctrl-C or an error here: do not leave the child training
            if child.poll() is None:
                child.terminate()  # GracefulShutdown: stops at the next step
                try:
                    child.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    child.kill()
        code = child.wait()
        if pruned:
            out.write(f"\n[pruned by lit-seqcls compare --tune after epoch {event['epoch']}]\n")
    return code, pruned


def _write_best(optuna, study, space, path: Path, encoder: str, seed: int) -> Tuned:
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state.name == s for t in trials) for s in ("PRUNED", "FAIL")}
    done = f"{_spent(study)} trials ({counts['PRUNED']} pruned, {counts['FAIL']} failed)"
    if not any(t.state.name == "COMPLETE" for t in trials):
        return Tuned(encoder, None, f"tuning failed: none of {done} finished; see {path.parent}")
    best = study.best_trial
    flags = {p.name: p.flag for p in space}
    tree: dict[str, Any] = {}
    _put(tree, "model.encoder.class_path", _class_path(encoder))
    for name, value in best.params.items():
        _put(tree, flags[name], value)
    path.write_text(
        f"# Chosen by lit-seqcls compare --tune (seed {seed}; the test set played no part):\n"
        f"# trial {best.number}, best {VAL_ACC} {best.value:.4f} of {done}. Reuse:\n"
        f"#   lit-seqcls fit --config <data config> --config {path}\n"
        + yaml.safe_dump(tree, sort_keys=False),
        encoding="utf-8",
    )
    status = f"best {VAL_ACC} {best.value:.3f} (trial {best.number}) of {done}"
    print(f"[tune {encoder}] {status} → {path}", flush=True)
    return Tuned(encoder, path, status)


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


def _class_path(encoder: str) -> str:
    cls = ENCODERS[encoder]
    return f"{cls.__module__}.{cls.__name__}"
