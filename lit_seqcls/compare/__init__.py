"""``lit-seqcls compare``: train and test several encoders on the same data, then tabulate and plot.

``runner`` plans the runs (one per encoder × seed), skips the finished ones and hands the rest
to a launcher (``launchers``: here ``--jobs`` at a time, or a SLURM job array through submitit),
which calls ``execution.execute_run`` for each: one ``fit`` and one ``test`` process with the
``ComparisonReporter`` callback (``reporter``), resumed from the run's checkpoints after an
interruption; ``runs`` holds what a run folder records, ``progress`` the one progress line.
``tuning`` (``--tune``) runs its Optuna trials through the same child runner
(``execution.run_process``), ``--jobs`` at a time.
``results`` holds the run records and what is computed from them (summaries, accuracy by
length); ``report`` writes the tables and ``plots`` the figures. Arrows go one way: runner →
launchers | tuning → execution → runs → results; runner → report → plots → results.
"""

from lit_seqcls.compare.execution import execute_run, run_one
from lit_seqcls.compare.plots import PLOTS, save_plots
from lit_seqcls.compare.report import write_report
from lit_seqcls.compare.reporter import ComparisonReporter
from lit_seqcls.compare.results import RunResult, accuracy_by_length, load_results, summarize
from lit_seqcls.compare.runner import main

__all__ = [
    "PLOTS",
    "ComparisonReporter",
    "RunResult",
    "accuracy_by_length",
    "execute_run",
    "load_results",
    "main",
    "run_one",
    "save_plots",
    "summarize",
    "write_report",
]
