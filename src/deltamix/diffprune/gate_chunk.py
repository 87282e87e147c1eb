"""The stretched hard-concrete gate of one chunk of entries, computed in place (the fused kernel's arithmetic).

l + (r - l) sigmoid(log u - log(1 - u) + alpha), clamped to [0, 1] (hard_concrete.py's closed
forms), written into the chunk's gate buffer, with the sampled gate and its P(z != 0) sharing one
exponential; shapes are one chunk's, (n,).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from deltamix.diffprune.gate_noise import GateNoise

_EPS = 1e-6


def gate_(z: Tensor, alpha: Tensor, left: float, right: float, sampled: bool) -> Tensor:
    """Write the hard-concrete gate of ``alpha`` (one chunk) into ``z`` in place and return it.

    Sampled, ``z`` holds the uniform draws u on entry; deterministic, its contents are ignored.
    """
    if sampled:  # log u - log(1 - u) + alpha
        torch.logit(z, eps=_EPS, out=z).add_(alpha).sigmoid_()
    else:
        torch.sigmoid(alpha, out=z)
    return z.mul_(right - left).add_(left).clamp_(0.0, 1.0)


def sampled_gate_and_penalty_(
    z: Tensor, alpha: Tensor, noise: GateNoise, constants: GateConstants, scratch: Tensor, den: Tensor
) -> Tensor:
    """Sample the gate of ``alpha`` (one chunk, shape (n,)) into ``z`` in place; return each entry's
    P(z != 0) = sigmoid(alpha - shift), written into ``scratch`` (shape (n,); ``den``: more scratch).

    One exponential serves both: with e = exp(-alpha), sigmoid(log u - log(1 - u) + alpha) =
    u / (u + (1 - u) e), so z = l + (r - l) u / (u + (1 - u) e) (one ``addcdiv``), and
    sigmoid(alpha - shift) = 1 / (1 + exp(shift) e), where the separate ops take a logit, a sigmoid
    and another sigmoid per entry (the costliest passes of the L0 stage after drawing u). u is clamped
    to [eps, 1 - eps] as ``logit(u, eps)`` does, so the noise distribution is the same; e = inf
    (alpha < -88) gives 0 and e = 0 gives 1, as the sigmoids do.
    """
    e = torch.neg(alpha, out=scratch).exp_()
    u = noise.fill_(z).clamp_(_EPS, 1.0 - _EPS)
    torch.addcmul(u, torch.sub(constants.one, u, out=den), e, out=den)  # u + (1 - u) e
    torch.addcdiv(constants.left, u, den, value=constants.width, out=z).clamp_(0.0, 1.0)
    return torch.add(
        constants.one, e, alpha=constants.exp_shift, out=e
    ).reciprocal_()  # sigmoid(alpha - shift)


class GateConstants(NamedTuple):
    """Scalars of the sampled gate: l and 1 as 0-dim tensors (the ``out=`` ops broadcast them), r - l, exp(shift)."""

    left: Tensor
    one: Tensor
    width: float
    exp_shift: float
