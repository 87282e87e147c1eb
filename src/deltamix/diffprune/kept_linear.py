"""The fixed-mask stage's linears: y = x theta^T + b, theta's gradient computed at the kept entries only.

Why: with a fixed mask only k of a linear's out x in weight entries train (0.5%), but autograd
computes the dense gradient g^T x (a product over every token and every entry) and KeptTheta then
reads k entries of it: on MiniLM at 8 x 24 tokens that product was a third of the step, what put the
fixed-mask stage above PEFT LoRA (whose adapter products are small). Here kept entry (i, j) gets
sum_t g[t, i] x[t, j] (``sampled_addmm``: k T products instead of out in T), handed
to KeptTheta as a sparse COO gradient over those entries (`row_gradients.gradient_at` reads it).
Only for fp32 weights without autocast: under bf16 / fp16 autocast the split linears of
split_linear.py run instead, and a low-precision model keeps autograd's product.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from deltamix.diffprune.linear_routing import LinearRoutingMode


class KeptLinear(torch.autograd.Function):
    """y = x theta^T + bias, shape (..., out); theta's gradient is sparse COO at ``(rows, cols)`` only.

    Args (of ``apply``):
        x: the input, shape (..., in).
        theta: the weight, shape (out, in) (base plus the kept values, from KeptTheta).
        bias: shape (out,), or None.
        rows, cols: the kept entries of theta, int64, shape (k,), sorted row-major and unique.
        row_starts: where each row's entries start in ``cols``, int64, shape (out + 1,) (CSR).
    """

    @staticmethod
    def forward(ctx, x, theta, bias, rows, cols, row_starts):
        ctx.save_for_backward(x, theta, rows, cols, row_starts)
        ctx.has_bias = bias is not None
        return F.linear(x, theta, bias)

    @staticmethod
    def backward(ctx, grad):
        x, theta, rows, cols, row_starts = ctx.saved_tensors
        grad_x = grad_theta = grad_bias = None
        flat_grad = grad.reshape(-1, grad.shape[-1])  # (T, out)
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(theta)
        if ctx.needs_input_grad[1]:
            flat_x = x.reshape(-1, x.shape[-1])  # (T, in)
            values = _sampled_product(flat_grad, flat_x, cols, row_starts, theta.shape).to(theta.dtype)
            grad_theta = torch.sparse_coo_tensor(
                torch.stack([rows, cols]), values, theta.shape, is_coalesced=True, check_invariants=False
            )
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = flat_grad.sum(0)
        return grad_x, grad_theta, grad_bias, None, None, None


def _sampled_product(grad: Tensor, x: Tensor, cols: Tensor, row_starts: Tensor, shape: torch.Size) -> Tensor:
    """(grad^T x) at the CSR pattern (``row_starts``, ``cols``) only, shape (k,); ``grad`` (T, out), ``x`` (T, in).

    ``torch.sparse.sampled_addmm``: one dot product over the T tokens per kept entry (1.5x faster
    on CPU than gathering columns of both and summing their products).
    """
    with warnings.catch_warnings():  # "sparse CSR support is in beta": nothing the user can act on
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(
            row_starts, cols, grad.new_zeros(cols.numel()), shape, check_invariants=False
        )
        return torch.sparse.sampled_addmm(pattern, grad.t(), x, beta=0.0).values()


class _KeptLinearMode(LinearRoutingMode):
    """Routes ``F.linear(x, theta, bias)`` to :class:`KeptLinear` for the registered thetas.

    ``entries``: id(theta) -> (theta, rows, cols, row starts).
    """

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None, extra: tuple) -> Tensor:
        return KeptLinear.apply(x, weight, bias, *extra)


@contextlib.contextmanager
def kept_linears(params: dict[str, Tensor], kept: dict[str, Tensor]) -> Iterator[None]:
    """While active, ``F.linear`` on ``params[name]`` runs :class:`KeptLinear` at the flat kept indices
    ``kept[name]`` (int64, sorted, shape (k_name,)) of that 2-D fp32 weight; nothing changes when ``kept`` is empty.

    Args:
        params: theta by parameter name (what ``functional_call`` receives).
        kept: the linear weights whose gradient is needed at their kept entries only, by name.
    """
    entries = {}
    for name, local in kept.items():
        theta = params.get(name)
        if theta is not None and theta.dim() == 2 and theta.dtype == torch.float32:  # as sampled_addmm takes
            rows, cols = local // theta.shape[1], local % theta.shape[1]
            row_starts = torch.zeros(theta.shape[0] + 1, dtype=torch.int64, device=local.device)
            torch.cumsum(torch.bincount(rows, minlength=theta.shape[0]), 0, out=row_starts[1:])
            entries[id(theta)] = (theta, rows, cols, row_starts)
    if not entries:
        yield
        return
    with _KeptLinearMode(entries):
        yield
