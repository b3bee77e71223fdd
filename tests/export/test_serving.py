"""Serving a bundle: without torch, and with the rows of ``lit-seqcls predict --ckpt_path``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lit_seqcls.cli import main
from lit_seqcls.export import export_bundle
from lit_seqcls.serving import Bundle, BundleError

ROOT = Path(__file__).resolve().parents[2]
NEW_TEXTS = [
    "a great film", "dull, far too long <br />", "", "café crème", "unseen words only",
    "the plot was dull and far too long and the cast was not fine at all",
]  # fmt: skip
# Fails any import of torch, Lightning & co. in the process it is run in.
BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "lightning", "torchmetrics", "datasets"):
                raise ImportError(f"serving imported {name}")
    sys.meta_path.insert(0, NoTorch())
    """
)


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bundle_predicts_with_torch_import_blocked(checkpoint, tmp_path):
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    expected = Bundle(folder).predict(NEW_TEXTS)
    texts = tmp_path / "new.txt"
    texts.write_text("\n".join(NEW_TEXTS) + "\n", encoding="utf-8")
    out = _python(
        f"""
        import json
        from lit_seqcls.serving import Bundle
        print(json.dumps(Bundle({str(folder)!r}).predict({NEW_TEXTS!r})))
        from lit_seqcls.serving.command import main
        main(["--bundle", {str(folder)!r}, "--data.data_files.predict", {str(texts)!r},
              "--predictions.output", "out.jsonl"])
        assert not any(m.split(".")[0] in ("torch", "lightning") for m in sys.modules)
        """,
        tmp_path,
    )
    assert json.loads(out.splitlines()[0]) == expected
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == NEW_TEXTS
    assert [{"label": r["label"], "probs": r["probs"]} for r in rows] == expected


def test_predict_with_bundle_gives_the_rows_of_predict_from_the_checkpoint(checkpoint, tmp_path):
    saved = torch.load(checkpoint, weights_only=True)
    saved["state_dict"]["temperature"] = torch.tensor(1.7)  # a calibrated model (#18)
    torch.save(saved, checkpoint)
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    assert json.loads((folder / "pipeline.json").read_text())["temperature"] == pytest.approx(1.7)
    new = tmp_path / "new.txt"
    new.write_text("\n".join(NEW_TEXTS) + "\n", encoding="utf-8")
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.logger=false"]
    main(["predict", "--ckpt_path", str(checkpoint), "--data.data_files.predict", str(new),
          "--predictions.output", str(tmp_path / "ckpt.jsonl"),
          f"--trainer.default_root_dir={tmp_path}", *quiet])  # fmt: skip
    main(["predict", "--bundle", str(folder), "--data.data_files.predict", str(new),
          "--predictions.output", str(tmp_path / "bundle.jsonl")])  # fmt: skip
    ckpt_rows = [json.loads(x) for x in (tmp_path / "ckpt.jsonl").read_text().splitlines()]
    rows = [json.loads(x) for x in (tmp_path / "bundle.jsonl").read_text().splitlines()]
    assert [r.keys() for r in rows] == [r.keys() for r in ckpt_rows]
    assert [(r["index"], r["label"], r["text"]) for r in rows] == [
        (r["index"], r["label"], r["text"]) for r in ckpt_rows
    ]
    for row, ckpt_row in zip(rows, ckpt_rows, strict=True):
        assert row["probs"] == pytest.approx(ckpt_row["probs"], abs=1e-5)


def test_predict_with_bundle_never_replaces_a_users_file(checkpoint, tmp_path, cli_error):
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"text": "a great film"}) + "\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    base = ["predict", "--bundle", str(folder), "--data.data_files.predict", str(new)]
    error = cli_error([*base, "--predictions.output", str(notes)])
    assert "already exists" in error and "--predictions.overwrite true" in error
    assert notes.read_text() == "mine"
    error = cli_error([*base, "--predictions.output", str(new)])
    assert "one of the input files" in error
    main([*base, "--predictions.output", str(tmp_path / "p.jsonl")])
    main([*base, "--predictions.output", str(tmp_path / "p.jsonl")])  # our own earlier file


def test_bad_input_is_named(checkpoint, tmp_path, cli_error):
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    error = cli_error(["predict", "--bundle", str(folder), "--data.data_files.predict", str(bad)])
    assert "bad.jsonl row 2: field 'text' is missing" in error
    with pytest.raises(BundleError, match="not a lit-seqcls bundle"):
        Bundle(tmp_path, verify=False)
    with pytest.raises(BundleError, match=r"holds no checksums\.sha256"):
        Bundle(tmp_path)
    with pytest.raises(BundleError, match="list of texts"):
        Bundle(folder).predict("one text")


@pytest.mark.slow
def test_a_venv_with_only_the_serve_packages_predicts(checkpoint, tmp_path):
    """``pip install --no-deps lit-seqcls`` + onnxruntime, tokenizers, numpy: no torch at all."""
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    expected = Bundle(folder).predict(NEW_TEXTS)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    serve = ["onnxruntime>=1.20", "tokenizers>=0.23,<0.24", "numpy>=1.26"]
    subprocess.run([*pip, *serve], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, timeout=900)
    code = f"""
        import json, importlib.util
        assert importlib.util.find_spec("torch") is None
        from lit_seqcls.serving import Bundle
        print(json.dumps(Bundle({str(folder)!r}).predict({NEW_TEXTS!r})))
    """
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
