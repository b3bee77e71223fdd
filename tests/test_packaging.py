"""What ships is what a checkout runs: the configs are package data, named ``lit_seqcls:<name>``.

The slow test builds the wheel, installs it into a fresh virtual environment (the dependencies
come from this one, nothing is downloaded) and runs README's commands outside the checkout.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import yaml

from lit_seqcls import cli
from lit_seqcls.runtime.outputs import OutputFileError
from lit_seqcls.shipped_configs import (
    ShippedConfigError,
    copy_configs,
    resolve_config_names,
    shipped_config,
    shipped_names,
    shipped_root,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["pyproject.toml", "README.md", "lit_seqcls", "datamodules", "callbacks"]
TINY = [
    "--data.init_args.train_size=200", "--data.init_args.test_size=40",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--model.embedding_dim=16", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["lit-seqcls"])  # not pytest's own arguments


def test_the_checkout_configs_are_the_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    # One copy: the configs/ a user sees in a checkout is the folder the wheel ships.
    assert (ROOT / "configs").resolve() == (ROOT / "lit_seqcls" / "configs").resolve()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = package_data["package-data"]["lit_seqcls"]
    matched = {
        Path(p).resolve()
        for pattern in patterns
        for p in glob.glob(str(ROOT / "lit_seqcls" / pattern), recursive=True)
    }
    files = {p.resolve() for p in (ROOT / "configs").rglob("*") if p.is_file()}
    assert len(files) > 20 and files <= matched, sorted(map(str, files - matched))


def test_the_default_config_comes_from_the_installed_package():
    packaged = resources.files("lit_seqcls") / "configs" / "trainer" / "default.yaml"
    assert Path(str(packaged)) == cli.DEFAULT_CONFIG and cli.DEFAULT_CONFIG.is_file()
    assert yaml.safe_load(cli.DEFAULT_CONFIG.read_text())["trainer"]["gradient_clip_val"] == 1.0


def test_shipped_names_resolve_and_others_are_refused():
    assert "model/cnn.yaml" in shipped_names() and "sweeps/bilstm_imdb.yaml" in shipped_names()
    argv = ["fit", "--config", "lit_seqcls:model/cnn.yaml", "--config=lit_seqcls:data/imdb.yaml"]
    assert resolve_config_names(argv) == [
        "fit", "--config", str(shipped_root() / "model" / "cnn.yaml"),
        f"--config={shipped_root() / 'data' / 'imdb.yaml'}",
    ]  # fmt: skip
    assert resolve_config_names(["fit", "--model.encoder", "lit_seqcls:x"])[2] == "lit_seqcls:x"
    with pytest.raises(ShippedConfigError, match=r"not a config shipped.*in model/: .*model/cnn"):
        shipped_config("lit_seqcls:model/transformer.yaml")
    for name in ("../cli.py", "/etc/passwd", "model", "configs/model/cnn.yaml"):
        with pytest.raises(ShippedConfigError, match=r"not a config shipped.*lit_seqcls:model/cnn"):
            shipped_config(f"lit_seqcls:{name}")


def test_fit_takes_shipped_names_with_the_shipped_defaults(capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["fit", "--config", "lit_seqcls:data/synthetic.yaml",
                  "--config=lit_seqcls:model/cnn.yaml", "--print_config"])  # fmt: skip
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["trainer"]["gradient_clip_val"] == 1.0
    assert config["trainer"]["default_root_dir"] == "logs"
    assert config["model"]["encoder"]["class_path"] == "lit_seqcls.encoders.CNNEncoder"
    with pytest.raises(SystemExit, match=r"lit_seqcls:model/none\.yaml is not a config shipped"):
        cli.main(["fit", "--config", "lit_seqcls:model/none.yaml"])


def test_compare_gets_the_shipped_files(monkeypatch):
    seen = []
    monkeypatch.setattr("lit_seqcls.compare.main", seen.append)
    cli.main(["compare", "--config", "lit_seqcls:data/synthetic.yaml", "--encoders", "gru"])
    assert seen == [["--config", str(shipped_config("data/synthetic.yaml")), "--encoders", "gru"]]


def test_configs_command_copies_and_keeps_edits(tmp_path, capsys):
    cli.main(["configs", str(tmp_path / "mine")])
    assert f"Copied {len(shipped_names())} config file(s)" in capsys.readouterr().out
    copied = tmp_path / "mine" / "model" / "cnn.yaml"
    assert copied.read_text() == shipped_config("model/cnn.yaml").read_text()
    assert copy_configs(tmp_path / "mine") == ([], len(shipped_names()))  # again: nothing to do
    copied.write_text("model:\n  dropout: 0.3\n")  # the user's edit
    (tmp_path / "mine" / "data" / "imdb.yaml").unlink()
    with pytest.raises(OutputFileError, match=r"differ from the shipped.*model/cnn\.yaml"):
        copy_configs(tmp_path / "mine")
    assert copied.read_text() == "model:\n  dropout: 0.3\n"  # kept, and nothing else written
    assert not (tmp_path / "mine" / "data" / "imdb.yaml").exists()
    written, _ = copy_configs(tmp_path / "mine", overwrite=True)
    assert {p.name for p in written} == {"cnn.yaml", "imdb.yaml"}
    # A folder of the user's is not written into (outputs.py's rule); a checkout's own is a no-op.
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.tex").write_text("...")
    with pytest.raises(SystemExit, match="already holds other files"):
        cli.main(["configs", str(tmp_path / "thesis")])
    assert copy_configs(ROOT / "configs") == ([], len(shipped_names()))


@pytest.mark.slow
def test_the_wheel_runs_readmes_commands_outside_the_checkout(tmp_path):
    # Build from a copy, so that the checkout gets no build/ or *.egg-info of ours.
    source = tmp_path / "source"
    source.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp_path / "dist", source])  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("lit_seqcls-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"lit_seqcls/configs/{name}" for name in shipped_names()} <= in_wheel

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    # The dependencies (torch, lightning, ...) from this environment, after the package's own
    # site-packages; only a path, so this environment's editable lit_seqcls is not loaded.
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.strip(), "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = _run([python, "-c", "import lit_seqcls, datamodules; print(lit_seqcls.__file__)"])
    assert Path(where.strip()).is_relative_to(venv)

    elsewhere = tmp_path / "elsewhere"  # no configs/ here, no checkout above
    elsewhere.mkdir()
    lit_seqcls = venv / "bin" / "lit-seqcls"
    readme = ["--config", "lit_seqcls:data/synthetic.yaml", "--config", "lit_seqcls:model/cnn.yaml"]
    printed = yaml.safe_load(_run([lit_seqcls, "fit", *readme, "--print_config"], elsewhere))
    assert printed["trainer"]["gradient_clip_val"] == 1.0
    out = _run([lit_seqcls, "fit", *readme, "--trainer.max_epochs", "1", *TINY], elsewhere)
    assert "Best checkpoint" in out and list(elsewhere.glob("logs/lightning_logs/version_0/*"))
    _run([lit_seqcls, "configs", "my_configs"], elsewhere)
    copied = ["--config", "my_configs/data/synthetic.yaml", "--config", "my_configs/model/cnn.yaml"]
    printed = yaml.safe_load(_run([lit_seqcls, "fit", *copied, "--print_config"], elsewhere))
    assert printed["trainer"]["gradient_clip_val"] == 1.0


def _run(command: list, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout
