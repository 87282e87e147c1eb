"""Subword tokenizers for translation: a BPE vocabulary learned with Hugging Face `tokenizers`, saved as JSON.

`SubwordTokenizer` offers the interface of `deltamix.data.vocab.Vocabulary` (``pad_id, bos_id,
eos_id, unk_id``, ``len()``, ``encode(text) -> ids`` without BOS/EOS, ``decode(ids) -> text``), so
the trainer, decoding and SeqMix work the same on word-level (SCAN, GeoQuery) and subword data.

Choices (documented in docs/translation_parsing.md):

- **Joint vocabulary.** One BPE model learned on source and target text together (as the fairseq
  IWSLT'14 recipe learns one joint BPE). The `Seq2SeqModel` protocol has one set of special ids,
  the trainer's SwitchOut and SeqMix draw partner tokens from one vocabulary, and German and
  English share many subwords (names, numbers, punctuation), so one table serves both sides.
- **Raw text in, detokenized text out.** Pre-tokenization is SentencePiece-style (``Metaspace``:
  a space becomes ``▁`` and starts the next word), so ``decode`` restores the spacing of the input
  exactly (punctuation is split off words before BPE but re-attached on decoding), and BLEU is computed by sacrebleu on detokenized output with no Moses step.
- Special tokens ``<pad> <s> </s> <unk>`` hold ids 0-3, as in `Vocabulary`.
- Saved as the `tokenizers` JSON format (``tokenizer.json``), loadable by `tokenizers.Tokenizer`
  and by `transformers.PreTrainedTokenizerFast(tokenizer_file=...)`.

>>> tok = SubwordTokenizer.train(["ein Haus", "a house"], vocab_size=60)  # doctest: +SKIP
>>> tok.decode(tok.encode("ein house"))  # doctest: +SKIP
'ein house'
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from deltamix.core.errors import DataFormatError
from deltamix.core.io import atomic_write_text
from deltamix.data.vocab import SPECIALS, Vocabulary, strip_special

TOKENIZER_FILE = "tokenizer.json"
VOCABULARY_FILE = "vocab.json"


class SubwordTokenizer:
    """A BPE tokenizer (Hugging Face `tokenizers`) with the `Vocabulary` interface.

    Args:
        tokenizer: a `tokenizers.Tokenizer` whose ids 0-3 are ``<pad> <s> </s> <unk>``.

    Raises:
        ValueError: if the special tokens are not at ids 0-3.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        ids = [tokenizer.token_to_id(token) for token in SPECIALS]
        if ids != [0, 1, 2, 3]:
            raise ValueError(f"the tokenizer must hold {SPECIALS} at ids 0-3, found ids {ids}")
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> SubwordTokenizer:
        """Learn a BPE vocabulary of at most ``vocab_size`` entries (specials included) on ``texts``.

        Args:
            texts: raw sentences (for a joint vocabulary, source and target sentences together).
            vocab_size: the largest vocabulary size; smaller when the text has fewer merges.
            min_frequency: a merge must occur at least this often.

        Raises:
            ValueError: if ``vocab_size`` cannot hold the special tokens.
        """
        if vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must exceed the {len(SPECIALS)} special tokens, got {vocab_size}")
        tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
        tokenizer.normalizer = normalizers.NFC()
        # Spaces become "▁" (kept in the tokens, so decoding restores them) and punctuation is split
        # off words, so "Hut," and "Hut" share the subword "▁Hut" (as Moses tokenization would give).
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
                pre_tokenizers.Punctuation(behavior="isolated"),
            ]
        )
        tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order."""
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        return [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]

    def encode(self, text: str) -> list[int]:
        """Subword ids of ``text`` (no BOS/EOS); characters never seen in training map to ``<unk>``."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` of many texts at once (parallel in the Rust library)."""
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def tokenize(self, text: str) -> list[str]:
        """The subword strings of ``text`` (for inspection)."""
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenized text of ``ids``, stopping at EOS and dropping PAD/BOS (``<unk>`` is kept)."""
        kept = strip_special(ids, self.pad_id, self.bos_id, self.eos_id)
        return self.tokenizer.decode(kept, skip_special_tokens=False).strip()

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as `tokenizers` JSON (atomically)."""
        atomic_write_text(path, self.tokenizer.to_str(pretty=True))

    @classmethod
    def load(cls, path: str | Path) -> SubwordTokenizer:
        """Read a tokenizer written by `save` (or any `tokenizers` JSON with the four specials at 0-3).

        Raises:
            DataFormatError: if the file is missing or not such a tokenizer.
        """
        path = Path(path)
        if not path.is_file():
            raise DataFormatError(path, "tokenizer file not found")
        try:
            return cls(Tokenizer.from_str(path.read_text(encoding="utf-8")))
        except Exception as error:  # tokenizers raises plain Exception for bad JSON
            raise DataFormatError(path, f"not a usable tokenizers JSON file ({error})") from error


def train_joint_tokenizer(
    pairs: Iterable[tuple[str, str]], vocab_size: int = 8000, min_frequency: int = 2
) -> SubwordTokenizer:
    """A joint BPE vocabulary learned on the sources and targets of ``pairs`` (training data only)."""
    pairs = list(pairs)
    texts = [source for source, _ in pairs] + [target for _, target in pairs]
    return SubwordTokenizer.train(texts, vocab_size=vocab_size, min_frequency=min_frequency)


def save_tokenizer(tokenizer: Vocabulary | SubwordTokenizer, folder: str | Path) -> Path:
    """Save ``tokenizer`` into ``folder`` under its standard name (``vocab.json`` or ``tokenizer.json``)."""
    folder = Path(folder)
    if isinstance(tokenizer, Vocabulary):
        path = folder / VOCABULARY_FILE
    elif isinstance(tokenizer, SubwordTokenizer):
        path = folder / TOKENIZER_FILE
    else:
        raise TypeError(f"cannot save a {type(tokenizer).__name__}; expected Vocabulary or SubwordTokenizer")
    tokenizer.save(path)
    return path


def load_tokenizer(path: str | Path) -> Vocabulary | SubwordTokenizer:
    """Load a word vocabulary or a subword tokenizer from a file, or from a folder holding
    ``vocab.json`` or ``tokenizer.json`` (as written by `save_tokenizer`).

    Raises:
        DataFormatError: nothing loadable at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        for name in (TOKENIZER_FILE, VOCABULARY_FILE):
            if (path / name).is_file():
                return load_tokenizer(path / name)
        raise DataFormatError(path, f"no {TOKENIZER_FILE} or {VOCABULARY_FILE} in this folder")
    if not path.is_file():
        raise DataFormatError(path, "tokenizer file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(path, f"not a JSON tokenizer file ({error})") from error
    if isinstance(data, dict) and data.get("format") == "deltamix-vocabulary":
        return Vocabulary.load(path)
    return SubwordTokenizer.load(path)


class HFTokenizer:
    """A Hugging Face ``transformers`` tokenizer with the `Vocabulary` interface, for the model it belongs to.

    ``bos_id`` is the model's ``decoder_start_token_id`` (what the decoder input starts with: the pad id
    for T5, EOS for BART, pad for Marian), so the trainer builds ``[bos_id] + y`` decoder inputs exactly
    as the model expects; ``encode`` adds no special tokens (the trainer appends EOS to sources).

    Args:
        tokenizer: a ``transformers`` tokenizer (e.g. from ``AutoTokenizer.from_pretrained``).
        decoder_start_id: the model's ``config.decoder_start_token_id``.

    Raises:
        ValueError: if the tokenizer has no pad or EOS token.
    """

    def __init__(self, tokenizer: Any, decoder_start_id: int) -> None:
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs a pad token and an EOS token")
        self.tokenizer = tokenizer
        self.pad_id = int(tokenizer.pad_token_id)
        self.eos_id = int(tokenizer.eos_token_id)
        self.bos_id = int(decoder_start_id)
        self.unk_id = int(
            tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
        )

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenized text of ``ids``, stopping at EOS and dropping PAD/BOS and other special tokens."""
        kept = strip_special(ids, self.pad_id, self.bos_id, self.eos_id)
        return self.tokenizer.decode(
            kept, skip_special_tokens=True, clean_up_tokenization_spaces=False
        ).strip()

    def save_pretrained(self, folder: str | Path) -> None:
        """Save the wrapped tokenizer in the ``transformers`` format."""
        self.tokenizer.save_pretrained(str(folder))
