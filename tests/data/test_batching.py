"""Tests of length-bucketed, dynamically padded batching (deltamix.data.batching)."""

from __future__ import annotations

import pytest

from deltamix.data.batching import BucketBatchSampler, collate_examples, encode_pairs
from deltamix.data.vocab import Vocabulary


def test_encode_and_collate_follow_the_conventions() -> None:
    vocab = Vocabulary.build(["jump twice", "walk", "I_JUMP I_WALK"])
    examples = encode_pairs([("jump twice", "I_JUMP I_JUMP"), ("walk", "I_WALK")], vocab)
    assert examples[1] == ([vocab.index["walk"], vocab.eos_id], [vocab.index["I_WALK"]])
    batch = collate_examples(examples, vocab.pad_id, vocab.bos_id, vocab.eos_id)
    jump, walk, pad = vocab.index["I_JUMP"], vocab.index["I_WALK"], vocab.pad_id
    assert batch["src_ids"].shape == (2, 3)  # padded to the longest source in this batch only
    assert batch["tgt_in"].tolist() == [[vocab.bos_id, jump, jump], [vocab.bos_id, walk, pad]]
    assert batch["labels"].tolist() == [[jump, jump, vocab.eos_id], [walk, vocab.eos_id, pad]]


def test_empty_target_is_rejected() -> None:
    vocab = Vocabulary.build(["a"])
    with pytest.raises(ValueError, match="empty target"):
        encode_pairs([("a", "")], vocab)


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_covers_every_index_once_per_epoch(drop_last: bool) -> None:
    lengths = [(i * 7) % 13 + 1 for i in range(103)]
    sampler = BucketBatchSampler(lengths, batch_size=8, seed=3, bucket_factor=4, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for batch in batches for i in batch]
    assert len(flat) == len(set(flat))
    assert len(flat) == (96 if drop_last else 103)


def test_sampler_order_depends_on_seed_and_epoch_only() -> None:
    lengths = list(range(1, 200))
    a = BucketBatchSampler(lengths, batch_size=10, seed=1)
    b = BucketBatchSampler(lengths, batch_size=10, seed=1)
    assert a.batches() == b.batches()
    b.set_epoch(1)
    assert a.batches() != b.batches()
    a.set_epoch(1)
    assert a.batches() == b.batches()


def test_sampler_batches_have_similar_lengths() -> None:
    lengths = [i % 50 + 1 for i in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=20, seed=0, bucket_factor=50)
    spread = [max(lengths[i] for i in batch) - min(lengths[i] for i in batch) for batch in sampler]
    assert max(spread) <= 1  # one sorted chunk covers the whole set


def test_sampler_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        BucketBatchSampler([1, 2], batch_size=0)
    with pytest.raises(ValueError):
        BucketBatchSampler([], batch_size=2)
