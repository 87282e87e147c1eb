"""A word-level vocabulary with special tokens, saved as JSON (SCAN, GeoQuery and other short-token data)."""

# Kept over tokenizers' WordLevel(Trainer): it orders tied counts alphabetically, ours first-seen, so ids differ (tests/data/test_library_equivalents.py).

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_write_json

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def strip_special(ids: Iterable[int], pad_id: int, bos_id: int, eos_id: int) -> list[int]:
    """The ids of an output sequence up to its first EOS, without PAD and BOS (what every decode shows)."""
    kept = []
    for i in ids:
        i = int(i)
        if i == eos_id:
            break
        if i not in (pad_id, bos_id):
            kept.append(i)
    return kept


class Vocabulary:
    """Maps whitespace tokens to ids; ids 0-3 are ``<pad> <s> </s> <unk>``.

    Every tokenizer the seq2seq code uses offers this interface: ``pad_id, bos_id, eos_id, unk_id``,
    ``len()``, ``encode(text) -> list[int]`` (no BOS/EOS) and ``decode(ids) -> str``.

    >>> vocab = Vocabulary.build(["jump twice", "walk"])
    >>> vocab.decode(vocab.encode("walk twice"))
    'walk twice'
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the special tokens {SPECIALS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """A vocabulary of the whitespace tokens in ``texts`` seen at least ``min_count`` times,
        most frequent first (ties in first-seen order, so the result is deterministic)."""
        counts = Counter(token for text in texts for token in text.split())
        kept = [
            token for token, count in counts.most_common() if count >= min_count and token not in SPECIALS
        ]
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of the whitespace tokens of ``text`` (unknown tokens map to ``<unk>``)."""
        return [self.index.get(token, self.unk_id) for token in text.split()]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, stopping at EOS and dropping PAD/BOS."""
        return " ".join(self.tokens[i] for i in strip_special(ids, self.pad_id, self.bos_id, self.eos_id))

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (atomically)."""
        atomic_write_json(path, {"format": "deltamix-vocabulary", "version": 1, "tokens": self.tokens})

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by `save`.

        Raises:
            DataFormatError: if the file is not such a vocabulary.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != "deltamix-vocabulary":
                raise DataFormatError(path, "not a deltamix vocabulary file")
            return cls(data["tokens"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, DataFormatError):
                raise
            raise DataFormatError(path, f"unreadable vocabulary ({error})") from error
