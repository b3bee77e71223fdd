"""The CLI and every shipped config: parse, run briefly, and the fit → test → predict round trip."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from lit_seqcls.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
DATA = str(CONFIGS / "data" / "synthetic.yaml")
# Small data and a small model, so each run takes seconds on 2 CPU cores.
TINY = [
    "--data.init_args.train_size=200",
    "--data.init_args.test_size=40",
    "--data.init_args.median_length=10",
    "--data.init_args.max_text_length=30",
    "--model.embedding_dim=16",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
MODEL_CONFIGS = sorted((CONFIGS / "model").glob("*.yaml"))
# configs/sweeps/ holds W&B sweep configs (tests/lit_seqcls/test_sweeps.py) and configs/tune/
# compare --tune search spaces (tests/lit_seqcls/compare/test_tuning.py): not CLI configs.
OTHER_CONFIGS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if p.parent.name not in ("model", "data", "sweeps", "tune")
)
NEEDS_GPU = {"gpu", "ddp"}  # configs/trainer/{gpu,ddp}.yaml: run with -m gpu on a CUDA machine
# Multi-process configs run in a subprocess: Lightning starts the other ranks by re-running
# sys.argv, which in-process would be pytest itself.
MULTI_PROCESS = {"ddp_cpu"}


def _marks(path: Path) -> list:
    if path.parent.name == "trainer" and path.stem in NEEDS_GPU:
        return [pytest.mark.gpu]
    return [pytest.mark.ddp] if path.stem in MULTI_PROCESS else []


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    # In-process runs pass `args=`; pytest's own argv must not look like CLI arguments.
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])


def test_there_is_a_config_for_every_encoder():
    from lit_seqcls.encoders import ENCODERS

    assert {p.stem for p in MODEL_CONFIGS} == set(ENCODERS)


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_model_config_runs_under_fast_dev_run(config, tmp_path, cli_runs):
    from lit_seqcls.encoders import ENCODERS

    main(["fit", "--config", DATA, "--config", str(config), "--trainer.fast_dev_run=1", *TINY])
    (run,) = cli_runs
    assert run.trainer.state.finished and run.trainer.global_step == 1
    assert isinstance(run.model.network.encoder, ENCODERS[config.stem])


@pytest.mark.parametrize(
    "config",
    [pytest.param(p, marks=_marks(p)) for p in OTHER_CONFIGS],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_other_config_runs_under_fast_dev_run(config, tmp_path, run_cli, cli_runs):
    import yaml

    vectors = yaml.safe_load(config.read_text()).get("data", {}).get("init_args", {}).get("vectors")
    if vectors:  # made by `lit-seqcls vectors` before the run; here a stand-in, 16-d as TINY's
        (tmp_path / vectors).write_text("[UNK] " + " ".join(["0.5"] * 16) + "\n")
    args = ["fit", "--config", DATA, "--config", str(CONFIGS / "model" / "cnn.yaml"),
            "--config", str(config), "--trainer.fast_dev_run=1", *TINY]  # fmt: skip
    if config.stem in MULTI_PROCESS:
        run_cli(*args, cwd=tmp_path)  # asserts exit status 0
    else:
        main(args)
        (run,) = cli_runs
        assert run.trainer.state.finished and run.trainer.global_step == 1


def test_encoder_by_short_name_parses_runs_and_serialises(capsys, tmp_path):
    # `str` must come before the callable in the union, or jsonargparse turns "gru" into an
    # object it cannot write back ("Unable to serialize instance gru").
    with pytest.raises(SystemExit):
        main(["fit", "--config", DATA, "--model.encoder=gru", "--print_config"])
    assert "  encoder: gru\n" in capsys.readouterr().out
    main(["fit", "--config", DATA, "--model.encoder=gru", "--trainer.max_epochs=1", *TINY])
    (saved,) = tmp_path.glob("logs/lightning_logs/version_0/config.yaml")
    assert "  encoder: gru\n" in saved.read_text()


def test_print_config_shows_every_encoder_and_data_argument_with_help(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                DATA,
                "--config",
                str(CONFIGS / "model" / "attention.yaml"),
                "--print_config=comments",
            ]
        )
    out = capsys.readouterr().out
    for argument in (
        "attention_dim:",
        "bidirectional:",
        "max_vocab_size:",
        "median_length:",
        "pool_size:",
    ):
        assert argument in out
    assert "# cap on the tokenizer's vocabulary" in out
    assert "vocab_size: " not in re.sub(
        r"max_vocab_size", "", out.split("data:")[0]
    )  # linked, not typed


def test_top_level_help_lists_the_commands_main_hands_to_their_own_parsers(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    listed = out.split("other commands (each takes --help):\n")[1]
    for command in ("compare", "configs [DEST]", "vectors", "export", "predict --bundle DIR"):
        assert re.search(rf"^  {re.escape(command)}  ", listed, re.MULTILINE), command
    assert "{fit,validate,test,predict}" in out  # and the LightningCLI subcommands


def test_fit_test_predict_round_trip_in_new_processes(tmp_path, run_cli):
    args = [
        "--config",
        DATA,
        "--config",
        str(CONFIGS / "model" / "cnn.yaml"),
        *TINY,
        "--trainer.max_epochs=2",
    ]
    out = run_cli("fit", *args, cwd=tmp_path)
    assert "LeafSpec" not in out  # library noise a user cannot act on is not shown
    ckpt = re.search(r"--ckpt_path (\S+\.ckpt)", out).group(1)
    assert Path(tmp_path, ckpt).is_file()

    # A second identical fit must not refuse because config.yaml exists: it gets its own version.
    run_cli("fit", *args, "--trainer.max_epochs=1", cwd=tmp_path)
    versions = sorted(p.name for p in (tmp_path / "logs" / "lightning_logs").iterdir())
    assert versions == ["version_0", "version_1"]

    config = re.search(r"--config (\S+config\.yaml)", out).group(1)
    out = run_cli("test", "--config", config, "--ckpt_path", ckpt, cwd=tmp_path)
    assert re.search(r"test/acc[\s│|]+\d\.\d+", out)  # plain or rich table

    predictions = tmp_path / "predictions.jsonl"
    run_cli(
        "predict",
        "--config",
        config,
        "--ckpt_path",
        ckpt,
        "--predictions.output",
        str(predictions),
        cwd=tmp_path,
    )
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(40))
    names = {f"topic_{c}" for c in range(4)}
    for row in rows:
        assert row["label"] in names and set(row["probs"]) == names
        assert abs(sum(row["probs"].values()) - 1) < 1e-4
        assert row["label"] == max(row["probs"], key=row["probs"].get)
        assert row["text"]
