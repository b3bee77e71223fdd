"""Time to accuracy: wall time of ``lit-seqcls fit`` until validation accuracy reaches a target.

Each encoder trains with the shipped configs (``configs/data/synthetic.yaml``: the keyword task,
where the label is one keyword at a random position, so a model must carry it over the whole
text; ``configs/model/<encoder>.yaml``) through the real CLI. Validation runs four times per
epoch; the clock starts when ``fit`` is called (data preparation and tokenizer training
included) and stops at the first validation at or above ``--target``, which also ends the run.

    python benchmarks/time_to_accuracy.py                   # six encoders, target 0.95
    python benchmarks/time_to_accuracy.py --encoders rnn cnn --max_epochs 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import ClassVar

import lightning as L

from lit_seqcls.cli import main as cli_main
from lit_seqcls.metrics import VAL_ACC

try:
    from benchmarks.common import ROOT, callback_class, machine
except ImportError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from common import ROOT, callback_class, machine

ENCODERS = ("rnn", "gru", "lstm", "bilstm", "attention", "cnn")


class StopAtAccuracy(L.Callback):
    """Records when validation accuracy first reaches ``target`` and stops training there."""

    target = 0.95
    started = 0.0
    result: ClassVar[dict[str, float]] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        acc = float(trainer.callback_metrics[VAL_ACC])
        StopAtAccuracy.result.update(
            best=max(acc, StopAtAccuracy.result.get("best", 0.0)),
            epochs=trainer.current_epoch
            + trainer.fit_loop.epoch_loop.batch_progress.current.ready
            / max(trainer.num_training_batches, 1),
        )
        if acc >= self.target and "seconds" not in StopAtAccuracy.result:
            StopAtAccuracy.result["seconds"] = time.perf_counter() - StopAtAccuracy.started
            trainer.should_stop = True


def time_to_accuracy(encoder: str, target: float, max_epochs: int, root: str) -> dict[str, float]:
    timer = callback_class("time_to_accuracy", "StopAtAccuracy")
    timer.target, timer.result, timer.started = target, {}, time.perf_counter()
    cli_main(
        [
            "fit",
            *("--config", str(ROOT / "configs/data/synthetic.yaml")),
            *("--config", str(ROOT / f"configs/model/{encoder}.yaml")),
            "--trainer.callbacks+=benchmarks.time_to_accuracy.StopAtAccuracy",
            f"--trainer.default_root_dir={root}/{encoder}",
            f"--trainer.max_epochs={max_epochs}",
            "--trainer.val_check_interval=0.25",
            "--trainer.enable_progress_bar=false",
            "--seed_everything=0",
        ]
    )
    return timer.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--max_epochs", type=int, default=6)
    args = parser.parse_args()
    print(f"{machine()}; synthetic keyword task, shipped configs, target val/acc {args.target}")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for encoder in args.encoders:
            rows.append((encoder, time_to_accuracy(encoder, args.target, args.max_epochs, root)))
    print(f"\n| encoder | seconds to val/acc ≥ {args.target} | epochs | best val/acc |")
    print("|---|---:|---:|---:|")
    for encoder, result in rows:
        seconds = f"{result['seconds']:.0f}" if "seconds" in result else "not reached"
        print(f"| {encoder} | {seconds} | {result['epochs']:.2f} | {result['best']:.3f} |")


if __name__ == "__main__":
    main()
