"""From (source, target) text pairs to length-bucketed, dynamically padded batches of token ids.

Conventions every seq2seq model here relies on: a source is its token ids followed by EOS (so no
source is empty); the decoder input is BOS + target ids and the labels are target ids + EOS; every
batch is padded with the pad id to its own longest sequence only (dynamic padding).

>>> from deltamix.data.vocab import Vocabulary
>>> vocab = Vocabulary.build(["jump twice", "I_JUMP I_JUMP"])
>>> examples = encode_pairs([("jump twice", "I_JUMP I_JUMP")], vocab)
>>> collate_examples(examples, pad_id=0, bos_id=1, eos_id=2)["labels"].tolist()
[[4, 4, 2]]
"""

# Kept over transformers' LengthGroupedSampler: it has no token-budget (--max-tokens) batches and cuts sentence batches differently, so recorded runs' batches would change.

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


class Tokenizer(Protocol):
    """The tokenizer interface of `deltamix.data.vocab.Vocabulary`."""

    pad_id: int
    bos_id: int
    eos_id: int
    unk_id: int

    def __len__(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


Example = tuple[list[int], list[int]]  # (source ids + EOS, target ids without BOS/EOS)


def encode_source(text: str, tokenizer: Tokenizer) -> list[int]:
    """Source ids of ``text`` followed by EOS."""
    return [*tokenizer.encode(text), tokenizer.eos_id]


def encode_pairs(
    pairs: Sequence[tuple[str, str]],
    tokenizer: Tokenizer,
    target_tokenizer: Tokenizer | None = None,
) -> list[Example]:
    """Encode text pairs: (source ids + EOS, target ids).

    Args:
        pairs: (source text, target text) pairs.
        tokenizer: the source tokenizer (also the target one unless ``target_tokenizer`` is given).
        target_tokenizer: a separate target tokenizer.

    Raises:
        ValueError: if a target encodes to no tokens.
    """
    target_tokenizer = target_tokenizer or tokenizer
    examples = []
    for number, (source, target) in enumerate(pairs):
        tgt = target_tokenizer.encode(target)
        if not tgt:
            raise ValueError(f"pair {number} has an empty target: {source!r} -> {target!r}")
        examples.append((encode_source(source, tokenizer), tgt))
    return examples


class Seq2SeqDataset(Dataset):
    """Encoded examples, indexable (what a `torch.utils.data.DataLoader` iterates)."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def lengths(self) -> list[int]:
        """The length of each example used for bucketing: the longer of source and target + 1."""
        return [max(len(src), len(tgt) + 1) for src, tgt in self.examples]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> Tensor:
    """LongTensor [B, max length] of ``sequences``, right-padded with ``pad_id``."""
    width = max(len(seq) for seq in sequences)
    out = np.full((len(sequences), width), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return torch.from_numpy(out)


def collate_examples(examples: Sequence[Example], pad_id: int, bos_id: int, eos_id: int) -> dict[str, Tensor]:
    """A batch of examples as padded id tensors.

    Returns:
        ``src_ids`` [B, S], ``tgt_in`` [B, T] (BOS + target) and ``labels`` [B, T] (target + EOS),
        all padded with ``pad_id`` to the batch's own longest sequence.
    """
    if not examples:
        raise ValueError("cannot collate an empty batch")
    return {
        "src_ids": pad_batch([src for src, _ in examples], pad_id),
        "tgt_in": pad_batch([[bos_id, *tgt] for _, tgt in examples], pad_id),
        "labels": pad_batch([[*tgt, eos_id] for _, tgt in examples], pad_id),
    }


class Collator:
    """`collate_examples` with fixed special ids (a picklable DataLoader ``collate_fn``)."""

    def __init__(self, pad_id: int, bos_id: int, eos_id: int) -> None:
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def __call__(self, examples: Sequence[Example]) -> dict[str, Tensor]:
        return collate_examples(examples, self.pad_id, self.bos_id, self.eos_id)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices of similar length, in a reproducible order per (seed, epoch).

    Sentence batches (``max_tokens`` None): each epoch, shuffle all indices, cut them into chunks of
    ``batch_size * bucket_factor``, sort each chunk by length, cut it into batches of ``batch_size``,
    and shuffle the batches. Padding stays small while batches remain random.

    Token batches (``max_tokens`` set, fairseq's ``--max-tokens``): each epoch, sort all indices by
    length with ties broken at random, cut them greedily into batches of at most ``max_tokens``
    padded tokens (rows x longest length; at most ``batch_size`` rows if given), and shuffle the
    batches. The cut depends on the sorted lengths only, so every epoch has the same number of
    batches (resuming mid-epoch relies on that). Call `set_epoch` before iterating each epoch.

    Args:
        lengths: the length of each example.
        batch_size: examples per batch (sentence batches; the last batch of an epoch may be smaller
            unless ``drop_last``); with ``max_tokens``, the most rows a batch may hold (None: no cap).
        shuffle: False gives a fixed order sorted by length (for evaluation).
        seed: seed of the order.
        bucket_factor: batches per sorted chunk (sentence batches).
        drop_last: drop the smaller last batch (sentence batches).
        max_tokens: the token budget of a batch (None: sentence batches).
        min_batch: the fewest rows a token batch may hold (e.g. the number of processes sharing it).

    Raises:
        ValueError: a bad size, no examples, or an example too long for ``max_tokens`` x ``min_batch``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int | None,
        shuffle: bool = True,
        seed: int = 0,
        bucket_factor: int = 50,
        drop_last: bool = False,
        max_tokens: int | None = None,
        min_batch: int = 1,
    ) -> None:
        if max_tokens is None and batch_size is None:
            raise ValueError("give batch_size or max_tokens")
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if max_tokens is not None and max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        if bucket_factor <= 0:
            raise ValueError(f"bucket_factor must be > 0, got {bucket_factor}")
        if not lengths:
            raise ValueError("cannot batch an empty data set")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_factor = bucket_factor
        self.drop_last = drop_last
        self.max_tokens = max_tokens
        self.epoch = 0
        self._token_sizes: list[int] | None = None
        if max_tokens is not None:
            longest = int(self.lengths.max())
            if longest * min_batch > max_tokens:
                raise ValueError(
                    f"max_tokens {max_tokens} cannot hold {min_batch} example(s) of the longest length "
                    f"{longest}: raise max_tokens to at least {longest * min_batch}"
                )
            self._token_sizes = token_batch_sizes(np.sort(self.lengths), max_tokens, batch_size, min_batch)

    def set_epoch(self, epoch: int) -> None:
        """Select the order of epoch ``epoch``."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch."""
        if self._token_sizes is not None:
            return self._token_batches()
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            chunks = [order]
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(n)
            size = self.batch_size * self.bucket_factor
            chunks = [order[i : i + size] for i in range(0, n, size)]
            chunks = [chunk[np.argsort(self.lengths[chunk], kind="stable")] for chunk in chunks]
        batches = [
            chunk[i : i + self.batch_size].tolist()
            for chunk in chunks
            for i in range(0, len(chunk), self.batch_size)
        ]
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _token_batches(self) -> list[list[int]]:
        """Token batches: a length sort with random ties, cut by the fixed sizes, batches shuffled."""
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(len(self.lengths))
            order = order[np.argsort(self.lengths[order], kind="stable")]
        else:
            order = np.argsort(self.lengths, kind="stable")
        ends = np.cumsum(self._token_sizes)
        batches = [chunk.tolist() for chunk in np.split(order, ends[:-1])]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self._token_sizes is not None:
            return len(self._token_sizes)
        if self.drop_last:
            return len(self.lengths) // self.batch_size
        if not self.shuffle:
            return -(-len(self.lengths) // self.batch_size)
        size = self.batch_size * self.bucket_factor
        full, rest = divmod(len(self.lengths), size)
        return full * self.bucket_factor + -(-rest // self.batch_size)


def token_batch_sizes(
    sorted_lengths: np.ndarray, max_tokens: int, max_rows: int | None = None, min_rows: int = 1
) -> list[int]:
    """Rows of each batch when ascending ``sorted_lengths`` are cut greedily into batches of at most
    ``max_tokens`` padded tokens (rows x the batch's longest length) and at most ``max_rows`` rows.

    A batch closes when the next example would break the budget, except that it first takes
    ``min_rows`` rows (the caller checks that ``min_rows`` of the longest fit).

    >>> token_batch_sizes(np.array([2, 2, 3, 3, 5]), max_tokens=6)
    [2, 2, 1]
    """
    sizes: list[int] = []
    rows = 0
    for length in sorted_lengths.tolist():
        too_many = max_rows is not None and rows + 1 > max_rows
        if rows >= min_rows and ((rows + 1) * length > max_tokens or too_many):
            sizes.append(rows)
            rows = 0
        rows += 1
    if rows:
        sizes.append(rows)
    return sizes
