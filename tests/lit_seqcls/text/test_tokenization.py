import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from lit_seqcls.text.encoding import encode
from lit_seqcls.text.tokenization import UNK_ID, check_special_tokens, train_word_tokenizer

TEXTS = ["The cat sat on the mat.", "A dog barked at the cat!", "Café au lait"]


def test_special_token_ids_are_fixed():
    tok = train_word_tokenizer(TEXTS)
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[UNK]") == UNK_ID


def test_empty_or_unknown_text_is_one_unk_never_zero_length():
    tok = train_word_tokenizer(TEXTS)
    ids = encode(tok, ["", "   ", "\n\t", "zebra"], max_length=10)
    assert ids == [[UNK_ID], [UNK_ID], [UNK_ID], [UNK_ID]]


def test_truncation_and_no_truncation():
    tok = train_word_tokenizer(TEXTS)
    assert len(encode(tok, [TEXTS[0]], max_length=3)[0]) == 3
    assert len(encode(tok, [TEXTS[0]], max_length=None)[0]) == 7  # 6 words + "."


def test_vocab_cap_and_min_frequency():
    tok = train_word_tokenizer(TEXTS, vocab_size=5)
    assert tok.get_vocab_size() == 5
    tok = train_word_tokenizer(TEXTS, min_frequency=2)
    assert set(tok.get_vocab()) == {"[PAD]", "[UNK]", "the", "cat"}


def test_lowercase_and_unicode_normalisation_are_configurable():
    cased = train_word_tokenizer(["Cafe\u0301 CAT"], lowercase=False, unicode_normalization=None)
    assert "CAT" in cased.get_vocab() and "cat" not in cased.get_vocab()
    # NFKC composes "e" + combining accent into "é": both spellings get the same id.
    nfkc = train_word_tokenizer(["Cafe\u0301"])
    assert encode(nfkc, ["caf\u00e9"], None) == encode(nfkc, ["Cafe\u0301"], None) != [[UNK_ID]]


def test_json_round_trip_gives_identical_ids():
    tok = train_word_tokenizer(TEXTS)
    again = Tokenizer.from_str(tok.to_str())
    assert encode(again, TEXTS, 16) == encode(tok, TEXTS, 16)


def test_check_special_tokens_rejects_foreign_tokenizer():
    from tokenizers import models

    bad = Tokenizer(models.WordLevel({"hello": 0, "[UNK]": 1}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match=r"\[PAD\]"):
        check_special_tokens(bad, "tokenizer.json")


def test_bpe_splits_unknown_words_into_subwords_instead_of_unk():
    from lit_seqcls.text.tokenization import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["lower lowest newer newest wider widest"] * 5, vocab_size=60)
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[UNK]") == UNK_ID
    ids = encode(tok, ["newer"], None)[0]
    word = train_word_tokenizer(TEXTS)
    assert encode(word, ["lowerest"], None) == [[UNK_ID]]
    assert UNK_ID not in encode(tok, ["lowerest"], None)[0] and ids


def test_load_tokenizer_from_file_or_json_and_checks_specials(tmp_path):
    from tokenizers import models

    from lit_seqcls.text.tokenization import load_tokenizer, tokenizer_json

    tok = train_word_tokenizer(TEXTS)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    assert tokenizer_json(load_tokenizer(str(path))) == tokenizer_json(tok)
    assert load_tokenizer(tok.to_str()).get_vocab() == tok.get_vocab()

    bad = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1}, unk_token="[UNK]"))
    bad.save(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match=r"bad\.json must map '\[PAD\]' to id 0"):
        load_tokenizer(str(tmp_path / "bad.json"))
    with pytest.raises(FileNotFoundError, match=r"nope\.json does not exist"):
        load_tokenizer(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("vocab", "problem"),
    [
        ({"[PAD]": 0, "[UNK]": 1, "good": 2, "bad": 7}, r"id 3 is missing and 'bad' has id 7"),
        ({"[PAD]": 0, "[UNK]": 1, "good": 3}, r"id 2 is missing and 'good' has id 3"),
    ],
)
def test_a_tokenizer_file_with_gaps_in_its_ids_is_refused_naming_the_id(vocab, problem, tmp_path):
    # Before: it passed the [PAD]/[UNK] check and the embedding (vocab_size rows) failed later,
    # inside torch.embedding, with an index error on the first batch holding the word.
    from tokenizers import models

    from datamodules import SyntheticDataModule
    from lit_seqcls.text.tokenization import load_tokenizer

    path = tmp_path / "gaps.json"
    Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")).save(str(path))
    message = rf"gaps\.json: token ids must be 0\.\.{len(vocab) - 1}, .*but {problem}\. Number"
    with pytest.raises(ValueError, match=message):
        load_tokenizer(str(path))
    with pytest.raises(ValueError, match=message):  # when the model's size is linked, before fit
        _ = SyntheticDataModule(tokenizer_file=str(path)).vocab_size


def test_loaded_tokenizer_padding_does_not_leak_into_ids(tmp_path):
    from lit_seqcls.text.tokenization import load_tokenizer

    tok = train_word_tokenizer(TEXTS)
    tok.enable_padding(length=20)
    assert len(encode(load_tokenizer(tok.to_str()), ["the cat"], None)[0]) == 2


def test_tokenizer_json_ignores_the_truncation_encode_sets():
    from lit_seqcls.text.tokenization import tokenizer_json

    tok = train_word_tokenizer(TEXTS)
    before = tokenizer_json(tok)
    encode(tok, TEXTS, max_length=3)
    assert tokenizer_json(tok) == before


# ---- the fast encoder gives the tokenizer's own ids ---------------------------------------------
def _reference(tok, texts, max_length, side="right"):
    """The ids before the speed-ups: the tokenizer alone, truncated, an empty text as [UNK]."""
    if max_length is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length, direction=side)
    return [e.ids or [UNK_ID] for e in tok.encode_batch_fast(list(texts), add_special_tokens=False)]


# Characters where Python and `tokenizers` disagree (unicode \w and \s, final sigma, combining
# marks, compatibility forms) and the added tokens' text: the fast path must still agree.
TRICKY = [
    *"aZ09_ .,!?'\"<>[]-\t\n\r\v\f\x00\x1c\x1f\x7f",
    *"éÉßİıΣσςǅﬁ´¨\u0301\u0308\u00a0\u0085\u2028\u3000\u200b\u200d’—…½²Ａ中文😀\ufeff",
    "[PAD]", "[UNK]", "[pad]", "Cafe\u0301", "ΟΔΟΣ", "don´t", "the cat", "THE", " cat's ",
]  # fmt: skip
RANDOM_TEXT = st.lists(st.sampled_from(TRICKY) | st.text(max_size=4), max_size=40).map("".join)


@pytest.fixture(scope="module")
def tokenizers():
    from lit_seqcls.text.tokenization import train_bpe_tokenizer

    corpus = ["".join(TRICKY[i:] + TRICKY[:i]) for i in range(len(TRICKY))] + TEXTS_FOR_VOCAB
    return {
        "word": train_word_tokenizer(corpus),
        "word-cased-raw": train_word_tokenizer(corpus, lowercase=False, unicode_normalization=None),
        "word-nfd": train_word_tokenizer(corpus, unicode_normalization="NFD"),
        "bpe": train_bpe_tokenizer(corpus, vocab_size=200),
    }


TEXTS_FOR_VOCAB = ["the cat sat on the mat", "a café, über naïve", "ΟΔΟΣ οδος σ ς", "中文 ﬁne"]


@settings(max_examples=150, deadline=None, database=None)
@given(
    texts=st.lists(RANDOM_TEXT, min_size=1, max_size=6),
    kind=st.sampled_from(["word", "word-cased-raw", "word-nfd", "bpe"]),
    max_length=st.sampled_from([None, 1, 2, 5, 50]),
    side=st.sampled_from(["right", "left"]),
)
def test_fast_encoding_gives_the_tokenizers_own_ids(tokenizers, texts, kind, max_length, side):
    # `left` is checked against the tokenizer's own left truncation (keep the last tokens).
    tok = tokenizers[kind]
    assert encode(tok, texts, max_length, side) == _reference(tok, texts, max_length, side)


def test_left_truncation_keeps_the_last_tokens_and_right_the_first():
    tok = train_word_tokenizer(["one two three four five"])
    ids = {
        side: encode(tok, ["one two three four five", "two"], 2, side) for side in ("right", "left")
    }
    assert [tok.decode(x) for x in ids["right"]] == ["one two", "two"]
    assert [tok.decode(x) for x in ids["left"]] == ["four five", "two"]


def test_an_unknown_truncation_side_is_refused_by_name():
    with pytest.raises(ValueError, match="truncation_side must be one of"):
        encode(train_word_tokenizer(TEXTS), TEXTS, 3, "middle")


def test_every_ascii_character_splits_as_the_tokenizer_does():
    contexts = [f"{a}{c}{b}" for c in map(chr, range(128)) for a in ("x", "!", " ") for b in "y?"]
    tok = train_word_tokenizer(contexts)  # every piece is in the vocabulary: ids show the split
    assert encode(tok, contexts, None) == _reference(tok, contexts, None)


def test_the_fast_path_serves_our_word_pipeline_only():
    from tokenizers import models, pre_tokenizers

    from lit_seqcls.text.encoding import _AsciiWordLevel
    from lit_seqcls.text.tokenization import train_bpe_tokenizer

    assert _AsciiWordLevel.of(train_word_tokenizer(TEXTS)) is not None
    assert _AsciiWordLevel.of(train_bpe_tokenizer(TEXTS, vocab_size=50)) is None
    other = train_word_tokenizer(TEXTS)
    other.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    assert _AsciiWordLevel.of(other) is None
    bare = Tokenizer(models.WordLevel({"[UNK]": 0}, "[UNK]"))  # no normalizer, no splitting
    assert _AsciiWordLevel.of(bare) is None
    bare.pre_tokenizer = pre_tokenizers.Whitespace()
    assert _AsciiWordLevel.of(bare) is not None


def test_a_text_holding_a_special_token_keeps_the_tokenizers_ids():
    # `tokenizers` matches added tokens in the raw text: "[PAD]" in a review becomes id 0.
    tok = train_word_tokenizer(TEXTS)
    texts = ["the [PAD] cat", "[UNK]", "x[PAD]y café", "the [pad] cat"]
    assert encode(tok, texts, 8) == _reference(tok, texts, 8)
    assert encode(tok, texts, 8)[0][1] == 0


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("max_length", [400, 16])  # 16: most reviews are cut before tokenizing
def test_real_texts_get_the_tokenizers_own_ids(max_length):
    import gzip
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    data = Path(__file__).resolve().parents[4] / "shared" / "data"
    if not data.is_dir():
        pytest.skip(f"{data} is not here")
    imdb = [
        text.replace("<br />", " ")
        for split in ("train", "test", "unsupervised")
        for text in pq.read_table(data / f"imdb/plain_text/{split}-00000-of-00001.parquet")[
            "text"
        ].to_pylist()
    ]
    newsgroups = []
    for split in ("train", "test"):
        with gzip.open(data / f"20_newsgroups/{split}.jsonl.gz", "rt") as lines:
            newsgroups += [json.loads(line)["text"] for line in lines]
    for texts in (imdb, newsgroups):
        tok = train_word_tokenizer(texts[:20_000], min_frequency=2)
        assert encode(tok, texts, max_length) == _reference(tok, texts, max_length)
