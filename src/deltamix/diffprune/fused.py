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
A sampled gate and its entry's penalty term share one exponential (`_sampled_gate_and_penalty_`),
so they equal the composed path's logit / sigmoid ops on the same uniform draws to float rounding
(on CPU the chunk-by-chunk draws are the very uniforms of one ``rand_like`` over all d entries).
The penalty's slope p (1 - p) is kept by the forward pass in the buffer that becomes alpha's
gradient, so backward does not recompute the sigmoid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from deltamix.diffprune.workspace import Workspace

CHUNK = 1 << 18  # entries per chunk (1 MB of fp32): scratch stays in cache and is reused by malloc
_EPS = 1e-6


def _chunks(numel: int) -> range:
    return range(0, numel, CHUNK)


def _signed(value: int) -> int:
    """A 64-bit constant as the int64 with the same bits (torch's int64 arithmetic wraps mod 2^64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = (_signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _keyed_uniform_(out: Tensor, key: Tensor, positions: Tensor) -> Tensor:
    """U[0, 1) draws that are a function of (``key``, position) alone, written into ``out`` (shape (m,)).

    The splitmix64 hash of ``key + (position + 1) * golden`` (logical shifts: torch's ``>>`` on int64
    is arithmetic, so the sign bits are masked off), its top 24 bits scaled by 2^-24 as ``uniform_``
    does for float32. Entry j's draw is the same whichever other entries are drawn with it, and the
    generator's stream advances by the one draw of ``key``, not by m: what keeps every process of a
    data-parallel job on the same noise when each looks up other embedding rows.
    """
    x = (positions + 1) * _GOLDEN + key
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _MIX1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _MIX2
    x = x ^ ((x >> 31) & ((1 << 33) - 1))
    return torch.mul((x >> 40) & 0xFFFFFF, 2.0**-24, out=out)


def _gate_(
    z: Tensor,
    alpha: Tensor,
    left: float,
    right: float,
    sample: bool,
    noise_key: Tensor | None = None,
    positions: Tensor | None = None,
) -> Tensor:
    """Write the hard-concrete gate of ``alpha`` (one chunk) into ``z`` in place and return it.

    Sampled, u comes from the default generator (``uniform_``), or with ``noise_key`` from
    `_keyed_uniform_` at ``positions`` (int64, z's shape).
    """
    if sample:  # log u - log(1 - u) + alpha
        u = z.uniform_() if noise_key is None else _keyed_uniform_(z, noise_key, positions)
        torch.logit(u, eps=_EPS, out=z).add_(alpha).sigmoid_()
    else:
        torch.sigmoid(alpha, out=z)
    return z.mul_(right - left).add_(left).clamp_(0.0, 1.0)


def _sampled_gate_and_penalty_(
    z: Tensor, alpha: Tensor, left: float, right: float, scratch: Tensor, penalty_shift: float
) -> Tensor:
    """Sample the gate of ``alpha`` (one chunk, shape (n,)) into ``z`` in place; return each entry's
    P(z != 0) = sigmoid(alpha - shift), written into ``scratch`` (shape (n,)).

    One exponential serves both: with e = exp(-alpha), sigmoid(log u - log(1 - u) + alpha) =
    1 / (1 + e (1/u - 1)) and sigmoid(alpha - shift) = 1 / (1 + exp(shift) e), where the separate
    ops take a logit, a sigmoid and another sigmoid per entry (the costliest passes of the L0 stage
    after drawing u). u is clamped to [eps, 1 - eps] as ``logit(u, eps)`` does, so the noise
    distribution is the same; e = inf (alpha < -88) gives 0 and e = 0 gives 1, as the sigmoids do.
    """
    e = torch.neg(alpha, out=scratch).exp_()
    u = z.uniform_().clamp_(_EPS, 1.0 - _EPS)
    u.reciprocal_().sub_(1.0).mul_(e).add_(1.0).reciprocal_()  # z = sigmoid(logit(u) + alpha)
    z.mul_(right - left).add_(left).clamp_(0.0, 1.0)
    return e.mul_(math.exp(penalty_shift)).add_(1.0).reciprocal_()  # sigmoid(alpha - shift)


def _times(values: Tensor, group_gate: Tensor | None) -> Tensor:
    """``values`` times the tensor's group gate in place (structured), or ``values`` unchanged."""
    return values if group_gate is None else values.mul_(group_gate)


def row_entries_of(row_ids: Tensor, width: int) -> Tensor:
    """The flat indices of rows ``row_ids`` (shape (m,)) of a 2-D tensor ``width`` wide, shape (m * width,)."""
    return (row_ids[:, None] * width + torch.arange(width, device=row_ids.device)).reshape(-1)


def gradient_at(grad: Tensor, flat: Tensor) -> Tensor:
    """``grad`` at the flat indices ``flat`` (shape (k,)), fp32, shape (k,).

    ``grad`` is dense, or sparse COO over the rows of a 2-D tensor (``nn.Embedding(sparse=True)``: no
    vocabulary-sized gradient is ever filled); an index in a row it does not name gets 0.
    """
    if not grad.is_sparse:
        return grad.reshape(-1)[flat].float()
    grad = grad.coalesce()
    present = grad.indices()[0]  # sorted, unique rows that got a gradient
    if present.numel() == 0:
        return torch.zeros(flat.numel(), dtype=torch.float32, device=grad.device)
    width = grad.shape[1]
    rows, columns = flat // width, flat % width
    position = torch.searchsorted(present, rows).clamp_(max=present.numel() - 1)
    found = present[position] == rows
    return torch.where(found, grad.values()[position, columns].float(), 0.0)


def row_gradient(grad: Tensor, row_ids: Tensor, entries: Tensor) -> Tensor:
    """The incoming gradient of a row-restricted tensor at its rows ``row_ids`` (flat ``entries``,
    `row_entries_of`), fp32, shape (m * width,); see `gradient_at`.

    Raises:
        RuntimeError: a sparse ``grad`` names a row outside ``row_ids``: the model read its embedding at
            an id that is not in its input_ids, where theta was the base's.
    """
    if grad.is_sparse:
        grad = grad.coalesce()
        read = grad.indices()[0]
        position = torch.searchsorted(row_ids, read).clamp_(max=row_ids.numel() - 1)
        if not torch.equal(row_ids[position], read):
            raise RuntimeError(
                "the input embedding was read at ids that are not in input_ids, so its theta there was the "
                "base's; wrap this model with DiffPruningConfig(embedding_rows_only=False)"
            )
    return gradient_at(grad, entries)


def _compose_rows_(
    flat_theta: Tensor,
    flat_base: Tensor,
    w: Tensor,
    alpha: Tensor,
    start: int,
    entries: Tensor,
    left: float,
    right: float,
    sample: bool,
    group_gate: Tensor | None,
) -> Tensor:
    """theta = base, then base + z * w [* zg] at ``entries`` only (shape (m,)); returns their gates z, shape (m,).

    Sampled gates take their noise from one key drawn from the default generator and the entries'
    flat positions (`_keyed_uniform_`), not from m draws: the rows looked up differ between the
    processes of a data-parallel job (each reads its own share of the batch), and m draws would give
    the same entry other noise in each process and move every later tensor's draws by a different
    amount, so the processes would no longer sample the gates one process samples.
    """
    flat_theta.copy_(flat_base)
    at = entries + start
    key = torch.empty((), dtype=torch.int64, device=alpha.device).random_() if sample else None
    z = torch.empty(entries.numel(), dtype=alpha.dtype, device=alpha.device)
    z = _gate_(z, alpha[at], left, right, sample, noise_key=key, positions=at)
    product = _times(torch.mul(z, w[at]), group_gate).to(flat_theta.dtype)
    flat_theta.index_copy_(0, entries, product.add_(flat_base[entries]))
    return z


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
            z = _gate_(delta[lo:hi], alpha[lo:hi], left, right, sample=False)
            z.mul_(w[lo:hi])
    return delta


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
            position, so an entry's gate does not depend on the other rows; see `_compose_rows_`)
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
        thetas = []
        device = alpha.device
        penalty = torch.zeros(len(bases), dtype=torch.float64, device=device)
        z_all = workspace.take("z", alpha.shape, alpha.dtype, device)
        scratch = workspace.take("scratch", (CHUNK,), alpha.dtype, device)
        delta = (
            workspace.take("scratch_delta", (CHUNK,), alpha.dtype, device) if group_z is not None else None
        )
        # The penalty's slope p (1 - p), p = sigmoid(alpha - shift), is written while p is at hand, into
        # the buffer that becomes alpha's gradient: backward then scales it rather than recompute p.
        slope_store = (
            workspace.take("grad_alpha", alpha.shape, alpha.dtype, device)
            if penalty_shift is not None and alpha.requires_grad
            else None
        )
        row_index, row_ids, row_entries, row_z = -1, None, None, None
        if rows is not None:
            row_index, row_ids = rows
            row_entries = row_entries_of(row_ids, bases[row_index].shape[1])
        for index, (start, base) in enumerate(zip(offsets, bases, strict=True)):
            numel = base.numel()
            theta = workspace.take(("theta", index), base.shape, base.dtype, base.device)
            flat_theta, flat_base = theta.view(-1), base.reshape(-1)
            if index == row_index:
                row_z = _compose_rows_(flat_theta, flat_base, w, alpha, start, row_entries, left, right, sample,
                                       None if group_z is None else group_z[index])  # fmt: skip
            fused_gate = sample and penalty_shift is not None and index != row_index
            for a in _chunks(numel):
                b = min(a + CHUNK, numel)
                lo, hi = start + a, start + b
                if fused_gate:  # the gate and the chunk's P(z != 0) from one exponential
                    z = z_all[lo:hi]
                    p = _sampled_gate_and_penalty_(
                        z, alpha[lo:hi], left, right, scratch[: b - a], penalty_shift
                    )
                elif penalty_shift is not None:  # the expected L0 of this chunk, while alpha is in cache
                    p = torch.sub(alpha[lo:hi], penalty_shift, out=scratch[: b - a]).sigmoid_()
                if penalty_shift is not None:
                    penalty[index] += p.sum()  # float32 within the chunk, float64 across chunks
                    if slope_store is not None:
                        torch.addcmul(p, p, p, value=-1.0, out=slope_store[lo:hi])  # p - p^2
                if index == row_index:
                    continue
                if not fused_gate:
                    z = _gate_(z_all[lo:hi], alpha[lo:hi], left, right, sample)
                if group_z is None:
                    # base + z * w: the product rounded to theta's dtype, then the sum (as base + delta)
                    torch.mul(z, w[lo:hi], out=flat_theta[a:b]).add_(flat_base[a:b])
                else:  # base + (z * w) * zg, the same operations as the composed path
                    product = torch.mul(z, w[lo:hi], out=delta[: b - a])
                    torch.mul(product, group_z[index], out=flat_theta[a:b]).add_(flat_base[a:b])
            thetas.append(theta)
        ctx.save_for_backward(w, alpha, z_all, group_z, row_ids, row_entries, row_z)
        ctx.row_index = row_index
        ctx.workspace = workspace
        ctx.stretch = (left, right)
        ctx.penalty_shift = penalty_shift
        ctx.alive = alive
        ctx.slope_store = slope_store
        ctx.spans = [(start, base.numel(), base.dtype) for start, base in zip(offsets, bases, strict=True)]
        return (*thetas, penalty.to(alpha.dtype))

    @staticmethod
    def backward(ctx, *grads):
        *grads, grad_penalty = grads
        ctx.alive[0] = False  # this graph is used up; its penalty output cannot be reused
        w, alpha, z_all, group_z, row_ids, row_entries, row_z = ctx.saved_tensors
        with_penalty = grad_penalty is not None and ctx.penalty_shift is not None
        left, right = ctx.stretch
        need_w, need_alpha, need_group = ctx.needs_input_grad[:3]
        take = ctx.workspace.take
        grad_w = take("grad_w", w.shape, w.dtype, w.device) if need_w else None
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
        # d loss / d zg_i = sum_{j in i} g_j z_j w_j, accumulated in float64 per tensor
        grad_group = torch.zeros(len(ctx.spans), dtype=torch.float64, device=w.device) if need_group else None
        slope_buffer = take("scratch", (CHUNK,), w.dtype, w.device)
        penalty_buffer = (
            take("scratch_penalty", (CHUNK,), w.dtype, w.device) if with_penalty and not use_stored else None
        )
        gw_buffer = (
            take("scratch_gw", (CHUNK,), w.dtype, w.device)
            if (need_group and not need_alpha) or use_stored
            else None
        )
        # dz/dalpha = (z - l)(r - z)/(r - l) = (z((l + r) - z) - lr)/(r - l) inside (0, 1), 0 where clamped
        scale = 1.0 / (right - left)
        offset = torch.tensor(-left * right * scale, dtype=w.dtype, device=w.device)
        for index, ((start, numel, _), grad) in enumerate(zip(ctx.spans, grads, strict=True)):
            if grad is None:  # this tensor did not reach the loss
                grad = torch.zeros((), dtype=w.dtype, device=w.device).expand(numel)
            zg = group_z[index] if group_z is not None else None
            if index == ctx.row_index:  # the loss reaches only these rows: w's gradient is 0 elsewhere,
                # alpha's the penalty's alone (written chunk by chunk), plus the loss's at the rows
                g = row_gradient(grad, row_ids, row_entries)
                rows_w = w[row_entries + start]
                span = slice(start, start + numel)
                if need_w:
                    grad_w[span].zero_().index_copy_(0, row_entries, _times(torch.mul(g, row_z), zg))
                if need_alpha or need_group:
                    gw = torch.mul(g, rows_w)
                    if need_group:
                        grad_group[index] += torch.dot(gw, row_z).double()
                if need_alpha:
                    slope = torch.sub(left + right, row_z)
                    torch.addcmul(offset, slope, row_z, value=scale, out=slope)
                    torch.ops.aten.hardtanh_backward.grad_input(slope, row_z, 0.0, 1.0, grad_input=slope)
                    from_loss = _times(gw, zg).mul_(slope)
                    if use_stored:  # grad_penalty_i * p (1 - p)
                        grad_alpha[span].mul_(grad_penalty[index])
                    elif with_penalty:
                        for a in _chunks(numel):
                            b = min(a + CHUNK, numel)
                            p = torch.sub(
                                alpha[start + a : start + b],
                                ctx.penalty_shift,
                                out=grad_alpha[start + a : start + b],
                            )
                            p.sigmoid_()
                            torch.ops.aten.sigmoid_backward.grad_input(
                                grad_penalty[index].expand_as(p), p, grad_input=p
                            )
                    else:
                        grad_alpha[span].zero_()
                    grad_alpha[span].index_add_(0, row_entries, from_loss)
                continue
            flat_grad = (grad.to_dense() if grad.is_sparse else grad).reshape(-1)
            for a in _chunks(numel):
                b = min(a + CHUNK, numel)
                lo, hi = start + a, start + b
                g = flat_grad[a:b].float()
                z = z_all[lo:hi]
                if need_w:
                    torch.mul(g, z, out=grad_w[lo:hi])
                    if zg is not None:
                        grad_w[lo:hi].mul_(zg)
                if need_alpha or need_group:
                    into_alpha = need_alpha and not use_stored
                    gw = torch.mul(g, w[lo:hi], out=(grad_alpha[lo:hi] if into_alpha else gw_buffer[: b - a]))
                    if need_group:
                        grad_group[index] += torch.dot(gw, z).double()
                if need_alpha:
                    slope = torch.sub(left + right, z, out=slope_buffer[: b - a])  # (l + r) - z
                    torch.addcmul(offset, slope, z, value=scale, out=slope)
                    # 0 where the gate is clamped (hardtanh_backward: the mask and the select in one pass)
                    torch.ops.aten.hardtanh_backward.grad_input(slope, z, 0.0, 1.0, grad_input=slope)
                    out = gw if zg is None else gw.mul_(zg)
                    if use_stored:  # grad_penalty_i * p (1 - p) (kept by forward) + slope * g w
                        grad_alpha[lo:hi].mul_(grad_penalty[index]).addcmul_(slope, out)
                    elif with_penalty:  # + grad_penalty_i * p (1 - p), p = sigmoid(alpha - shift)
                        p = torch.sub(alpha[lo:hi], ctx.penalty_shift, out=penalty_buffer[: b - a])
                        p.sigmoid_()
                        upstream = grad_penalty[index].expand_as(p)
                        torch.ops.aten.sigmoid_backward.grad_input(upstream, p, grad_input=p)
                        torch.addcmul(p, slope, out, out=out)
                    else:
                        out.mul_(slope)
        if grad_group is not None:
            grad_group = grad_group.to(group_z.dtype)
        return (grad_w, grad_alpha, grad_group, *([None] * 8), *([None] * len(ctx.spans)))


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
