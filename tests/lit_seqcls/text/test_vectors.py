import gzip

import pytest
import torch

from lit_seqcls.shipped_configs import shipped_config
from lit_seqcls.text.vectors import load_vectors
from lit_seqcls.validation import ConfigValueError

SYNTHETIC = shipped_config("data/synthetic.yaml")
VOCAB = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "zebra": 4}


def test_glove_rows_land_on_token_ids_and_coverage_counts_found_words(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 1 2 3\ndog 4 5 6\n")
    vec = load_vectors(path, VOCAB, spread=None)
    assert vec.weights.shape == (5, 3)
    assert vec.weights[2].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert vec.weights[3].tolist() == [1.0, 2.0, 3.0]
    assert vec.weights[0].abs().sum() == 0  # [PAD] stays zero
    assert vec.found == 2 and vec.coverage == pytest.approx(2 / 3)


def test_word2vec_header_and_gzip(tmp_path):
    path = tmp_path / "w2v.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("2 2\nThe 1 1\ncat 2 2\n")
    vec = load_vectors(path, VOCAB, lowercase=True, spread=None)
    assert vec.weights[2].tolist() == [1.0, 1.0] and vec.found == 2


def test_the_files_vectors_get_the_random_rows_spread_with_angles_kept(tmp_path):
    # word2vec trained on IMDB has std 1.46: given to a CNN as is, it trained far worse than a
    # random start (0.79 vs 0.91 validation after two epochs), so one factor brings it to 0.1.
    path = tmp_path / "v.txt"
    path.write_text("the 3 0 -3\ncat 6 6 0\n")
    raw = load_vectors(path, VOCAB, spread=None).weights
    scaled = load_vectors(path, VOCAB).weights
    assert scaled[2:4].std().item() == pytest.approx(0.1)
    ratio = scaled[2:4] / raw[2:4]
    assert torch.allclose(ratio[~ratio.isnan()], ratio[0, 0])  # one factor: angles kept
    assert torch.equal(scaled[4], raw[4])  # the random row of a missing word is unchanged


def test_bad_vector_files_are_named(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2\ncat 1 2 3\n")
    with pytest.raises(ValueError, match=r"v\.txt, line 2: 3 values, but the first vector had 2"):
        load_vectors(path, VOCAB)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vectors(tmp_path / "none.txt", VOCAB)


def test_a_missing_vectors_file_is_one_line_that_says_how_to_make_it(tmp_path, cli_error):
    # It was a bare FileNotFoundError: fit (and each of compare's runs) printed a traceback.
    args = ["fit", "--config", str(SYNTHETIC), "--data.init_args.vectors", "none.txt"]
    message = cli_error([*args, "--trainer.fast_dev_run=1"])
    assert "word vectors file none.txt does not exist" in message
    assert "lit-seqcls vectors --config <data config> --output none.txt" in message


def test_model_starts_from_the_datamodule_vectors(tmp_path):
    import json

    import lightning as L

    from datamodules import TextDataModule
    from lit_seqcls import SequenceClassifier

    rows = [{"text": f"{w} cat", "label": w} for w in ["good", "bad"] * 10]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows))
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 1 1 1\nbad -1 -1 -1 -1\ncat 0 1 0 1\n")
    dm = TextDataModule(data_files={"train": str(train)}, vectors=str(glove))
    model = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=4)
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, dm)
    good, bad = dm.tokenizer.token_to_id("good"), dm.tokenizer.token_to_id("bad")
    row = model.network.embedding.weight[good]
    assert torch.allclose(row, row[0]) and row[0] > 0  # the file's direction, scaled
    assert torch.allclose(model.network.embedding.weight[bad], -row)
    assert dm.vectors_coverage == 1.0

    wrong = SequenceClassifier(dm.vocab_size, dm.num_classes, encoder="cnn", embedding_dim=8)
    # A UserError: the CLI prints it as one line (it was a ValueError with a traceback).
    with pytest.raises(ConfigValueError, match=r"--model\.embedding_dim 4"):
        wrong.network.load_pretrained_embeddings(torch.zeros(dm.vocab_size, 4))
