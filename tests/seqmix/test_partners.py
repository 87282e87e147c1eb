"""Tests of SeqMix partner choice: in-batch shuffle and length-aware pairing (`deltamix.seqmix.partners`)."""

from __future__ import annotations

import pytest
import torch

from deltamix.seqmix.partners import length_aware_partners, sample_partners, shuffle_partners


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _is_permutation(p: torch.Tensor) -> bool:
    return torch.equal(p.sort().values, torch.arange(len(p)))


def test_shuffle_is_a_seeded_permutation() -> None:
    p = shuffle_partners(32, _gen(0))
    assert _is_permutation(p)
    assert torch.equal(p, shuffle_partners(32, _gen(0)))
    assert not torch.equal(p, shuffle_partners(32, _gen(1)))


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 8, 33])
def test_length_aware_partners_are_a_permutation_within_two_ranks(batch: int) -> None:
    lengths = torch.randperm(batch, generator=_gen(batch)) * 3 + 2  # distinct lengths
    p = length_aware_partners(lengths, _gen(2))
    assert _is_permutation(p)
    rank = lengths.argsort().argsort()
    assert (rank - rank[p]).abs().max() <= 2
    if batch % 2 == 0:
        assert torch.equal(p[p], torch.arange(batch))  # mutual pairs, nobody left alone
        assert (p != torch.arange(batch)).all()


def test_length_aware_partners_have_similar_lengths() -> None:
    lengths = torch.randint(1, 60, (64,), generator=_gen(3))
    gap_length = (lengths - lengths[length_aware_partners(lengths, _gen(4))]).abs().float().mean()
    gap_shuffle = (lengths - lengths[shuffle_partners(64, _gen(4))]).abs().float().mean()
    assert gap_length <= 2.0
    assert gap_length < gap_shuffle / 4


def test_length_aware_ties_are_broken_at_random_and_seeded() -> None:
    lengths = torch.full((16,), 5)
    a = length_aware_partners(lengths, _gen(5))
    assert torch.equal(a, length_aware_partners(lengths, _gen(5)))
    assert not torch.equal(a, length_aware_partners(lengths, _gen(6)))


def test_sample_partners_dispatch_and_errors() -> None:
    lengths = torch.tensor([3, 9, 4, 8])
    assert torch.equal(sample_partners("length", lengths, _gen(7)), length_aware_partners(lengths, _gen(7)))
    assert torch.equal(sample_partners("shuffle", lengths, _gen(7)), shuffle_partners(4, _gen(7)))
    with pytest.raises(ValueError, match="partner kind"):
        sample_partners("nearest", lengths)
    with pytest.raises(ValueError, match="lengths"):
        length_aware_partners(lengths.view(2, 2))
