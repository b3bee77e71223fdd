"""``lit-seqcls compare``: train and test several encoders on the same data, then tabulate and plot.

``runner`` runs one ``fit`` and ``test`` process per encoder × seed, each with the
``ComparisonReporter`` callback (``reporter``); ``results`` holds the run records and what is
computed from them (summaries, accuracy by length); ``report`` writes the tables and ``plots``
the figures. Arrows go one way: runner → report → plots → results.
"""

from lit_seqcls.compare.plots import PLOTS, save_plots
from lit_seqcls.compare.report import write_report
from lit_seqcls.compare.reporter import ComparisonReporter
from lit_seqcls.compare.results import RunResult, accuracy_by_length, load_results, summarize
from lit_seqcls.compare.runner import main, run_one

__all__ = [
    "PLOTS",
    "ComparisonReporter",
    "RunResult",
    "accuracy_by_length",
    "load_results",
    "main",
    "run_one",
    "save_plots",
    "summarize",
    "write_report",
]
