"""A target density for the L0 stage, held by a Lagrangian instead of a fixed lambda (beyond the paper).

The paper adds ``lambda * E[L0]`` to the task loss, one lambda for every task. How much of the diff
the L0 stage then leaves non-zero depends on the task: on the embedded MiniLM at lambda 2e-7, 0.3-0.9%
of the entries on RTE, 3-7% on MRPC, 25% on STS-B (results/README.md, "Other L0 settings"), so the
projection to the target t cuts little on one task and three quarters of the diff on another.

With ``DiffPruningConfig(target_density=rho)`` the L0 stage adds instead, as structured pruning with
L0 gates does (Wang, Wohlwend and Lei 2020; CoFi, Xia, Zhong and Chen 2022),

    lambda_1 * (s - rho_k) + lambda_2 * (s - rho_k)^2,     s = E[L0] / d,

where ``rho_k`` falls linearly from 1 to ``rho`` over the first ``density_warmup`` share of the
stage's steps and then stays at ``rho``. The model minimises this; the multipliers
``(lambda_1, lambda_2)``, which start at 0, maximise it (their gradient is negated by
:func:`ascend`, then AdamW steps): while s is above the target they grow and close gates, below it
they shrink. The stage then ends with an expected density near ``rho`` on any task, and the
projection to t (``rho`` = t, or a few times t to leave the projection a choice) cuts little.
"""

from __future__ import annotations

from torch import Tensor

MULTIPLIERS_KEY = "lagrange_multipliers"


def annealed_target(target: float, progress: float, warmup: float) -> float:
    """The density the constraint asks for at ``progress`` (share of the stage's steps done, 0 to 1).

    Falls linearly from 1 (every gate open, as at the start) to ``target`` over the first ``warmup``
    share of the steps; ``warmup`` 0 asks for ``target`` from the first step.

    >>> annealed_target(0.01, 0.25, 0.5), annealed_target(0.01, 0.9, 0.5)
    (0.505, 0.01)
    """
    if warmup <= 0 or progress >= warmup:
        return target
    return 1.0 - (1.0 - target) * max(progress, 0.0) / warmup


def lagrangian_term(density: Tensor, target: float, multipliers: Tensor) -> Tensor:
    """``multipliers[0] * (density - target) + multipliers[1] * (density - target) ** 2``, a scalar.

    Args:
        density: the expected share of non-zero gates s = E[L0] / d, a scalar differentiable in the gates.
        target: the density asked for now (:func:`annealed_target`).
        multipliers: (2,), the Lagrange multipliers (trained by gradient ascent, see :func:`ascend`).
    """
    gap = density - target
    return multipliers[0] * gap + multipliers[1] * gap * gap


def ascend(grad: Tensor) -> Tensor:
    """A gradient hook that turns the optimizer's descent into ascent for the multipliers."""
    return -grad
