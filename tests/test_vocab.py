"""The word-level vocabulary: round trips, specials and its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError
from deltamix.data.vocab import Vocabulary


def test_encode_decode_and_unknown() -> None:
    vocab = Vocabulary.build(["jump twice", "walk left twice"])
    assert vocab.tokens[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    assert vocab.tokens[4] == "twice"  # most frequent first
    assert vocab.decode(vocab.encode("walk twice")) == "walk twice"
    assert vocab.encode("run") == [vocab.unk_id]
    assert vocab.decode([vocab.bos_id, *vocab.encode("jump"), vocab.eos_id, *vocab.encode("walk")]) == "jump"


def test_save_load_round_trip_and_bad_file(tmp_path: Path) -> None:
    vocab = Vocabulary.build(["a b c"])
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").tokens == vocab.tokens
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(DataFormatError, match=r"bad\.json"):
        Vocabulary.load(tmp_path / "bad.json")
