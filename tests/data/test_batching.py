"""Tests of length-bucketed, dynamically padded batching (deltamix.data.batching)."""

from __future__ import annotations

import numpy as np
import pytest

from deltamix.data.batching import BucketBatchSampler, collate_examples, encode_pairs, token_batch_sizes
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


# ----------------------------------------------------------------------------- token batches


def test_token_batches_respect_the_budget_and_cover_every_example_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=500).tolist()
    sampler = BucketBatchSampler(lengths, None, seed=3, max_tokens=256)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        assert len(batches) == len(sampler)  # the same count every epoch
        assert sorted(i for batch in batches for i in batch) == list(range(500))
        for batch in batches:
            assert len(batch) * max(lengths[i] for i in batch) <= 256


def test_token_batches_differ_between_epochs_and_repeat_per_seed() -> None:
    lengths = [5, 5, 5, 5, 7, 7, 7, 7, 9, 9, 9, 9] * 10
    sampler = BucketBatchSampler(lengths, None, seed=1, max_tokens=40)
    first = sampler.batches()
    sampler.set_epoch(1)
    assert sampler.batches() != first
    again = BucketBatchSampler(lengths, None, seed=1, max_tokens=40)
    assert again.batches() == first


def test_token_batches_honour_a_row_cap_and_a_minimum() -> None:
    sampler = BucketBatchSampler([2] * 20, 3, max_tokens=100)
    assert max(len(b) for b in sampler.batches()) == 3
    assert token_batch_sizes(np.array([2, 2, 3, 3, 5]), max_tokens=6) == [2, 2, 1]
    with pytest.raises(ValueError, match="cannot hold 2 example"):
        BucketBatchSampler([3, 30], None, max_tokens=40, min_batch=2)
    with pytest.raises(ValueError, match="give batch_size or max_tokens"):
        BucketBatchSampler([3], None)
