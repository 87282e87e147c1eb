"""Magnitude projection onto the L0 ball: the exact top-k entries of a flat vector, ties broken by secondary keys, then index."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def num_kept(target_sparsity: float, numel: int) -> int:
    """k = ceil(t * d), the number of non-zeros kept over ``numel`` gated parameters (at least 1)."""
    if not 0.0 < target_sparsity <= 1.0:
        raise ValueError(f"target_sparsity must be in (0, 1], got {target_sparsity}")
    if numel <= 0:
        raise ValueError(f"there are no gated parameters to project (numel = {numel})")
    # Round t * d before ceil so that e.g. 0.005 * 1000 = 5.000000000000001 keeps 5, not 6.
    return max(1, min(numel, math.ceil(round(target_sparsity * numel, 6))))


def topk_indices(values: Tensor, k: int, tiebreak: Sequence[Tensor] = ()) -> Tensor:
    """The sorted flat indices of the k largest |values|; ties broken by ``tiebreak`` keys, then index.

    Entries above the k-th largest magnitude are always kept. Among the entries whose magnitude
    equals it (e.g. the many exact zeros left when gates close during the L0 stage), the larger first
    ``tiebreak`` key wins, then the larger second key, ...; remaining ties go to the lower index. So
    the result is deterministic and exactly k indices. The selection is O(d) (one kthvalue); only the
    tied entries are sorted.

    Args:
        values: 1-D tensor of d entries.
        k: 1 <= k <= d.
        tiebreak: secondary keys, each a 1-D tensor of d entries (larger is better; NaN not allowed),
            e.g. ``(w.abs(), gate_open_probability)`` in diff pruning.

    Returns:
        int64 tensor of shape (k,), strictly increasing.

    Raises:
        ValueError: bad shapes, k out of range, or NaN in ``values`` or a key.

    >>> topk_indices(torch.tensor([1.0, -3.0, 2.0, 3.0]), 2).tolist()
    [1, 3]
    >>> topk_indices(torch.tensor([0.0, 0.0, 0.0]), 1, tiebreak=[torch.tensor([0.1, 0.5, 0.2])]).tolist()
    [1]
    """
    if values.dim() != 1:
        raise ValueError(f"values must be 1-D, got shape {tuple(values.shape)}")
    d = values.numel()
    if not 1 <= k <= d:
        raise ValueError(f"k must be in [1, {d}], got {k}")
    for i, key in enumerate(tiebreak):
        if key.shape != values.shape:
            raise ValueError(f"tiebreak key {i} has shape {tuple(key.shape)}, expected {tuple(values.shape)}")
    magnitude = values.detach().abs().float()
    if torch.isnan(magnitude).any():
        raise ValueError("cannot project a diff containing NaN")
    if k == d:
        return torch.arange(d, device=values.device)
    # The k-th largest magnitude is the (d - k + 1)-th smallest.
    threshold = torch.kthvalue(magnitude, d - k + 1).values
    above = torch.nonzero(magnitude > threshold).flatten()
    ties = torch.nonzero(magnitude == threshold).flatten()
    needed = k - above.numel()
    if ties.numel() > needed and tiebreak:
        # Lexicographic order (key 1 desc, key 2 desc, ..., index asc) via stable sorts, last key first.
        order = ties
        for i, key in reversed(list(enumerate(tiebreak))):
            key_values = key.detach().float().index_select(0, order.to(key.device))
            if torch.isnan(key_values).any():
                raise ValueError(f"tiebreak key {i} contains NaN")
            perm = torch.sort(key_values, descending=True, stable=True).indices
            order = order.index_select(0, perm.to(order.device))
        ties = order
    return torch.sort(torch.cat([above, ties[:needed]])).values
