"""Subword (BPE) tokenizer: Vocabulary interface, exact detokenization, save/load, BLEU on decoded output."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError
from deltamix.data.tokenization import (
    SubwordTokenizer,
    load_tokenizer,
    save_tokenizer,
    train_joint_tokenizer,
)
from deltamix.data.vocab import Vocabulary
from deltamix.training.metrics import corpus_bleu

PAIRS = [
    (
        "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
        "A man in an orange hat starring at something.",
    ),
    ("Zwei junge weiße Männer sind im Freien.", "Two young, White males are outside."),
    (
        "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
        "A little girl climbing into a wooden playhouse.",
    ),
    ("Ein Hund läuft über das Gras.", "A dog runs across the grass."),
] * 5


@pytest.fixture(scope="module")
def tokenizer() -> SubwordTokenizer:
    return train_joint_tokenizer(PAIRS, vocab_size=200, min_frequency=1)


def test_vocabulary_interface_and_special_ids(tokenizer: SubwordTokenizer) -> None:
    words = Vocabulary.build(["a b"])
    for tok in (tokenizer, words):
        assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    assert tokenizer.tokens[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert 4 < len(tokenizer) <= 200
    ids = tokenizer.encode("Ein Hund.")
    assert ids and all(4 <= i < len(tokenizer) for i in ids)  # no BOS/EOS added
    assert tokenizer.encode_batch(["Ein Hund.", "A dog."]) == [ids, tokenizer.encode("A dog.")]


def test_decode_restores_raw_text_exactly(tokenizer: SubwordTokenizer) -> None:
    for source, target in PAIRS[:4]:
        for text in (source, target):
            assert tokenizer.decode(tokenizer.encode(text)) == text
    # An unseen word is split into known pieces and still restored.
    assert tokenizer.decode(tokenizer.encode("Ein Holzhund, Gras.")) == "Ein Holzhund, Gras."


def test_punctuation_is_split_off_words(tokenizer: SubwordTokenizer) -> None:
    pieces = tokenizer.tokenize("Hut, Holz.")
    assert "," in pieces and "." in pieces
    assert not any(p.endswith((",", ".")) and len(p) > 1 for p in pieces)


def test_decode_stops_at_eos_drops_pad_bos_keeps_unk(tokenizer: SubwordTokenizer) -> None:
    ids = tokenizer.encode("A dog")
    assert tokenizer.decode([tokenizer.bos_id, *ids, tokenizer.eos_id, *ids]) == "A dog"
    assert tokenizer.decode([*ids, tokenizer.pad_id, tokenizer.pad_id]) == "A dog"
    unk = tokenizer.encode("A \u2603")  # a character never seen in training
    assert tokenizer.unk_id in unk
    assert tokenizer.decode(unk) == "A <unk>"


def test_save_and_load_round_trip(tokenizer: SubwordTokenizer, tmp_path: Path) -> None:
    path = save_tokenizer(tokenizer, tmp_path)
    assert path.name == "tokenizer.json"
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, SubwordTokenizer)
    assert loaded.tokens == tokenizer.tokens
    text = "Zwei junge Männer, ein Hund."
    assert loaded.encode(text) == tokenizer.encode(text)
    # Word vocabularies go through the same helpers.
    words = Vocabulary.build(["( A , _capital ( A ) )"])
    other = tmp_path / "words"
    save_tokenizer(words, other)
    assert load_tokenizer(other).tokens == words.tokens


def test_bad_tokenizer_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "absent.json")
    with pytest.raises(DataFormatError, match=r"no tokenizer\.json or vocab\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a JSON tokenizer file"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0"}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="not a usable tokenizers JSON file"):
        load_tokenizer(tmp_path)


def test_vocab_size_must_exceed_specials() -> None:
    with pytest.raises(ValueError, match="vocab_size must exceed the 4 special tokens"):
        SubwordTokenizer.train(["a b"], vocab_size=4)


def test_bleu_hand_checked_cases() -> None:
    """sacrebleu BLEU against values worked out by hand (13a tokenization leaves these unchanged)."""
    # Brevity penalty only: all n-gram precisions 1, hypothesis 6 tokens, reference 7.
    score, signature = corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert score == pytest.approx(100 * 2.718281828459045 ** (1 - 7 / 6), abs=1e-6)
    assert signature.startswith("nrefs:1|") and "tok:13a" in signature
    # Corpus level: n-gram counts are summed over sentences before the precisions are taken:
    # unigrams 4+3 of 8, bigrams 3+1 of 6, trigrams 2+0 of 4, 4-grams 1+0 of 2.
    score, _ = corpus_bleu(["a b c d", "e f g h"], ["a b c d", "e f x h"])
    assert score == pytest.approx(100 * (7 / 8 * 4 / 6 * 2 / 4 * 1 / 2) ** 0.25, abs=1e-6)


def test_bleu_on_detokenized_output_is_perfect_for_round_trips(tokenizer: SubwordTokenizer) -> None:
    references = [target for _, target in PAIRS[:4]]
    hypotheses = [tokenizer.decode(tokenizer.encode(r)) for r in references]
    score, _ = corpus_bleu(hypotheses, references)
    assert score == pytest.approx(100.0)
