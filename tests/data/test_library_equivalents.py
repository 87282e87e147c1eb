"""Where a library could replace our data code: the measured difference that keeps ours (see each file's note)."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from deltamix.data.vocab import SPECIALS, Vocabulary


def _word_level(texts: list[str]) -> list[str]:
    """The tokens of a tokenizers WordLevel vocabulary trained on ``texts``, in id order."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=list(SPECIALS)))
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.get)


def test_word_level_trainer_orders_ties_otherwise() -> None:
    """Same specials and frequency order, but tied counts: alphabetical there, first-seen here, so
    the same data would get other token ids than recorded runs used."""
    texts = ["walk jump", "jump walk run", "look"]
    assert Vocabulary.build(texts).tokens == [*SPECIALS, "walk", "jump", "run", "look"]
    assert _word_level(texts) == [*SPECIALS, "jump", "walk", "look", "run"]
    untied = ["jump jump jump walk walk run"]
    assert Vocabulary.build(untied).tokens == _word_level(untied)  # without ties they agree
