"""A stand-in for ``python -m lit_seqcls fit|test`` in the runner's tests: stdlib only, instant.

It speaks the ``ComparisonReporter`` protocol (``@@compare`` events, ``compare_fit.json``,
``compare_test.json``), appends one line per ``fit`` to ``$FAKE_FIT_COUNTER``, trains
``$FAKE_STEPS`` steps of ``$FAKE_STEP_S`` seconds and, on SIGTERM, saves its step in the run
folder and exits 143 like ``GracefulShutdown``; the next ``fit`` continues from that step. An
encoder named in ``$FAKE_FAIL`` fails. Scores depend only on encoder and seed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

PREFIX = "@@compare "


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name:
            return args[i + 1]
    return None


def emit(**event) -> None:
    print(PREFIX + json.dumps(event), flush=True)


def score(encoder: str, seed: int) -> float:
    return (sum(map(ord, encoder)) + 7 * seed) % 50 / 100 + 0.5


def new_log_dir(root: Path) -> Path:
    logs = root / "lightning_logs"
    version = len(list(logs.glob("version_*"))) if logs.is_dir() else 0
    log_dir = logs / f"version_{version}"
    (log_dir / "checkpoints").mkdir(parents=True)
    return log_dir


def fit(args: list[str]) -> None:
    root = Path(option(args, "--trainer.default_root_dir"))
    seed = int(option(args, "--seed_everything"))
    encoder = option(args, "--model.encoder.class_path").rsplit(".", 1)[1]
    with open(os.environ["FAKE_FIT_COUNTER"], "a") as f:
        f.write(f"{encoder} {seed} {option(args, '--ckpt_path')}\n")
    if encoder in os.environ.get("FAKE_FAIL", "").split(","):
        print("Traceback: the encoder refused its arguments", flush=True)
        sys.exit(1)
    log_dir = new_log_dir(root)
    config = {"root": str(root), "enc": encoder, "seed": seed}
    (log_dir / "config.yaml").write_text(json.dumps(config))
    state = root / "fake_state.json"  # the fake's checkpoint: steps done
    start = json.loads(state.read_text())["step"] if state.exists() else 0
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    emit(event="fit_start", max_epochs=1, resumed_at=start)
    for step in range(start, int(os.environ.get("FAKE_STEPS", "1"))):
        if stop:
            state.write_text(json.dumps({"step": step}))
            print(f"Stopped by SIGTERM after step {step}", flush=True)
            sys.exit(143)
        time.sleep(float(os.environ.get("FAKE_STEP_S", "0")))
    acc = score(encoder, seed)
    emit(event="epoch", epoch=1, max_epochs=1, elapsed=0.25, **{"val/acc": acc})
    best = log_dir / "checkpoints" / "best.ckpt"
    best.write_text("weights")
    summary = {
        "train_time_s": 0.5, "samples_per_s": 100.0, "tokens_per_s": 1000.0, "params": 10,
        "encoder_params": 4, "history": [{"epoch": 0, "elapsed": 0.25, "val/acc": acc}],
        "log_dir": str(log_dir), "best_model_path": str(best),
        "device": {"type": "cpu", "torch_threads": int(os.environ.get("OMP_NUM_THREADS", 0))},
        "resumed_at": start,
    }  # fmt: skip
    (log_dir / "compare_fit.json").write_text(json.dumps(summary))
    emit(event="wrote", file="compare_fit.json", path=str(log_dir / "compare_fit.json"))


def test(args: list[str]) -> None:
    config = json.loads(Path(option(args, "--config")).read_text())
    log_dir = new_log_dir(Path(config["root"]))
    acc = score(config["enc"], config["seed"])
    correct = [int(i < round(acc * 4)) for i in range(4)]
    payload = {
        "metrics": {"test/acc": sum(correct) / 4, "test/f1_macro": sum(correct) / 4},
        "examples": {"index": [0, 1, 2, 3], "length": [3, 5, 7, 9], "correct": correct},
    }
    (log_dir / "compare_test.json").write_text(json.dumps(payload))
    emit(event="wrote", file="compare_test.json", path=str(log_dir / "compare_test.json"))


if __name__ == "__main__":
    {"fit": fit, "test": test}[sys.argv[1]](sys.argv[2:])
