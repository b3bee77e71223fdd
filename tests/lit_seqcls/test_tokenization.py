import pytest
from tokenizers import Tokenizer

from lit_seqcls.tokenization import UNK_ID, check_special_tokens, encode, train_word_tokenizer

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
    from lit_seqcls.tokenization import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["lower lowest newer newest wider widest"] * 5, vocab_size=60)
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[UNK]") == UNK_ID
    ids = encode(tok, ["newer"], None)[0]
    word = train_word_tokenizer(TEXTS)
    assert encode(word, ["lowerest"], None) == [[UNK_ID]]
    assert UNK_ID not in encode(tok, ["lowerest"], None)[0] and ids


def test_load_tokenizer_from_file_or_json_and_checks_specials(tmp_path):
    from tokenizers import models

    from lit_seqcls.tokenization import load_tokenizer, tokenizer_json

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


def test_loaded_tokenizer_padding_does_not_leak_into_ids(tmp_path):
    from lit_seqcls.tokenization import load_tokenizer

    tok = train_word_tokenizer(TEXTS)
    tok.enable_padding(length=20)
    assert len(encode(load_tokenizer(tok.to_str()), ["the cat"], None)[0]) == 2


def test_tokenizer_json_ignores_the_truncation_encode_sets():
    from lit_seqcls.tokenization import tokenizer_json

    tok = train_word_tokenizer(TEXTS)
    before = tokenizer_json(tok)
    encode(tok, TEXTS, max_length=3)
    assert tokenizer_json(tok) == before
