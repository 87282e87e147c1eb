"""theta of a row-restricted tensor (an input embedding): base + z * w at the rows a batch looks up, base elsewhere."""

from __future__ import annotations

import torch
from torch import Tensor

from deltamix.diffprune.gate_chunk import gate_
from deltamix.diffprune.keyed_uniform import keyed_uniform_
from deltamix.diffprune.workspace import Workspace, tensor_stamp


def times(values: Tensor, group_gate: Tensor | None) -> Tensor:
    """``values`` times the tensor's group gate in place (structured), or ``values`` unchanged."""
    return values if group_gate is None else values.mul_(group_gate)


def compose_rows_(
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
    """theta = base + z * w [* zg] at ``entries`` only (shape (m,)), theta being base elsewhere
    (`reset_to_base_`); returns their gates z, shape (m,).

    Sampled gates take their noise from one key drawn from the default generator and the entries'
    flat positions (`keyed_uniform_`), not from m draws: the rows looked up differ between the
    processes of a data-parallel job (each reads its own share of the batch), and m draws would give
    the same entry other noise in each process and move every later tensor's draws by a different
    amount, so the processes would no longer sample the gates one process samples.
    """
    at = entries + start
    key = torch.empty((), dtype=torch.int64, device=alpha.device).random_() if sample else None
    z = torch.empty(entries.numel(), dtype=alpha.dtype, device=alpha.device)
    if key is not None:
        keyed_uniform_(z, key, at)
    z = gate_(z, alpha[at], left, right, sample)
    product = times(torch.mul(z, w[at]), group_gate).to(flat_theta.dtype)
    flat_theta.index_copy_(0, entries, product.add_(flat_base[entries]))
    return z


def reset_to_base_(workspace: Workspace, key: tuple, theta: Tensor, base: Tensor) -> None:
    """Make ``theta`` (taken under ``key``) equal ``base`` before its rows are composed: where it still
    holds the last step's row-restricted theta of the same base (stamped with the entries written then,
    see GatedTheta.forward), only those go back to base, not a copy of the vocabulary-sized tensor."""
    flat_theta, flat_base = theta.view(-1), base.reshape(-1)
    inputs = (tensor_stamp(base),)
    held, written = workspace.held(key, theta, inputs)
    if held:
        flat_theta.index_copy_(0, written, flat_base[written])
    else:
        flat_theta.copy_(flat_base)
