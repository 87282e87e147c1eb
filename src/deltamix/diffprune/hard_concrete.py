"""The stretched hard-concrete gate of diff pruning: sampling, the deterministic gate and closed forms.

With u ~ U(0, 1): s = sigmoid(log u - log(1 - u) + alpha), z = min(1, max(0, s * (r - l) + l))
(Louizos et al., 2018, temperature 1, as in Guo et al., 2021). All functions act elementwise on a
tensor ``alpha`` of any shape and return a tensor of the same shape.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deltamix.diffprune.gate_noise import GateNoise

_EPS = 1e-6


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def sample_gate(alpha: Tensor, left: float, right: float, noise: Tensor | None = None) -> Tensor:
    """One hard-concrete draw z in [0, 1] per entry of ``alpha`` (differentiable in alpha).

    Args:
        alpha: gate log-odds, any shape.
        left, right: stretch limits l < 0 and r > 1.
        noise: optional logistic noise log u - log(1 - u) of alpha's shape (drawn if None).

    Returns:
        z, alpha's shape and dtype.
    """
    if noise is None:
        u = GateNoise(alpha.device).fill_(torch.empty_like(alpha, memory_format=torch.contiguous_format))
        noise = torch.logit(u, eps=_EPS)  # log u - log(1 - u), u from the fused kernel's stream
    s = torch.sigmoid(noise + alpha)
    return (s * (right - left) + left).clamp(0.0, 1.0)


def deterministic_gate(alpha: Tensor, left: float, right: float) -> Tensor:
    """The noise-free gate z = clamp(sigmoid(alpha) * (r - l) + l, 0, 1), alpha's shape."""
    return (torch.sigmoid(alpha) * (right - left) + left).clamp(0.0, 1.0)


def prob_nonzero(alpha: Tensor, left: float, right: float) -> Tensor:
    """P(z != 0) = sigmoid(alpha - log(-l / r)): each entry's expected L0 norm, alpha's shape."""
    return torch.sigmoid(alpha - math.log(-left / right))


def prob_zero(alpha: Tensor, left: float, right: float) -> Tensor:
    """P(z = 0) = 1 - P(z != 0), alpha's shape."""
    return 1.0 - prob_nonzero(alpha, left, right)


def prob_one(alpha: Tensor, left: float, right: float) -> Tensor:
    """P(z = 1) = sigmoid(alpha - logit((1 - l) / (r - l))), alpha's shape."""
    return torch.sigmoid(alpha - _logit((1.0 - left) / (right - left)))


def expected_l0(alpha: Tensor, left: float, right: float) -> Tensor:
    """Sum over all entries of P(z != 0): a scalar tensor, differentiable in alpha."""
    return prob_nonzero(alpha, left, right).sum()


class GatedDiff(torch.autograd.Function):
    """delta = z(alpha) * w with z a hard-concrete gate, fused to save memory and time.

    Only z is kept for the backward pass: for an unclamped gate, dz/dalpha = (r - l) s (1 - s) with
    s = (z - l) / (r - l), i.e. (z - l)(r - z) / (r - l); a clamped gate (z = 0 or 1) has zero
    gradient. This holds for both the sampled and the deterministic gate, so the function stores one
    tensor of w's size instead of the ~5 that the composed elementwise ops would.

    Args (of ``apply``):
        w: diff weights, shape (d,).
        alpha: gate log-odds, shape (d,).
        left, right: stretch limits.
        sample: draw logistic noise (training) or use the deterministic gate.

    Returns:
        delta, shape (d,).
    """

    @staticmethod
    def forward(ctx, w: Tensor, alpha: Tensor, left: float, right: float, sample: bool) -> Tensor:
        # z starts as log u - log(1 - u) + alpha (sampled) or alpha (deterministic), then is gated in place.
        if sample:  # the uniforms of the fused kernel's stream (gate_noise.py)
            u = GateNoise(alpha.device).fill_(torch.empty_like(alpha, memory_format=torch.contiguous_format))
            z = torch.logit(u, eps=_EPS).add_(alpha)
        else:
            z = alpha.detach().clone()
        z.sigmoid_().mul_(right - left).add_(left).clamp_(0.0, 1.0)
        ctx.save_for_backward(w, z)
        ctx.stretch = (left, right)
        return z * w

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        w, z = ctx.saved_tensors
        left, right = ctx.stretch
        grad_w = grad * z if ctx.needs_input_grad[0] else None
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            # dz/dalpha = (z - l)(r - z)/(r - l) inside (0, 1), 0 where clamped.
            slope = (z - left).mul_(right - z).div_(right - left)
            slope.masked_fill_((z <= 0.0) | (z >= 1.0), 0.0)
            grad_alpha = slope.mul_(grad).mul_(w)
        return grad_w, grad_alpha, None, None, None


def gated_diff(w: Tensor, alpha: Tensor, left: float, right: float, sample: bool) -> Tensor:
    """delta = z * w with a sampled or deterministic hard-concrete gate z (see :class:`GatedDiff`)."""
    return GatedDiff.apply(w, alpha, left, right, sample)
