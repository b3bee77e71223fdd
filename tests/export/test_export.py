"""``lit-seqcls export``: every encoder's bundle gives PyTorch's logits, for every text length."""

from __future__ import annotations

import json
import random
import subprocess

import numpy as np
import pytest
import torch

from lit_seqcls.encoders import ENCODERS
from lit_seqcls.export import ExportError, export_bundle
from lit_seqcls.export.graph import TOLERANCE, load_runner, mixed_batches
from lit_seqcls.model import SequenceClassifier
from lit_seqcls.runtime.outputs import OutputFileError
from lit_seqcls.serving import Bundle, BundleError
from lit_seqcls.text.encoding import TextEncoder
from lit_seqcls.text.tokenization import load_tokenizer

CORPUS = [
    "a great film with a fine cast",
    "the plot was dull and far too long",
    "Loved it! <br /><br />Would watch again",
    "café crème, naïve résumé",
    "worst acting i have seen in years",
    "an ok movie",
]  # conftest's corpus: the tokenizer's vocabulary
CLASSES = ["neg", "pos", "meh"]
MAX_LENGTH = 12


@pytest.fixture
def write_checkpoint(kit):
    assert kit.CORPUS == CORPUS and kit.CLASSES == CLASSES and kit.MAX_LENGTH == MAX_LENGTH
    return kit.write_checkpoint


def _texts_of_every_length(bundle: Bundle) -> list[str]:
    """One text per length 1..MAX_LENGTH tokens (plus longer ones, truncated), shuffled."""
    words = [w for w in bundle._tokenizer.get_vocab() if w.isalpha()]
    rng = random.Random(0)
    texts = [" ".join(rng.choice(words) for _ in range(n)) for n in range(1, MAX_LENGTH + 4)]
    rng.shuffle(texts)
    return texts


def _torch_logits(model: SequenceClassifier, ids: list[list[int]]) -> np.ndarray:
    """Each text alone, unpadded: the reference padding must not change."""
    with torch.no_grad():
        rows = [model(torch.tensor([x]), torch.tensor([len(x)])).logits[0] for x in ids]
    return torch.stack(rows).numpy()


@pytest.mark.parametrize(
    ("encoder", "args"), [(name, None) for name in ENCODERS] + [("swem", {"ngram_buckets": 50})]
)
def test_bundle_logits_equal_pytorch_for_every_length_in_mixed_batches(
    encoder, args, write_checkpoint, tmp_path
):
    # swem with hashed bigrams: the graph computes the bigram ids from input_ids itself.
    ckpt = write_checkpoint(tmp_path / "model.ckpt", encoder, encoder_args=args)
    folder = export_bundle(ckpt, tmp_path / "bundle")
    model = SequenceClassifier.load_from_checkpoint(ckpt).eval()
    bundle = Bundle(folder, batch_size=4)  # batches of 4 texts of different lengths

    texts = _texts_of_every_length(bundle) + CORPUS
    ids = bundle.encode(texts)
    assert sorted({len(x) for x in ids}) == list(range(1, MAX_LENGTH + 1))
    expected = _torch_logits(model, ids)
    np.testing.assert_allclose(bundle.logits(texts), expected, atol=TOLERANCE, rtol=0)

    # The graph itself, on batches that mix every length 1..16 unsorted (short texts padded).
    run = load_runner(folder / "model.onnx", "onnx")
    for batch, lengths in mixed_batches(model.network.embedding.num_embeddings, 16, seed=1):
        with torch.no_grad():
            alone = [model(batch[i : i + 1, :n], lengths[i : i + 1]).logits[0] for i, n in
                     enumerate(lengths.tolist())]  # fmt: skip
        got = run(batch.numpy(), lengths.numpy())
        np.testing.assert_allclose(got, torch.stack(alone).numpy(), atol=TOLERANCE, rtol=0)

    # Labels on the fixture texts: the bundle's rows pick PyTorch's argmax.
    labels = [row["label"] for row in bundle.predict(CORPUS)]
    assert labels == [CLASSES[i] for i in _torch_logits(model, bundle.encode(CORPUS)).argmax(1)]


@pytest.mark.parametrize("side", ["right", "left"])
def test_serving_ids_equal_the_training_ids(side, write_checkpoint, tmp_path):
    ckpt = write_checkpoint(tmp_path / "m.ckpt", "swem", max_length=4, truncation_side=side)
    bundle = Bundle(export_bundle(ckpt, tmp_path / "b"))
    pipeline = torch.load(ckpt, weights_only=True)["text_pipeline"]
    texts = [
        *CORPUS, "", "   ", "<br />", "UPPER Case <b>bold</b> words", "é" * 3, "[UNK] [PAD] x",
        "café " * 100, "word " * (4 * 64 + 10) + "tail end",  # longer than max_length × 64 chars
    ]  # fmt: skip
    from datamodules.base import _HTML_TAG

    normal = [_HTML_TAG.sub(" ", t) for t in texts]  # the DataModule's strip_html
    expected = TextEncoder(load_tokenizer(pipeline["tokenizer"]), 4, side)(normal)
    assert bundle.encode(texts) == expected


def test_html_pattern_is_the_datamodules(tmp_path):
    from datamodules.base import _HTML_TAG
    from lit_seqcls.serving.bundle import HTML_TAG_PATTERN

    assert _HTML_TAG.pattern == HTML_TAG_PATTERN


def test_bundle_files_and_checksums(checkpoint, tmp_path):
    folder = export_bundle(checkpoint, tmp_path / "bundle")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "MODEL_CARD.md", "checksums.sha256", "model.onnx", "pipeline.json", "tokenizer.json"
    ]  # fmt: skip
    listed = (folder / "checksums.sha256").read_text()
    assert sorted(line.split("  ")[1] for line in listed.splitlines()) == [
        "MODEL_CARD.md", "model.onnx", "pipeline.json", "tokenizer.json"
    ]  # fmt: skip
    check = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=folder, capture_output=True)
    assert check.returncode == 0, check.stdout
    pipeline = json.loads((folder / "pipeline.json").read_text())
    assert pipeline["model"]["opset"] == 17 and pipeline["model"]["format"] == "onnx"
    assert pipeline["task"] == "single_label" and pipeline["temperature"] == 1.0
    assert pipeline["thresholds"] is None and pipeline["truncation_side"] == "right"
    assert pipeline["class_names"] == CLASSES and pipeline["max_length"] == MAX_LENGTH
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary folder is gone

    # A changed file is refused, by name, before anything is served.
    with (folder / "tokenizer.json").open("a") as f:
        f.write(" ")
    with pytest.raises(BundleError, match=r"tokenizer\.json does not match its checksum"):
        Bundle(folder)


def test_a_folder_with_other_files_is_refused_unless_overwrite(checkpoint, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputFileError, match="--overwrite true"):
        export_bundle(checkpoint, folder)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]

    export_bundle(checkpoint, folder, overwrite=True)  # only the bundle's names are written
    assert (folder / "thesis.tex").read_text() == "years of work"
    Bundle(folder)
    export_bundle(checkpoint, folder)  # an earlier bundle may be exported over
    export_bundle(checkpoint, tmp_path / "empty")  # a new folder
    assert not list(tmp_path.glob(".*.tmp"))


def test_calibration_and_multi_label_come_from_the_checkpoint(write_checkpoint, tmp_path):
    extra_state = {"temperature": torch.tensor(2.5), "thresholds": torch.tensor([0.2, 0.9, 0.5])}
    ckpt = write_checkpoint(tmp_path / "m.ckpt", "swem")
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["state_dict"].update(extra_state)  # the buffers calibration (#18) adds
    checkpoint["text_pipeline"]["task"] = "multi_label"
    raw = tmp_path / "raw.ckpt"
    torch.save(checkpoint, raw)
    ckpt.unlink()
    # The model class may not know these buffers yet: export reads them from the checkpoint.
    checkpoint["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if k not in extra_state
    }
    torch.save(checkpoint, ckpt)
    from lit_seqcls.export.bundle import calibration

    task, temperature, thresholds = calibration(
        torch.load(raw, weights_only=True), checkpoint["text_pipeline"]
    )
    assert (task, temperature) == ("multi_label", 2.5)
    assert thresholds == pytest.approx([0.2, 0.9, 0.5])

    folder = export_bundle(ckpt, tmp_path / "b")
    pipeline = json.loads((folder / "pipeline.json").read_text())
    pipeline.update(temperature=2.5, thresholds=[0.2, 0.9, 0.5])
    (folder / "pipeline.json").write_text(json.dumps(pipeline))
    bundle = Bundle(folder, verify=False)
    logits = bundle.logits(CORPUS)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64) / 2.5))
    for row, p in zip(bundle.predict(CORPUS), probs, strict=True):
        assert list(row["probs"].values()) == pytest.approx(p.tolist(), abs=1e-6)
        assert row["labels"] == [
            c for c, q, t in zip(CLASSES, p, [0.2, 0.9, 0.5], strict=True) if q >= t
        ]


def test_torchscript_format(write_checkpoint, tmp_path):
    ckpt = write_checkpoint(tmp_path / "m.ckpt", "gru")
    folder = export_bundle(ckpt, tmp_path / "ts", fmt="torchscript")  # checked against PyTorch
    assert (folder / "model.torchscript.pt").is_file()
    with pytest.raises(BundleError, match="only an ONNX bundle is served without torch"):
        Bundle(folder)


@pytest.mark.slow  # torch.export takes 10-30 s per model here
def test_pt2_format_works_or_refuses_and_writes_nothing(write_checkpoint, tmp_path):
    # Measured (torch 2.13): cnn and swem export; the recurrent encoders are refused, since
    # torch.export fixes their sequence length.
    cnn = export_bundle(write_checkpoint(tmp_path / "c.ckpt", "cnn"), tmp_path / "c", fmt="pt2")
    assert (cnn / "model.pt2").is_file()
    with pytest.raises(ExportError, match="--format onnx"):
        export_bundle(write_checkpoint(tmp_path / "g.ckpt", "gru"), tmp_path / "g", fmt="pt2")
    assert not (tmp_path / "g").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_checkpoint_without_text_pipeline_is_refused(write_checkpoint, tmp_path):
    ckpt = write_checkpoint(tmp_path / "m.ckpt", "swem")
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["text_pipeline"]
    torch.save(checkpoint, ckpt)
    with pytest.raises(ValueError, match="holds no text pipeline"):
        export_bundle(ckpt, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_missing_checkpoint_is_one_error_block(tmp_path, cli_error):
    error = cli_error(["export", "--ckpt_path", "nope.ckpt", "--output_dir", str(tmp_path / "b")])
    assert "--ckpt_path nope.ckpt does not exist" in error
    assert not (tmp_path / "b").exists()


def test_a_checkpoint_written_by_a_real_fit_exports_and_serves_like_predict(tmp_path):
    # The other tests write checkpoints by hand; this one goes through the DataModule and the
    # Trainer, so a text pipeline the export does not know (a newer version, a new field) fails
    # here. It once refused every checkpoint after the pipeline's version went to 2.
    import lightning as L

    from datamodules import TextDataModule

    rows = [{"text": f"{w} film number {i} of many", "label": w} for i, w in
            enumerate(["good", "bad"] * 20)]  # fmt: skip
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows))
    dm = TextDataModule(data_files={"train": str(train)}, batch_size=8, max_length=3,
                        truncation_side="left", cache_dir=str(tmp_path / "cache"))  # fmt: skip
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="gru", embedding_dim=8,
                               class_names=dm.class_names)  # fmt: skip
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)

    bundle = Bundle(export_bundle(ckpt, tmp_path / "bundle"))
    texts = ["good film number 3 of many", "bad", "a b c d e bad film"]
    model.eval()
    with torch.no_grad():
        ids = TextEncoder(dm.tokenizer, 3, "left")(texts)  # the end of each text, as trained
        expected = [model(torch.tensor([x]), torch.tensor([len(x)])).logits.softmax(-1)[0]
                    for x in ids]  # fmt: skip
    for row, probs in zip(bundle.predict(texts), expected, strict=True):
        assert [row["probs"][c] for c in dm.class_names] == pytest.approx(probs.tolist(), abs=1e-4)
