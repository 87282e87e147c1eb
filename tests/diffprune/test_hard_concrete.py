"""The stretched hard-concrete gate against its closed forms, and the fused gated diff against autograd."""

from __future__ import annotations

import math

import pytest
import torch

from deltamix.diffprune.hard_concrete import (
    deterministic_gate,
    expected_l0,
    gated_diff,
    prob_nonzero,
    prob_one,
    prob_zero,
    sample_gate,
)

L, R = -1.5, 1.5


@pytest.mark.parametrize("alpha", [-3.0, 0.0, 1.0, 5.0])
def test_sample_statistics_match_closed_form(alpha: float) -> None:
    n = 200_000
    torch.manual_seed(0)
    z = sample_gate(torch.full((n,), alpha), L, R)
    assert z.min() >= 0 and z.max() <= 1
    for empirical, exact in (
        (float((z == 0).float().mean()), prob_zero),
        (float((z == 1).float().mean()), prob_one),
    ):
        p = float(exact(torch.tensor(alpha), L, R))
        tolerance = 5 * math.sqrt(max(p * (1 - p), 1e-6) / n)  # 5 sigma of a binomial mean
        assert empirical == pytest.approx(p, abs=tolerance)


def test_closed_forms_by_hand() -> None:
    # P(z = 0) = P(s < 1/2) = sigmoid(-alpha) when l = -r; P(z = 1) = P(s > 5/6) = sigmoid(alpha - log 5).
    alpha = torch.tensor([0.0, 2.0])
    assert torch.allclose(prob_zero(alpha, L, R), torch.sigmoid(-alpha))
    assert torch.allclose(prob_one(alpha, L, R), torch.sigmoid(alpha - math.log(5)))
    assert torch.allclose(prob_nonzero(alpha, -0.1, 1.1), torch.sigmoid(alpha - math.log(0.1 / 1.1)))
    assert float(expected_l0(alpha, L, R)) == pytest.approx(0.5 + 1 / (1 + math.exp(-2)))
    assert torch.equal(
        deterministic_gate(torch.tensor([-10.0, 0.0, 10.0]), L, R), torch.tensor([0.0, 0.0, 1.0])
    )


@pytest.mark.parametrize("sample", [False, True])
def test_fused_gated_diff_matches_composed_autograd(sample: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(5000, generator=generator, dtype=torch.float64).requires_grad_()
    alpha = (torch.randn(5000, generator=generator, dtype=torch.float64) * 3).requires_grad_()
    grad = torch.randn(5000, generator=generator, dtype=torch.float64)
    torch.manual_seed(7)
    fused = gated_diff(w, alpha, L, R, sample)
    fused_grads = torch.autograd.grad(fused, (w, alpha), grad)
    torch.manual_seed(7)  # the same uniform draws
    gate = sample_gate(alpha, L, R) if sample else deterministic_gate(alpha, L, R)
    composed = gate * w
    composed_grads = torch.autograd.grad(composed, (w, alpha), grad)
    assert torch.allclose(fused, composed, atol=1e-12)
    for a, b in zip(fused_grads, composed_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-9)
    assert (fused_grads[1] == 0).any() and (fused_grads[1] != 0).any()  # both clamped and open gates


def test_gated_diff_statistics_equal_sampling_function() -> None:
    torch.manual_seed(1)
    z = gated_diff(torch.ones(100_000), torch.full((100_000,), 1.0), L, R, True)
    p = float(prob_zero(torch.tensor(1.0), L, R))
    assert float((z == 0).float().mean()) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / 100_000))
