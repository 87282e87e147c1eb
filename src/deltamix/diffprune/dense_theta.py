"""theta = base + w for every gated tensor: the dense diff of the non-adaptive baseline's first stage.

What autograd would do with ``base + w_i`` per tensor costs, on CPU, a fresh d-sized theta and a
d-sized gradient (``split``'s backward concatenates the pieces) every step, each first touch of a new
page a fault. Here theta and the gradient of w are written into reused
:class:`~deltamix.diffprune.workspace.Workspace` buffers, and, as in the L0 stage (fused.py), an input
embedding can be restricted to the rows a batch looks up. The values are those of ``base + w``: the
same addition, and the gradient of w is the incoming gradient itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deltamix.diffprune.row_gradients import row_entries_of, row_gradient
from deltamix.diffprune.workspace import Workspace


class DenseTheta(torch.autograd.Function):
    """theta_i = base_i + w_i for each tensor i (w rounded to base_i's dtype first, as ``.to`` does).

    Args (of ``apply``):
        w: the flat dense diff, shape (d,), fp32.
        workspace: where theta and the gradient of w come from (reused while idle).
        offsets: start of each tensor in ``w``.
        rows: ``(i, row_ids)``: of the 2-D tensor i only rows ``row_ids`` (int64, sorted, unique) can
            reach the loss; theta_i is base_i elsewhere and the gradient of w there is 0. Or None.
        *bases: the frozen base tensors, in the order of ``offsets`` (contiguous).

    Returns:
        One theta per base tensor, each of its base's shape and dtype.
    """

    @staticmethod
    def forward(ctx, w, workspace, offsets, rows, *bases):
        row_index, row_ids, entries = -1, None, None
        if rows is not None:
            row_index, row_ids = rows
            entries = row_entries_of(row_ids, bases[row_index].shape[1])
        thetas = []
        for index, (start, base) in enumerate(zip(offsets, bases, strict=True)):
            theta = workspace.take(("theta", index), base.shape, base.dtype, base.device)
            flat_theta, flat_base = theta.view(-1), base.reshape(-1)
            part = w[start : start + base.numel()]
            if index == row_index:
                flat_theta.copy_(flat_base)
                values = part[entries].to(base.dtype)
                flat_theta.index_copy_(0, entries, torch.add(flat_base[entries], values))
            else:
                torch.add(flat_base, part.to(base.dtype), out=flat_theta)
            thetas.append(theta)
        ctx.save_for_backward(row_ids, entries)
        ctx.row_index = row_index
        ctx.workspace = workspace
        ctx.spans = [(start, base.numel()) for start, base in zip(offsets, bases, strict=True)]
        ctx.numel = w.numel()
        ctx.w_meta = (w.dtype, w.device)
        return tuple(thetas)

    @staticmethod
    def backward(ctx, *grads):
        row_ids, entries = ctx.saved_tensors
        dtype, device = ctx.w_meta
        grad_w = ctx.workspace.take("grad_w", (ctx.numel,), dtype, device)
        for index, ((start, numel), grad) in enumerate(zip(ctx.spans, grads, strict=True)):
            span = grad_w[start : start + numel]
            if grad is None:  # this tensor did not reach the loss
                span.zero_()
            elif index == ctx.row_index:
                span.zero_().index_copy_(0, entries, row_gradient(grad, row_ids, entries))
            else:
                span.copy_((grad.to_dense() if grad.is_sparse else grad).reshape(-1))
        return (grad_w, None, None, None, *([None] * len(ctx.spans)))


def dense_thetas(
    w: Tensor,
    offsets: Sequence[int],
    bases: Sequence[Tensor],
    workspace: Workspace | None = None,
    rows: tuple[int, Tensor] | None = None,
) -> tuple[Tensor, ...]:
    """theta_i = base_i + w_i per tensor (see :class:`DenseTheta`); pass the same ``workspace`` every
    step to reuse its buffers (None allocates them afresh)."""
    workspace = workspace if workspace is not None else Workspace()
    return DenseTheta.apply(w, workspace, list(offsets), rows, *bases)
