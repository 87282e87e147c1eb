"""theta = base with the kept diff values added at their indices: the fixed-mask stage's forward.

What autograd would do with ``base.index_add(0, local, values)`` per tensor costs, on CPU, a fresh
copy of every tensor that has a kept entry (nearly all of them: d floats) every step, each first
touch of a new page a fault. Here each theta is written into a reused
:class:`~deltamix.diffprune.workspace.Workspace` buffer (one copy of the base, then the values
added), and the gradient of the k kept values is gathered from theta's gradient, which may be sparse
over rows (an input embedding switched to ``sparse=True``: no vocabulary-sized gradient is filled).
The values are those of ``index_add``: the same single addition per kept entry. A buffer that still
holds the last step's theta (the same buffer, not written since, over the same unchanged base) gets
only its kept entries rewritten, k writes instead of a copy of d floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deltamix.diffprune.row_gradients import gradient_at
from deltamix.diffprune.workspace import Workspace, tensor_stamp


class KeptTheta(torch.autograd.Function):
    """theta_i = base_i with ``values[start_i:end_i]`` added at the flat indices ``local_i``.

    Args (of ``apply``):
        values: the kept diff values, shape (k,), fp32.
        workspace: where each theta comes from (reused while idle).
        pieces: for each tensor that has kept entries, ``(local indices (k_i,), start, end)`` into
            ``values``.
        *bases: those tensors' frozen base values, in the order of ``pieces`` (contiguous).

    Returns:
        One theta per base tensor, each of its base's shape and dtype.
    """

    @staticmethod
    def forward(ctx, values, workspace, pieces, *bases):
        thetas = []
        for index, ((local, start, end), base) in enumerate(zip(pieces, bases, strict=True)):
            key = ("kept_theta", index)
            theta = workspace.take(key, base.shape, base.dtype, base.device)
            flat, flat_base, kept = theta.view(-1), base.reshape(-1), values[start:end].to(base.dtype)
            inputs = (tensor_stamp(base), tensor_stamp(local))
            if workspace.held(key, theta, inputs)[0]:  # last step's theta: only the kept entries change
                flat.index_put_((local,), flat_base[local].add_(kept))
            else:
                flat.copy_(flat_base)
                flat.index_add_(0, local, kept)
            workspace.stamp(key, theta, inputs)
            thetas.append(theta)
        ctx.pieces = pieces
        ctx.values_meta = (values.numel(), values.dtype, values.device)
        return tuple(thetas)

    @staticmethod
    def backward(ctx, *grads):
        numel, dtype, device = ctx.values_meta
        grad_values = torch.zeros(numel, dtype=dtype, device=device)
        for (local, start, end), grad in zip(ctx.pieces, grads, strict=True):
            if grad is not None:
                grad_values[start:end] = gradient_at(grad, local)
        return (grad_values, None, None, *([None] * len(ctx.pieces)))


def kept_thetas(
    values: Tensor,
    pieces: Sequence[tuple[Tensor, int, int]],
    bases: Sequence[Tensor],
    workspace: Workspace | None = None,
) -> tuple[Tensor, ...]:
    """theta_i = base_i plus the kept values at their indices (see :class:`KeptTheta`); pass the same
    ``workspace`` every step to reuse its buffers (None allocates them afresh)."""
    workspace = workspace if workspace is not None else Workspace()
    return KeptTheta.apply(values, workspace, list(pieces), *bases)
