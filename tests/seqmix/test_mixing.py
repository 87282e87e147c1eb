"""Closed-form and distribution tests for the pure SeqMix-family functions in `deltamix.seqmix.mixing`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from deltamix.core.mixed_tokens import MixedTokens, embed_mixed
from deltamix.seqmix import mixing

PAD = 0


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _embedding(vocab: int = 12, dim: int = 5) -> torch.nn.Embedding:
    torch.manual_seed(0)
    return torch.nn.Embedding(vocab, dim, padding_idx=PAD)


def test_weight_one_gives_exactly_the_unmixed_embedding_and_mask() -> None:
    emb = _embedding()
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]])
    partner = torch.tensor([[9, 10, 11, 3], [2, 3, 4, 5]])
    mixed = mixing.soft_mix(ids, partner, torch.ones(2), PAD)
    assert torch.equal(embed_mixed(emb, mixed), embed_mixed(emb, MixedTokens.plain(ids, PAD)))
    assert torch.equal(mixed.mask, ids.ne(PAD))


def test_mixed_embedding_equals_embedding_of_mixed_one_hot() -> None:
    emb = _embedding()
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]])
    partner = torch.tensor([[9, 10, 0, 0], [2, 3, 4, 5]])
    lam = torch.tensor([0.7, 0.55])
    mixed = mixing.soft_mix(ids, partner, lam, PAD)
    onehot = torch.nn.functional.one_hot(ids, 12).float()  # B x T x V
    onehot_partner = torch.nn.functional.one_hot(partner, 12).float()
    soft = lam.view(2, 1, 1) * onehot + (1 - lam.view(2, 1, 1)) * onehot_partner
    expected = soft @ emb.weight  # (E^T @ soft one-hot) per position: B x T x D
    torch.testing.assert_close(embed_mixed(emb, mixed), expected)


def test_different_lengths_are_padded_to_the_common_length_with_the_union_mask() -> None:
    emb = _embedding()
    ids = torch.tensor([[4, 5], [6, 0]])  # B x 2
    partner = torch.tensor([[7, 8, 9, 10], [11, 0, 0, 0]])  # B x 4
    mixed = mixing.soft_mix(ids, partner, torch.tensor([0.8, 0.6]), PAD)
    assert mixed.ids.shape == mixed.partner_ids.shape == mixed.weight.shape == (2, 4)
    assert torch.equal(mixed.ids, torch.tensor([[4, 5, 0, 0], [6, 0, 0, 0]]))
    assert torch.equal(mixed.mask, torch.tensor([[True, True, True, True], [True, False, False, False]]))
    out = embed_mixed(emb, mixed)
    # Beyond the main sequence the position is the partner token scaled by its weight (pad embeds to 0).
    torch.testing.assert_close(out[0, 2], 0.2 * emb.weight[9])
    torch.testing.assert_close(out[0, 3], 0.2 * emb.weight[10])
    assert torch.equal(out[1, 1:], torch.zeros(3, 5))


def test_mixed_mask_rule_for_hard_weights() -> None:
    ids = torch.tensor([[4, 5, 0]])
    partner = torch.tensor([[6, 7, 8]])
    weight = torch.tensor([[1.0, 0.0, 1.0]])
    # position 2: main is pad and is the one chosen -> no token mass.
    assert mixing.mixed_mask(ids, partner, weight, PAD).tolist() == [[True, True, False]]


def test_soft_mix_rejects_bad_weight_shapes() -> None:
    ids = torch.tensor([[4, 5]])
    with pytest.raises(ValueError, match="weight"):
        mixing.soft_mix(ids, ids, torch.ones(1, 3), PAD)
    with pytest.raises(ValueError, match="LongTensor"):
        mixing.soft_mix(ids.float(), ids, torch.ones(1), PAD)


@pytest.mark.parametrize("alpha", [0.1, 0.4, 2.0])
def test_lambda_follows_max_of_beta(alpha: float) -> None:
    lam = mixing.sample_lambda(4000, alpha, use_max=True, generator=_gen(1)).double().numpy()
    assert lam.min() >= 0.5 and lam.max() <= 1.0
    # lambda = max(l, 1 - l): CDF 2 * F_beta(x) - 1 on [1/2, 1]. Binned (chi-square) rather than KS:
    # with alpha = 0.1 about 18% of the mass lies within 1e-8 of 1, which float32 rounds to 1.0.
    edges = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 0.9999, 1 - 1e-6, 1.0 + 1e-9])
    observed = np.histogram(lam, bins=edges)[0]
    expected = np.diff(2 * stats.beta.cdf(np.minimum(edges, 1.0), alpha, alpha) - 1) * len(lam)
    keep = expected > 5
    assert observed[~keep].sum() < 20
    assert (
        stats.chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue
        > 1e-3
    )


def test_lambda_without_max_follows_beta() -> None:
    lam = mixing.sample_lambda(4000, 0.3, use_max=False, generator=_gen(2)).double().numpy()
    assert stats.kstest(lam, stats.beta(0.3, 0.3).cdf).pvalue > 1e-3
    assert (lam < 0.5).any() and (lam > 0.5).any()


def test_lambda_is_deterministic_given_a_seed() -> None:
    a = mixing.sample_lambda(16, 0.1, generator=_gen(3))
    b = mixing.sample_lambda(16, 0.1, generator=_gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, mixing.sample_lambda(16, 0.1, generator=_gen(4)))


def test_hard_mix_choice_rate_matches_lambda() -> None:
    batch, length = 400, 50
    lam = torch.linspace(0.5, 1.0, batch)
    ids = torch.full((batch, length), 4)
    partner = torch.full((batch, length), 5)
    chosen = mixing.hard_mix(ids, partner, mixing.bernoulli_mask(lam, (batch, length), _gen(5)), PAD)
    rate = chosen.eq(4).double().mean(dim=1)
    # Binomial(50, lambda) per row: z-scores over 400 rows stay within 5 sd.
    sd = torch.sqrt(lam * (1 - lam) / length).double().clamp_min(1e-9)
    z = (rate - lam.double()) / sd
    assert z[lam < 1].abs().max() < 5
    assert rate[lam == 1].eq(1).all()
    assert abs(float(rate.mean() - lam.double().mean())) < 0.01


def test_shift_right_aligns_label_choice_with_decoder_input() -> None:
    choice = torch.tensor([[True, False, True]])
    assert mixing.shift_right(choice).tolist() == [[True, True, False]]
    assert mixing.shift_right(choice, first=False).tolist() == [[False, True, False]]


def test_word_dropout_rate_and_protected_tokens() -> None:
    p, unk, bos, eos = 0.1, 3, 1, 2
    ids = torch.randint(4, 30, (200, 40), generator=_gen(6))
    ids[:, 0], ids[:, 30], ids[:, 31:] = bos, eos, PAD
    protected = torch.tensor([PAD, bos, eos])
    new, dropped = mixing.word_dropout(ids, p, unk, protected, _gen(7))
    replaceable = ids.ge(4)
    assert not dropped[~replaceable].any()
    assert torch.equal(new[dropped], torch.full((int(dropped.sum()),), unk))
    assert torch.equal(new[~dropped], ids[~dropped])
    n = int(replaceable.sum())
    k = int(dropped.sum())
    assert abs(k - n * p) < 4 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_switchout_count_distribution(tau: float) -> None:
    length, rows = 6, 3000
    counts = mixing.switchout_counts(torch.full((rows,), length), tau, _gen(8)).numpy()
    probs = np.exp(-np.arange(length + 1) / tau)
    probs /= probs.sum()
    observed = np.bincount(counts, minlength=length + 1)
    expected = probs * rows
    keep = expected >= 5  # pool the sparse tail into one bin (chi-square validity)
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    assert stats.chisquare(obs, exp).pvalue > 1e-3


def test_switchout_counts_respect_each_length_and_tau_zero() -> None:
    lengths = torch.tensor([0, 1, 2, 5] * 100)
    counts = mixing.switchout_counts(lengths, 5.0, _gen(9))
    assert (counts <= lengths).all() and counts[lengths == 0].eq(0).all()
    assert counts[lengths == 5].max() > 2
    assert mixing.switchout_counts(lengths, 0.0, _gen(9)).eq(0).all()


def test_switchout_replaces_exactly_n_uniform_positions_with_other_tokens() -> None:
    rows, length, vocab = 3000, 5, 10
    ids = torch.randint(4, vocab, (rows, length + 2), generator=_gen(10))
    ids[:, 0], ids[:, -1] = 1, PAD  # a protected BOS and a pad
    protected = torch.tensor([PAD, 1, 2])
    allowed = torch.tensor([3, 4, 5, 6, 7, 8, 9])
    new, replaced = mixing.switchout(ids, 2.0, allowed, protected, _gen(11))
    changed = new.ne(ids)
    assert torch.equal(changed, replaced)  # a replacement always differs from the original
    assert not replaced[:, 0].any() and not replaced[:, -1].any()
    assert torch.isin(new[replaced], allowed).all()
    # Positions are uniform among the replaceable ones.
    per_position = replaced[:, 1:-1].sum(dim=0).numpy()
    assert stats.chisquare(per_position).pvalue > 1e-3
    # n per row follows exp(-n / tau) over 0..5.
    probs = np.exp(-np.arange(length + 1) / 2.0)
    probs /= probs.sum()
    observed = np.bincount(replaced.sum(dim=1).numpy(), minlength=length + 1)
    assert stats.chisquare(observed, probs * rows).pvalue > 1e-3


def test_random_replacements_are_uniform_over_the_other_allowed_tokens() -> None:
    allowed = torch.tensor([4, 5, 6, 7, 8])
    ids = torch.full((20000, 1), 6)
    out = mixing.random_replacements(ids, allowed, _gen(12)).flatten()
    assert not out.eq(6).any()
    counts = torch.stack([out.eq(t).sum() for t in (4, 5, 7, 8)]).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    # An id outside the allowed set (e.g. <unk>) may become any allowed token.
    out = mixing.random_replacements(torch.full((20000, 1), 3), allowed, _gen(13)).flatten()
    counts = torch.stack([out.eq(t).sum() for t in allowed.tolist()]).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3


def test_pad_to_common() -> None:
    a, b = mixing.pad_to_common(torch.tensor([[1, 2]]), torch.tensor([[3, 4, 5]]), PAD)
    assert a.tolist() == [[1, 2, 0]] and b.tolist() == [[3, 4, 5]]
    with pytest.raises(ValueError, match="shorter"):
        mixing.pad_to_length(torch.tensor([[1, 2]]), 1, PAD)
