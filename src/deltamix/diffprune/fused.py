"""Chunked, allocation-light kernels of the L0 stage: theta = base + z(alpha) * w [* z_group] per tensor, and the expected L0.

Why: on CPU the L0 stage's cost beyond full fine-tuning is elementwise passes over d (the number of
gated entries, 22.7M on MiniLM), and most of it was not arithmetic but fresh d-sized temporaries
(each first touch of a new 91 MB buffer page-faults) and passes that exist only to glue ops together
(``split`` + ``cat``, ``param + delta``, ``z - l``, ``r - z``, ...). Here every elementwise chain runs
chunk by chunk (``CHUNK`` entries, small enough for the cache and for the allocator to reuse its
scratch), writing straight into the tensors that must exist anyway: theta per parameter, z (kept
for backward) and the gradients; the expected-L0 penalty is computed in the same pass, and its
gradient added to alpha's in the same backward loop. Those d-sized tensors come from a
:class:`~deltamix.diffprune.workspace.Workspace`, so a training loop that resets ``.grad`` to None
between steps (Trainer, ``zero_grad()``) allocates none of them after the first step. No
torch.compile. An input embedding can be restricted to the rows a batch looks up (``rows``): its
other entries cannot reach the loss, so only the penalty is computed for them, and its sampled
gates come from a counter-based hash of one drawn key and the entry's position, so that they (and
the generator's state afterwards) do not depend on which rows a process looks up.

For the same gate z, theta is bit-identical to the composed path (``gated_diff`` then
``param + delta``): the same float operations in the same order (a multiply then an add, never a
fused multiply-add); the gradients agree to float rounding (fewer passes, other operation order).
A sampled gate and its entry's penalty term share one exponential (`sampled_gate_and_penalty_` (gate_chunk.py)),
so they equal the composed path's logit / sigmoid ops on the same uniform draws to float rounding
(the chunk-by-chunk draws are the very uniforms of one `GateNoise` draw over all d entries, as ``gated_diff``'s).
The penalty's slope p (1 - p) is kept by the forward pass in the buffer that becomes alpha's
gradient, so backward does not recompute the sigmoid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from deltamix.diffprune.gate_chunk import GateConstants, gate_, sampled_gate_and_penalty_
from deltamix.diffprune.gate_noise import GateNoise
from deltamix.diffprune.row_gradients import gradient_at, row_entries_of, row_gradient
from deltamix.diffprune.row_theta import compose_rows_, reset_to_base_, times
from deltamix.diffprune.workspace import Workspace, tensor_stamp

__all__ = [
    "CHUNK",
    "ExpectedL0",
    "GatedTheta",
    "deterministic_delta",
    "expected_l0_chunked",
    "gated_thetas",
    "gradient_at",
    "row_entries_of",
    "row_gradient",
]

CHUNK = 1 << 18  # entries per chunk (1 MB of fp32): scratch stays in cache and is reused by malloc


def _chunks(numel: int) -> range:
    return range(0, numel, CHUNK)


@torch.no_grad()
def deterministic_delta(
    w: Tensor, alpha: Tensor, left: float, right: float, offsets: Sequence[int]
) -> Tensor:
    """delta = z(alpha) * w with the deterministic gate, shape (d,), chunked exactly as :class:`GatedTheta`.

    Vectorised and scalar code paths of ``sigmoid`` can differ in the last bit, so the exported diff
    must be computed with the same chunk boundaries as the forward pass for ``merged()`` and
    ``export_diff()`` to reproduce the unmerged model bit for bit.
    """
    delta = torch.empty_like(w)
    ends = [*offsets[1:], w.numel()]
    for start, end in zip(offsets, ends, strict=True):
        for a in _chunks(end - start):
            lo, hi = start + a, min(start + a + CHUNK, end)
            z = gate_(delta[lo:hi], alpha[lo:hi], left, right, sampled=False)
            z.mul_(w[lo:hi])
    return delta


class _ForwardBuffers(NamedTuple):
    """The forward pass's buffers (from the workspace; ``k = CHUNK``)."""

    z: Tensor  # (d,): every entry's gate, saved for backward
    scratch: Tensor  # (k,): a chunk's P(z != 0) or exp(-alpha)
    den: Tensor  # (k,): a chunk's u + (1 - u) exp(-alpha) (sampled gates)
    delta: Tensor | None  # (k,): a chunk's z * w before the group gate (structured only)
    slope: Tensor | None  # (d,): the penalty's slope p (1 - p), which becomes alpha's gradient, or None
    penalty: Tensor  # (num tensors,) float64: each tensor's expected L0
    noise: GateNoise | None  # the uniform draws of the sampled gates (None: deterministic)
    constants: GateConstants


def _forward_buffers(
    workspace: Workspace,
    alpha: Tensor,
    structured: bool,
    penalty_shift: float | None,
    num_tensors: int,
    stretch: tuple[float, float, bool],
) -> _ForwardBuffers:
    """Take the forward pass's buffers; ``slope`` only when the penalty's gradient will be needed.

    ``stretch``: (l, r, whether the gates are sampled).
    """
    device = alpha.device
    left, right, sample = stretch
    constants = GateConstants(
        left=torch.tensor(left, dtype=alpha.dtype, device=device),
        one=torch.ones((), dtype=alpha.dtype, device=device),
        width=right - left,
        exp_shift=math.exp(penalty_shift) if penalty_shift is not None else 1.0,
    )
    # The penalty's slope p (1 - p), p = sigmoid(alpha - shift), is written while p is at hand, into
    # the buffer that becomes alpha's gradient: backward then scales it rather than recompute p.
    with_slope = penalty_shift is not None and alpha.requires_grad
    return _ForwardBuffers(
        z=workspace.take("z", alpha.shape, alpha.dtype, device),
        scratch=workspace.take("scratch", (CHUNK,), alpha.dtype, device),
        den=workspace.take("scratch_gw", (CHUNK,), alpha.dtype, device),  # free again in backward
        delta=workspace.take("scratch_delta", (CHUNK,), alpha.dtype, device) if structured else None,
        slope=workspace.take("grad_alpha", alpha.shape, alpha.dtype, device) if with_slope else None,
        penalty=torch.zeros(num_tensors, dtype=torch.float64, device=device),
        noise=GateNoise(device) if sample else None,
        constants=constants,
    )


def _compose_tensor_(
    buffers: _ForwardBuffers,
    index: int,
    start: int,
    flat_theta: Tensor,
    flat_base: Tensor,
    w: Tensor,
    alpha: Tensor,
    group_gate: Tensor | None,
    left: float,
    right: float,
    sample: bool,
    penalty_shift: float | None,
    penalty_only: bool,
) -> None:
    """One gated tensor, chunk by chunk: its expected L0 into ``buffers.penalty[index]`` (and the slopes),
    and, unless ``penalty_only`` (a row-restricted tensor, composed by `compose_rows_` (row_theta.py)), its gates into
    ``buffers.z`` and theta = base + z * w [* zg] into ``flat_theta`` (shape (numel,)).

    ``w``, ``alpha``: flat over all tensors, (d,); this tensor is ``[start, start + numel)``.
    """
    numel = flat_base.numel()
    z_all, scratch = buffers.z, buffers.scratch
    fused_gate = sample and penalty_shift is not None and not penalty_only
    for a in _chunks(numel):
        b = min(a + CHUNK, numel)
        lo, hi = start + a, start + b
        if fused_gate:  # the gate and the chunk's P(z != 0) from one exponential
            z = z_all[lo:hi]
            p = sampled_gate_and_penalty_(
                z, alpha[lo:hi], buffers.noise, buffers.constants, scratch[: b - a], buffers.den[: b - a]
            )
        elif penalty_shift is not None:  # the expected L0 of this chunk, while alpha is in cache
            p = torch.sub(alpha[lo:hi], penalty_shift, out=scratch[: b - a]).sigmoid_()
        if penalty_shift is not None:
            buffers.penalty[index] += p.sum()  # float32 within the chunk, float64 across chunks
            if buffers.slope is not None:
                torch.addcmul(p, p, p, value=-1.0, out=buffers.slope[lo:hi])  # p - p^2
        if penalty_only:
            continue
        if not fused_gate:
            z = z_all[lo:hi] if buffers.noise is None else buffers.noise.fill_(z_all[lo:hi])
            z = gate_(z, alpha[lo:hi], left, right, sampled=buffers.noise is not None)
        if group_gate is None:
            # base + z * w: the product rounded to theta's dtype, then the sum (as base + delta)
            torch.mul(z, w[lo:hi], out=flat_theta[a:b]).add_(flat_base[a:b])
        else:  # base + (z * w) * zg, the same operations as the composed path
            product = torch.mul(z, w[lo:hi], out=buffers.delta[: b - a])
            torch.mul(product, group_gate, out=flat_theta[a:b]).add_(flat_base[a:b])


@dataclass
class _Backward:
    """What the backward pass of one GatedTheta call computes with and into (``k = CHUNK``)."""

    w: Tensor  # (d,)
    alpha: Tensor  # (d,)
    left: float
    right: float
    penalty_shift: float | None
    grad_penalty: Tensor | None  # (num tensors,): the incoming gradient of the penalty output
    with_penalty: bool  # the penalty's gradient is added to alpha's
    use_stored: bool  # alpha's gradient buffer holds the penalty's slope p (1 - p) from forward
    grad_w: Tensor | None  # (d,), or None when w needs no gradient
    grad_alpha: Tensor | None  # (d,), or None when alpha needs no gradient
    grad_group: Tensor | None  # (num tensors,) float64, or None when the group gates need none
    slope_buffer: Tensor  # (k,): a chunk's dz / dalpha
    penalty_buffer: Tensor | None  # (k,): a chunk's p when the slope is recomputed
    gw_buffer: Tensor | None  # (k,): a chunk's g * w when it is not written into grad_alpha
    scale: float  # 1 / (r - l)
    offset: Tensor  # -l r / (r - l), a scalar tensor


def _backward_state(ctx, w: Tensor, alpha: Tensor, grad_penalty: Tensor | None) -> _Backward:
    """The backward pass's outputs and buffers, from the workspace; takes over the slopes forward kept."""
    with_penalty = grad_penalty is not None and ctx.penalty_shift is not None
    left, right = ctx.stretch
    need_w, need_alpha, need_group = ctx.needs_input_grad[:3]
    take = ctx.workspace.take
    # p (1 - p) of the penalty, kept by forward in the buffer that becomes alpha's gradient. The
    # reference is dropped so that autograd can adopt the gradient as alpha.grad without a copy.
    stored, ctx.slope_store = ctx.slope_store, None
    if not need_alpha:
        grad_alpha = None
    elif stored is not None:
        grad_alpha = stored
    else:
        grad_alpha = take("grad_alpha", w.shape, w.dtype, w.device)
    use_stored = need_alpha and with_penalty and stored is not None
    del stored
    # dz/dalpha = (z - l)(r - z)/(r - l) = (z((l + r) - z) - lr)/(r - l) inside (0, 1), 0 where clamped
    scale = 1.0 / (right - left)
    return _Backward(
        w=w,
        alpha=alpha,
        left=left,
        right=right,
        penalty_shift=ctx.penalty_shift,
        grad_penalty=grad_penalty,
        with_penalty=with_penalty,
        use_stored=use_stored,
        grad_w=take("grad_w", w.shape, w.dtype, w.device) if need_w else None,
        grad_alpha=grad_alpha,
        # d loss / d zg_i = sum_{j in i} g_j z_j w_j, accumulated in float64 per tensor
        grad_group=torch.zeros(len(ctx.spans), dtype=torch.float64, device=w.device) if need_group else None,
        slope_buffer=take("scratch", (CHUNK,), w.dtype, w.device),
        penalty_buffer=(
            take("scratch_penalty", (CHUNK,), w.dtype, w.device) if with_penalty and not use_stored else None
        ),
        gw_buffer=(
            take("scratch_gw", (CHUNK,), w.dtype, w.device)
            if (need_group and not need_alpha) or use_stored
            else None
        ),
        scale=scale,
        offset=torch.tensor(-left * right * scale, dtype=w.dtype, device=w.device),
    )


def _gate_slope_(bw: _Backward, out: Tensor, z: Tensor) -> Tensor:
    """dz / dalpha at gates ``z`` (shape (n,)), written into ``out`` (shape (n,)): 0 where clamped."""
    if bw.left + bw.right == 0.0:  # symmetric stretch (the default): (l + r) - z = -z, one pass fewer
        torch.addcmul(bw.offset, z, z, value=-bw.scale, out=out)
    else:
        torch.addcmul(bw.offset, torch.sub(bw.left + bw.right, z, out=out), z, value=bw.scale, out=out)
    # 0 where the gate is clamped (hardtanh_backward: the mask and the select in one pass)
    torch.ops.aten.hardtanh_backward.grad_input(out, z, 0.0, 1.0, grad_input=out)
    return out


def _penalty_gradient_only_(bw: _Backward, index: int, start: int, numel: int) -> None:
    """alpha's gradient over tensor ``index`` (``[start, start + numel)``) from the penalty alone:
    grad_penalty_i * p (1 - p), scaled from the stored slopes or recomputed chunk by chunk, else 0."""
    grad_alpha = bw.grad_alpha
    if bw.use_stored:  # grad_penalty_i * p (1 - p)
        grad_alpha[start : start + numel].mul_(bw.grad_penalty[index])
    elif bw.with_penalty:
        for a in _chunks(numel):
            b = min(a + CHUNK, numel)
            p = torch.sub(
                bw.alpha[start + a : start + b], bw.penalty_shift, out=grad_alpha[start + a : start + b]
            )
            p.sigmoid_()
            torch.ops.aten.sigmoid_backward.grad_input(bw.grad_penalty[index].expand_as(p), p, grad_input=p)
    else:
        grad_alpha[start : start + numel].zero_()


def _backward_rows_(
    bw: _Backward,
    index: int,
    start: int,
    numel: int,
    grad: Tensor,
    group_gate: Tensor | None,
    row_ids: Tensor,
    row_entries: Tensor,
    row_z: Tensor,
) -> None:
    """The gradients of a row-restricted tensor: the loss reaches only its rows ``row_ids`` (flat
    ``row_entries`` (m,), gates ``row_z`` (m,)), so w's gradient is 0 elsewhere and alpha's the
    penalty's alone, plus the loss's at the rows. ``grad`` may be sparse COO over rows."""
    g = row_gradient(grad, row_ids, row_entries)
    rows_w = bw.w[row_entries + start]
    span = slice(start, start + numel)
    if bw.grad_w is not None:
        bw.grad_w[span].zero_().index_copy_(0, row_entries, times(torch.mul(g, row_z), group_gate))
    if bw.grad_alpha is not None or bw.grad_group is not None:
        gw = torch.mul(g, rows_w)
        if bw.grad_group is not None:
            bw.grad_group[index] += torch.dot(gw, row_z).double()
    if bw.grad_alpha is not None:
        slope = _gate_slope_(bw, torch.empty_like(row_z), row_z)
        from_loss = times(gw, group_gate).mul_(slope)
        _penalty_gradient_only_(bw, index, start, numel)
        bw.grad_alpha[span].index_add_(0, row_entries, from_loss)


def _backward_chunks_(
    bw: _Backward, index: int, start: int, numel: int, grad: Tensor, group_gate: Tensor | None, z_all: Tensor
) -> None:
    """The gradients of tensor ``index`` (``[start, start + numel)`` of the flat vectors), chunk by
    chunk, from its incoming gradient ``grad`` (its shape, dense or sparse) and the saved gates (d,):
    w's g z [zg], the group gate's sum g z w, alpha's slope * g w [zg] plus the penalty's."""
    flat_grad = (grad.to_dense() if grad.is_sparse else grad).reshape(-1)
    need_alpha = bw.grad_alpha is not None
    for a in _chunks(numel):
        b = min(a + CHUNK, numel)
        lo, hi = start + a, start + b
        g = flat_grad[a:b].float()
        z = z_all[lo:hi]
        if bw.grad_w is not None:
            torch.mul(g, z, out=bw.grad_w[lo:hi])
            if group_gate is not None:
                bw.grad_w[lo:hi].mul_(group_gate)
        if need_alpha or bw.grad_group is not None:
            into_alpha = need_alpha and not bw.use_stored
            gw = torch.mul(
                g, bw.w[lo:hi], out=(bw.grad_alpha[lo:hi] if into_alpha else bw.gw_buffer[: b - a])
            )
            if bw.grad_group is not None:
                bw.grad_group[index] += torch.dot(gw, z).double()
        if need_alpha:
            slope = _gate_slope_(bw, bw.slope_buffer[: b - a], z)
            out = gw if group_gate is None else gw.mul_(group_gate)
            if bw.use_stored:  # grad_penalty_i * p (1 - p) (kept by forward) + slope * g w
                bw.grad_alpha[lo:hi].mul_(bw.grad_penalty[index]).addcmul_(slope, out)
            elif bw.with_penalty:  # + grad_penalty_i * p (1 - p), p = sigmoid(alpha - shift)
                p = torch.sub(bw.alpha[lo:hi], bw.penalty_shift, out=bw.penalty_buffer[: b - a])
                p.sigmoid_()
                upstream = bw.grad_penalty[index].expand_as(p)
                torch.ops.aten.sigmoid_backward.grad_input(upstream, p, grad_input=p)
                torch.addcmul(p, slope, out, out=out)
            else:
                out.mul_(slope)


class GatedTheta(torch.autograd.Function):
    """theta_i = base_i + z_i * w_i [* zg_i] for each gated tensor i, z a hard-concrete gate (see module
    docstring) and zg_i the tensor's group gate when the diff is structured.

    Args (of ``apply``):
        w, alpha: flat diff weights and gate log-odds, shape (d,), fp32.
        group_z: the group gate of each tensor, shape (num tensors,), fp32 (differentiable), or None.
        workspace: where the d-sized tensors (z, each theta, the two gradients) come from; buffers
            are reused across steps only while nothing else shares them (see workspace.py).
        left, right: stretch limits.
        sample: draw logistic noise (training) or use the deterministic gate.
        offsets: start of each tensor in the flat vectors.
        penalty_shift: log(-l / r) to also compute the expected L0 norm of each tensor, or None.
        alive: a one-element list set to False when backward runs (the graph is then used up).
        rows: ``(i, row_ids)``: of the 2-D tensor i only the rows ``row_ids`` (int64, sorted, unique,
            shape (m,)) can reach the loss (the rows of an input embedding that the batch looks
            up), or None. Only their gates are drawn (sampled: from one key and each entry's
            position, so an entry's gate does not depend on the other rows; see `compose_rows_` (row_theta.py))
            and their theta composed; theta_i is base_i elsewhere, the gradient of w there is 0
            and that of alpha the penalty's alone (exact: the loss does not depend on those
            entries). The penalty still covers every entry.
            Tensor i's incoming gradient may be sparse (``nn.Embedding(sparse=True)``).
        *bases: the frozen base tensors, in the order of ``offsets`` (any float dtype, contiguous).

    Returns:
        One theta per base tensor, each of its base's shape and dtype, then the expected L0 norm of
        each tensor's entry gates, sum_{j in i} sigmoid(alpha_j - shift), shape (num tensors,)
        (zeros when ``penalty_shift`` is None).
    """

    @staticmethod
    def forward(
        ctx, w, alpha, group_z, workspace, left, right, sample, offsets, penalty_shift, alive, rows, *bases
    ):
        buffers = _forward_buffers(
            workspace, alpha, group_z is not None, penalty_shift, len(bases), (left, right, sample)
        )
        row_index, row_ids, row_entries, row_z = -1, None, None, None
        if rows is not None:
            row_index, row_ids = rows
            row_entries = row_entries_of(row_ids, bases[row_index].shape[1])
        thetas = []
        for index, (start, base) in enumerate(zip(offsets, bases, strict=True)):
            theta = workspace.take(("theta", index), base.shape, base.dtype, base.device)
            flat_theta, flat_base = theta.view(-1), base.reshape(-1)
            group_gate = None if group_z is None else group_z[index]
            if index == row_index:
                reset_to_base_(workspace, ("theta", index), theta, base)
                row_z = compose_rows_(
                    flat_theta, flat_base, w, alpha, start, row_entries, left, right, sample, group_gate
                )
                workspace.stamp(("theta", index), theta, (tensor_stamp(base),), note=row_entries)
            _compose_tensor_(
                buffers, index, start, flat_theta, flat_base, w, alpha, group_gate, left, right, sample,
                penalty_shift, penalty_only=index == row_index,
            )  # fmt: skip
            thetas.append(theta)
        ctx.save_for_backward(w, alpha, buffers.z, group_z, row_ids, row_entries, row_z)
        ctx.row_index = row_index
        ctx.workspace = workspace
        ctx.stretch = (left, right)
        ctx.penalty_shift = penalty_shift
        ctx.alive = alive
        ctx.slope_store = buffers.slope
        ctx.spans = [(start, base.numel(), base.dtype) for start, base in zip(offsets, bases, strict=True)]
        return (*thetas, buffers.penalty.to(alpha.dtype))

    @staticmethod
    def backward(ctx, *grads):
        *grads, grad_penalty = grads
        ctx.alive[0] = False  # this graph is used up; its penalty output cannot be reused
        w, alpha, z_all, group_z, row_ids, row_entries, row_z = ctx.saved_tensors
        bw = _backward_state(ctx, w, alpha, grad_penalty)
        for index, ((start, numel, _), grad) in enumerate(zip(ctx.spans, grads, strict=True)):
            if grad is None:  # this tensor did not reach the loss
                grad = torch.zeros((), dtype=w.dtype, device=w.device).expand(numel)
            group_gate = group_z[index] if group_z is not None else None
            if index == ctx.row_index:
                _backward_rows_(bw, index, start, numel, grad, group_gate, row_ids, row_entries, row_z)
            else:
                _backward_chunks_(bw, index, start, numel, grad, group_gate, z_all)
        grad_group = bw.grad_group.to(group_z.dtype) if bw.grad_group is not None else None
        return (bw.grad_w, bw.grad_alpha, grad_group, *([None] * 8), *([None] * len(ctx.spans)))


def gated_thetas(
    w: Tensor,
    alpha: Tensor,
    left: float,
    right: float,
    sample: bool,
    offsets: Sequence[int],
    bases: Sequence[Tensor],
    with_penalty: bool = False,
    alive: list[bool] | None = None,
    workspace: Workspace | None = None,
    group_z: Tensor | None = None,
    rows: tuple[int, Tensor] | None = None,
) -> tuple[tuple[Tensor, ...], Tensor | None]:
    """(theta_i = base_i + z_i * w_i [* group_z_i] per tensor, expected L0 per tensor or None); see
    :class:`GatedTheta`.

    With ``with_penalty`` the expected L0 norm of each tensor's entry gates,
    sum_{j in i} sigmoid(alpha_j - log(-l / r)), shape (num tensors,), is computed in the same chunked
    pass (differentiable in alpha; its gradient is added to alpha's in the same backward pass, so the
    penalty costs no d-sized tensor of its own): ``.sum()`` is the unstructured penalty; the
    structured one adds the group gates' P(z != 0) to it, or (the paper's product) weights each
    tensor's term by its group gate's P(z != 0) (see ``DiffPruningModel.l0_penalty``). ``group_z`` (shape (num tensors,),
    differentiable) multiplies each tensor's diff (structured diff pruning). ``rows = (i, row_ids)``
    computes the 2-D tensor i at those rows only (see :class:`GatedTheta`). ``alive[0]`` turns
    False once the backward pass has run. Pass the same ``workspace`` every step to reuse its
    buffers (a new one each call allocates everything afresh).
    """
    shift = math.log(-left / right) if with_penalty else None
    alive = alive if alive is not None else [True]
    workspace = workspace if workspace is not None else Workspace()
    *thetas, penalty = GatedTheta.apply(
        w, alpha, group_z, workspace, left, right, sample, list(offsets), shift, alive, rows, *bases
    )
    return tuple(thetas), penalty if with_penalty else None


class ExpectedL0(torch.autograd.Function):
    """sum_i sigmoid(alpha_i - log(-l / r)): the expected L0 norm, chunked (no d-sized temporary).

    Backward: d/dalpha_i = g * p_i (1 - p_i) with p_i recomputed chunk by chunk.
    """

    @staticmethod
    def forward(ctx, alpha: Tensor, shift: float) -> Tensor:
        total = torch.zeros((), dtype=torch.float64, device=alpha.device)
        for a in _chunks(alpha.numel()):
            total += torch.sigmoid(alpha[a : a + CHUNK] - shift).sum(dtype=torch.float64)
        ctx.save_for_backward(alpha)
        ctx.shift = shift
        return total.to(alpha.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (alpha,) = ctx.saved_tensors
        out = torch.empty_like(alpha)
        for a in _chunks(alpha.numel()):
            p = torch.sub(alpha[a : a + CHUNK], ctx.shift).sigmoid_()
            # grad * p (1 - p) in one pass
            torch.ops.aten.sigmoid_backward.grad_input(grad.expand_as(p), p, grad_input=out[a : a + CHUNK])
        return out, None


def expected_l0_chunked(alpha: Tensor, left: float, right: float) -> Tensor:
    """sum_i P(z_i != 0) for stretch limits (l, r): a scalar, differentiable in alpha (see :class:`ExpectedL0`)."""
    return ExpectedL0.apply(alpha, math.log(-left / right))
