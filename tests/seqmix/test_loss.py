"""Closed-form tests for the SeqMix loss (`deltamix.seqmix.loss`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from deltamix.core.mixed_tokens import MixedBatch, MixedTokens
from deltamix.seqmix.loss import label_smoothed_nll, seqmix_loss, smoothed_nll_terms

PAD, V = 0, 9


def _lprobs(batch: int = 3, length: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, V, generator=g).log_softmax(-1)  # B x T x V


def _batch(labels: torch.Tensor, partner: torch.Tensor | None = None, weight: torch.Tensor | None = None):
    plain = MixedTokens.plain(labels, PAD)
    return MixedBatch(src=plain, tgt_in=plain, labels=labels, partner_labels=partner, label_weight=weight)


LABELS = torch.tensor([[4, 5, 2, 0], [6, 2, 0, 0], [7, 8, 5, 2]])
PARTNER = torch.tensor([[6, 2, 0, 0], [7, 8, 5, 2], [4, 5, 2, 0]])


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothed_nll_matches_torch_cross_entropy(eps: float) -> None:
    lprobs = _lprobs()
    loss, nll = label_smoothed_nll(lprobs, LABELS, eps, PAD)
    expected = F.cross_entropy(
        lprobs.transpose(1, 2), LABELS, ignore_index=PAD, label_smoothing=eps, reduction="none"
    )
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(
        nll, F.nll_loss(lprobs.transpose(1, 2), LABELS, ignore_index=PAD, reduction="none")
    )


def test_unmixed_loss_is_the_per_token_mean() -> None:
    lprobs = _lprobs()
    expected = F.cross_entropy(lprobs.transpose(1, 2), LABELS, ignore_index=PAD, label_smoothing=0.1)
    torch.testing.assert_close(seqmix_loss(lprobs, _batch(LABELS), 0.1, PAD), expected)


def test_lambda_one_gives_exactly_the_unmixed_loss() -> None:
    lprobs = _lprobs()
    mixed = _batch(LABELS, PARTNER, torch.ones(3, 4))
    assert torch.equal(seqmix_loss(lprobs, mixed, 0.1, PAD), seqmix_loss(lprobs, _batch(LABELS), 0.1, PAD))


def test_loss_equals_soft_target_cross_entropy() -> None:
    lprobs, eps = _lprobs(), 0.1
    lam = torch.tensor([0.9, 0.6, 0.75])
    weight = lam.unsqueeze(1).expand(3, 4)

    def smoothed(target: torch.Tensor) -> torch.Tensor:  # B x T x V, zero at pad positions
        q = (1 - eps) * F.one_hot(target, V).double() + eps / V
        return q * target.ne(PAD).unsqueeze(-1)

    w = weight.double().unsqueeze(-1)
    q = w * smoothed(LABELS) + (1 - w) * smoothed(PARTNER)  # the soft target
    tokens = (weight.double() * LABELS.ne(PAD) + (1 - weight.double()) * PARTNER.ne(PAD)).sum()
    expected = -(q * lprobs.double()).sum() / tokens
    got = seqmix_loss(lprobs, _batch(LABELS, PARTNER, weight), eps, PAD)
    torch.testing.assert_close(got.double(), expected)


def test_loss_is_lambda_weighted_sum_of_two_cross_entropies_for_equal_lengths() -> None:
    lprobs = _lprobs()
    labels = torch.tensor([[4, 5, 2], [6, 7, 2]])
    partner = torch.tensor([[6, 7, 2], [4, 5, 2]])
    lp = lprobs[:2, :3]
    lam = 0.7
    ce = lambda y: F.cross_entropy(lp.transpose(1, 2), y, label_smoothing=0.1)  # noqa: E731
    got = seqmix_loss(lp, _batch(labels, partner, torch.full((2, 3), lam)), 0.1, PAD)
    torch.testing.assert_close(got, lam * ce(labels) + (1 - lam) * ce(partner))


def test_zero_weight_terms_cannot_produce_nan() -> None:
    lprobs = _lprobs()
    lprobs[..., 3] = float("-inf")  # the partner's token is impossible
    partner = torch.full((3, 4), 3)
    loss = seqmix_loss(lprobs, _batch(LABELS, partner, torch.ones(3, 4)), 0.0, PAD)
    assert torch.isfinite(loss)


def test_sum_reduction_and_gradient() -> None:
    lprobs = _lprobs().requires_grad_(True)
    batch = _batch(LABELS, PARTNER, torch.full((3, 4), 0.8))
    mean = seqmix_loss(lprobs, batch, 0.1, PAD)
    total = seqmix_loss(lprobs, batch, 0.1, PAD, reduction="sum")
    tokens = (0.8 * LABELS.ne(PAD) + 0.2 * PARTNER.ne(PAD)).sum()
    torch.testing.assert_close(total / tokens, mean)
    mean.backward()
    assert torch.isfinite(lprobs.grad).all() and lprobs.grad.abs().sum() > 0


def test_bad_inputs_raise() -> None:
    lprobs = _lprobs()
    with pytest.raises(ValueError, match="reduction"):
        seqmix_loss(lprobs, _batch(LABELS), 0.1, PAD, reduction="avg")
    with pytest.raises(ValueError, match="label_weight"):
        seqmix_loss(lprobs, _batch(LABELS, PARTNER, torch.ones(3, 3)), 0.1, PAD)
    with pytest.raises(ValueError, match="target"):
        label_smoothed_nll(lprobs, LABELS[:, :2], 0.1, PAD)
    with pytest.raises(ValueError, match="smoothing"):
        label_smoothed_nll(lprobs, LABELS, 1.0, PAD)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_terms_of_several_targets_equal_one_target_at_a_time(eps: float) -> None:
    """One gather and one smoothing sum for main and partner: the values (and gradients) of
    `label_smoothed_nll` applied to each target on its own."""
    lprobs = _lprobs().requires_grad_(True)
    together = smoothed_nll_terms(lprobs, [LABELS, PARTNER], eps, PAD)
    for target, (loss, nll) in zip((LABELS, PARTNER), together, strict=True):
        alone_loss, alone_nll = label_smoothed_nll(lprobs, target, eps, PAD)
        assert torch.equal(loss, alone_loss) and torch.equal(nll, alone_nll)
    (grad,) = torch.autograd.grad(together[0][0].sum() + 0.3 * together[1][0].sum(), lprobs)
    separate = [label_smoothed_nll(lprobs, t, eps, PAD)[0] for t in (LABELS, PARTNER)]
    (expected,) = torch.autograd.grad(separate[0].sum() + 0.3 * separate[1].sum(), lprobs)
    torch.testing.assert_close(grad, expected)
