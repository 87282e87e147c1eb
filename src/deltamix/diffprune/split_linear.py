"""Low-precision autocast that keeps the diff: each gated linear runs its base product and its diff product apart.

Why: under bf16 (or fp16) autocast, ``F.linear(x, theta)`` casts theta = base + delta to bf16. A diff
is about 1e-3 of a weight, and bf16 keeps 8 bits of mantissa (a weight of 1 moves in steps of
2^-7): once added to the base before the cast, most of the diff rounds away and the model runs the
base weights. Here, while autocast is on, the linears whose weight is gated compute

    y = fp32(x_lp @ lp(base)^T) + fp32(x_lp @ lp(theta - base)^T) + bias       (lp: the autocast dtype)

so the diff is cast on its own (bf16 keeps a diff of 1e-4 to 3 digits), the two products are summed
in fp32 and the output is fp32: a diff of 1e-4 on a weight of 1 moves the output by 1e-4 where the
naive path moves it by nothing. With delta = 0 the output is the base model's under autocast,
summed in fp32. Backward: d loss / d theta = g^T x (one low-precision product, as autocast's),
d loss / d x = g @ lp(theta) (one product with theta rounded, as autocast's: rounding loses a small
diff's share of the input gradient, below a bf16 gradient's precision; through the base alone it
would also lose a large one) and d loss / d bias = sum g. Per gated linear and step that is one
extra product (the diff's, forward) and one pass over the weight (theta - base, rounded once)
beyond what plain autocast does.

The base weights' low-precision copies are made once and kept while the base is unchanged (its
storage and version). The kernels (fused.py, kept_theta.py, dense_theta.py) are untouched: theta is
still the fp32 theta of every stage, so fp32 training is bit for bit what it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from deltamix.diffprune.linear_routing import LinearRoutingMode

LOW_PRECISION = (torch.bfloat16, torch.float16)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The low-precision dtype autocast is running ``device``'s matrix products in, or None (autocast off)."""
    if not torch.is_autocast_enabled(device.type):
        return None
    dtype = torch.get_autocast_dtype(device.type)
    return dtype if dtype in LOW_PRECISION else None


class SplitLinear(torch.autograd.Function):
    """y = fp32(x @ base_lp^T) + fp32(x @ lp(theta - base)^T) + bias, shape (..., out); see the module docstring.

    Args (of ``apply``):
        x: the input, shape (..., in), any float dtype (cast to ``dtype``).
        theta: the gated weight, base + delta, shape (out, in), fp32 (differentiable).
        base: the frozen base weight, shape (out, in), fp32.
        base_lp: ``base`` in ``dtype``, shape (out, in).
        bias: shape (out,), or None (differentiable).
        dtype: the low-precision dtype of the products.
    """

    @staticmethod
    def forward(ctx, x, theta, base, base_lp, bias, dtype):
        x_lp = x.to(dtype)
        delta_lp = torch.empty(theta.shape, dtype=dtype, device=theta.device)
        torch.sub(theta.detach(), base, out=delta_lp)  # in fp32, rounded once to dtype: one pass
        y = torch.matmul(x_lp, base_lp.t()).float()
        y += torch.matmul(x_lp, delta_lp.t())
        if bias is not None:
            y += bias.detach().float()
        ctx.save_for_backward(x_lp, theta)
        ctx.meta = (x.dtype, dtype, bias is not None, bias.dtype if bias is not None else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x_lp, theta = ctx.saved_tensors
        x_dtype, dtype, has_bias, bias_dtype = ctx.meta
        grad_lp = grad.to(dtype)
        grad_x = grad_theta = grad_bias = None
        if ctx.needs_input_grad[0]:  # through theta rounded (the base alone would drop the diff's share)
            grad_x = torch.matmul(grad_lp, theta.detach().to(dtype)).to(x_dtype)
        if ctx.needs_input_grad[1]:
            flat_grad = grad_lp.reshape(-1, grad_lp.shape[-1])
            flat_x = x_lp.reshape(-1, x_lp.shape[-1])
            grad_theta = torch.matmul(flat_grad.t(), flat_x).float()
        if has_bias and ctx.needs_input_grad[4]:
            grad_bias = grad.reshape(-1, grad.shape[-1]).sum(0).to(bias_dtype)
        return grad_x, grad_theta, None, None, grad_bias, None


class _SplitLinearMode(LinearRoutingMode):
    """Routes ``F.linear(x, theta, bias)`` to :class:`SplitLinear` for the registered thetas.

    ``entries``: id(theta) -> (theta, base, base_lp).
    """

    def __init__(self, entries: dict[int, tuple[Tensor, Tensor, Tensor]], dtype: torch.dtype) -> None:
        super().__init__(entries)
        self.dtype = dtype

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None, extra: tuple) -> Tensor:
        base, base_lp = extra
        return SplitLinear.apply(x, weight, base, base_lp, bias, self.dtype)


class LowPrecisionBases:
    """The low-precision copies of base weights, made once per (weight, dtype) and kept while unchanged."""

    def __init__(self) -> None:
        self._copies: dict[tuple[str, torch.dtype], tuple[int, int, Tensor]] = {}

    def get(self, name: str, base: Tensor, dtype: torch.dtype) -> Tensor:
        """``base`` (any shape) in ``dtype``; recomputed when ``base``'s storage or version changed."""
        key = (name, dtype)
        stamp = (base.data_ptr(), base._version)
        cached = self._copies.get(key)
        if cached is None or cached[:2] != stamp:
            with torch.no_grad():
                cached = (*stamp, base.detach().to(dtype))
            self._copies[key] = cached
        return cached[2]

    def clear(self) -> None:
        """Drop every copy (after a move to another device or dtype)."""
        self._copies.clear()


def linear_weight_names(model: nn.Module) -> set[str]:
    """Names of the parameters that are the ``weight`` of an ``nn.Linear`` and appear nowhere else
    (a weight tied to an embedding is also looked up, so it is left to the plain path)."""
    counts: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        counts[id(p)] = counts.get(id(p), 0) + 1
    return {
        f"{prefix}.weight" if prefix else "weight"
        for prefix, module in model.named_modules()
        if isinstance(module, nn.Linear) and counts.get(id(module.weight)) == 1
    }


@contextlib.contextmanager
def split_linears(
    params: dict[str, Tensor],
    base: dict[str, Tensor],
    names: set[str],
    copies: LowPrecisionBases,
    dtype: torch.dtype | None,
) -> Iterator[None]:
    """While active, ``F.linear`` on ``params[name]`` (theta, for each gated linear weight in ``names``)
    runs :class:`SplitLinear` against ``base[name]``; nothing changes when ``dtype`` is None (autocast off).

    Args:
        params: theta by parameter name (what ``functional_call`` receives).
        base: the model's own (base) parameters by name.
        names: the linear weights that may be split (:func:`linear_weight_names`).
        copies: where the base weights' low-precision copies are kept.
        dtype: the autocast dtype (:func:`autocast_dtype`), or None.
    """
    if dtype is None:
        yield
        return
    split = {}
    for name, theta in params.items():
        if name in names and theta.dim() == 2 and theta.dtype == torch.float32:
            split[id(theta)] = (theta, base[name], copies.get(name, base[name], dtype))
    if not split:
        yield
        return
    with _SplitLinearMode(split, dtype):
        yield
