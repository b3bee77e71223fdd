"""Keep a comparison's finished runs in the repository, so that it can go on on another machine.

``lit-seqcls compare`` reuses a finished run from its folder without the checkpoints, wherever
that folder now lies (docs/cluster.md). The real-text comparisons of issue #17 take longer than
one session here, and each session may start on a fresh machine, so their finished runs are kept
under ``docs/results/<name>/runs/``: for each run whose record says ``ok``, the files a rerun
reads of it:

- ``command.json`` and ``result.json``: the command it ran and its record (a rerun of another
  command refuses the folder instead of mixing two experiments);
- ``test_predictions.jsonl`` without the probabilities: the statistics pair labels and
  predictions only, and 25,000 IMDB rows are 1.2 MB so instead of 2.2 MB;
- ``lightning_logs/version_*/config.yaml``: the run's whole configuration, which the reference
  row reads its data settings from (and a reader the run's settings).

    python benchmarks/keep_runs.py /work/runs/cmp/imdb docs/results/imdb/runs
    # elsewhere: put them back, and the same compare command trains only what is missing
    mkdir -p /work/runs/cmp/imdb/runs && cp -r docs/results/imdb/runs/. /work/runs/cmp/imdb/runs/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from lit_seqcls.compare.predictions import PREDICTIONS_FILE, read_predictions, write_predictions
from lit_seqcls.compare.runs import COMMAND_FILE, RECORD_FILE, read_record


def keep(output_dir: Path, dest: Path) -> list[str]:
    """Copy the finished runs of the comparison in ``output_dir`` into ``dest``; their names."""
    kept = []
    for run in sorted((output_dir / "runs").iterdir()):
        record = read_record(run)
        if record is None or record.status != "ok" or not (run / COMMAND_FILE).is_file():
            continue  # unfinished, failed, or the reference row (computed again in seconds)
        target = dest / run.name
        target.mkdir(parents=True, exist_ok=True)
        for name in (COMMAND_FILE, RECORD_FILE):
            shutil.copy2(run / name, target / name)
        for config in run.glob("lightning_logs/version_*/config.yaml"):
            (target / config.relative_to(run)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(config, target / config.relative_to(run))
        index, labels, preds = read_predictions(run / PREDICTIONS_FILE)
        rows = zip(index.tolist(), labels, preds, strict=True)
        write_predictions(
            target / PREDICTIONS_FILE, ({"index": i, "label": y, "pred": p} for i, y, p in rows)
        )
        kept.append(run.name)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", type=Path, help="the comparison's --output_dir")
    parser.add_argument("dest", type=Path, help="where to keep its finished runs")
    options = parser.parse_args()
    kept = keep(options.output_dir, options.dest)
    print(f"Kept {len(kept)} finished run(s) in {options.dest}: {', '.join(kept)}")


if __name__ == "__main__":
    main()
